"""`dynjax predict` on a Numerai-size live era: a 5,000-row live file at 2,376 features.

    python -m benchmarks.predict_live [--rows 5000] [--features 2376] [--repeats 3] [--root /tmp/dynjax_bench_live]

A run with the default model (context gates, three-member ensemble) is trained briefly on a
small synthetic set at the full feature width (one pretraining epoch, two validation eras:
the benchmark is about prediction, not skill), once, into `root/run`. A live file of `--rows`
rows (validation rows drawn with replacement, fresh ids, era "X") is then predicted by the
`dynjax predict` command in a fresh process, `--repeats` times: the wall time a user sees,
Python and JAX start-up and compilation included. One in-process call splits that time into
reading the next-era state, loading the live file, restoring the state, compiling and
predicting, and writing the CSV.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, median, synthetic_data, table, write_results

RUN = ["train.pretrain_epochs=1", "data.window_eras=4", "data.rows_per_era=128", "train.holdout_eras=2",
       "train.steps_per_update=1"]


def synth_overrides(features: int) -> list[str]:
    return ["synth.n_train_eras=16", "synth.n_val_eras=2", "synth.rows_per_era=300", f"synth.n_features={features}",
            "synth.n_factors=24", "synth.active_per_regime=8"]


def trained_run(root: Path, features: int, rows: int) -> tuple[Path, Path]:
    """`(run_dir, live file)`: a run of RUN on the synthetic set at `features` (made once, reused)
    and a `rows`-row live file drawn from its validation rows."""
    from dynjax.cli import main as dynjax
    from dynjax.config import RunConfig, override

    synth = synth_overrides(features)
    data_dir = synthetic_data(root, override(RunConfig(), synth).synth)
    run = root / f"run-{features}"
    if not (run / "next" / "next.json").is_file():
        start = time.perf_counter()
        code = dynjax(["walk-forward", "--data", str(data_dir), "--out", str(run), *synth, *RUN]
                      + (["--resume"] if (run / "config.json").is_file() else []))
        assert code == 0, f"the walk-forward failed ({code})"
        print(f"trained the run in {time.perf_counter() - start:.0f}s", flush=True)
    return run, write_live(data_dir, root / f"live-{rows}.parquet", rows)


def write_live(data_dir: Path, out: Path, rows: int) -> Path:
    """`rows` validation rows drawn with replacement, as one live era "X" with fresh ids."""
    import polars as pl

    val = pl.read_parquet(data_dir / "validation.parquet")
    pick = np.random.default_rng(0).integers(val.height, size=rows)
    targets = [c for c in val.columns if c.startswith("target")]
    live = val[pick].with_columns(pl.Series("id", [f"live{i:07d}" for i in range(rows)]), pl.lit("X").alias("era"),
                                  pl.lit("live").alias("data_type"), *[pl.lit(None, pl.Float32).alias(t) for t in targets])
    live.write_parquet(out)
    return out


def stages(run: Path, live: Path, csv: Path) -> dict:
    """One in-process `predict_file`, timed stage by stage (the same calls in the same order)."""
    import polars as pl

    from dynjax.data import load_split
    from dynjax.data.missing import fit_imputer, impute_inplace
    from dynjax.data.numerai import check_feature_columns
    from dynjax.eval.scores import prediction_frame, rank_per_era
    from dynjax.train.next_era import load_next
    from dynjax.train.run import make_predictor, predict_rows

    t = {}
    start = time.perf_counter()
    nxt = load_next(run)
    t["read_next_s"] = time.perf_counter() - start
    start = time.perf_counter()
    check_feature_columns(nxt.feature_columns, live)
    split = load_split(live, nxt.features, nxt.cfg.data.targets, require_targets=False, min_era_rows=1,
                       live_after=nxt.number - 1)
    impute_inplace(nxt.imputer or fit_imputer(nxt.cfg.data.missing, split.x_NxF[:0]), split.x_NxF, split.index)
    t["load_live_s"] = time.perf_counter() - start
    start = time.perf_counter()
    predictor = make_predictor(nxt.cfg, len(nxt.features))
    state = nxt.restore_state(predictor.abstract_state())
    t["restore_s"] = time.perf_counter() - start
    start = time.perf_counter()
    pred_GxR, _, _ = predict_rows(predictor, state, split, 0, nxt.context)
    t["compile_predict_s"] = time.perf_counter() - start
    start = time.perf_counter()
    pred_GxR, _, _ = predict_rows(predictor, state, split, 0, nxt.context)
    t["predict_again_s"] = time.perf_counter() - start
    start = time.perf_counter()
    sub = rank_per_era(prediction_frame(split.ids, "X", pred_GxR[0]))
    sub.select("id", "prediction").write_csv(csv)
    t["write_s"] = time.perf_counter() - start
    assert pl.read_csv(csv).height == split.n_rows
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--features", type=int, default=2376)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", default="/tmp/dynjax_bench_live")
    args = parser.parse_args()
    root = Path(args.root)
    run, live = trained_run(root, args.features, args.rows)
    csv = root / "submission.csv"

    walls = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dynjax.cli", "predict", "--run", str(run), "--data", str(live),
                        "--out", str(csv)], check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        print(f"dynjax predict: {walls[-1]:.1f}s", flush=True)
    row = {"rows": args.rows, "features": args.features, "wall_s": median(walls), "best_s": min(walls),
           **stages(run, live, root / "stages.csv")}
    md = table([row], [("live rows", "rows", "d"), ("features", "features", "d"), ("dynjax predict s (median)", "wall_s", ".1f"),
                       ("best s", "best_s", ".1f"), ("read next/ s", "read_next_s", ".2f"), ("load live s", "load_live_s", ".2f"),
                       ("restore s", "restore_s", ".2f"), ("compile + predict s", "compile_predict_s", ".2f"),
                       ("predict again s", "predict_again_s", ".2f"), ("write CSV s", "write_s", ".2f")])
    print(md)
    write_results("predict_live", {"machine": machine(), "config": [*synth_overrides(args.features), *RUN], "walls_s": walls, "rows": [row]}, md)


if __name__ == "__main__":
    main()
