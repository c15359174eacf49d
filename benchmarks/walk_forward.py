"""Wall time of a full `dynjax walk-forward` by stage, and time-to-quality against LightGBM.

    python -m benchmarks.walk_forward [--train-eras 160] [--val-eras 48] [--rows-per-era 2000]
        [--features 705] [--setting diffuse] [--data /tmp/dynjax_bench_wf] [--no-lightgbm] [--no-refit]

Generates (once, cached in --data/data) a mid-size synthetic set in Numerai's layout, runs the
main job on it exactly as `dynjax walk-forward --data ...` would, and splits the wall time
into data loading, compile, training, prediction, checkpointing and scoring (the report),
so the slowest stage is visible. Then fits LightGBM with Numerai's example parameters on
the same train split (and refit every 12 eras on every resolved era, embargo as the run's)
and scores both on the same validation eras, with max feature exposure. `--setting NAME`
runs a `dynjax synth` setting at its own size instead (results `walk_forward_NAME.json`). LightGBM is the optional
`bench` extra (`pip install -e '.[bench]'`); `--no-refit` fits it once only (the refit took 943 s
on diffuse on 2 CPU cores). The JSON's `within_lightgbm_wall` is the wall-time test: the
walk-forward's wall at most static LightGBM's load + fit + predict, measured in the same run.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from benchmarks.common import (
    add_check,
    cpu_since,
    cpu_usage,
    gate,
    machine,
    synthetic_data,
    table,
    write_results,
)

TARGET_SYSTEM_SHARE = 0.10  # system CPU over user CPU: more is allocator churn (dynjax/malloc.py)


def synth_config(train_eras: int, val_eras: int, rows_per_era: int, features: int, setting: str = ""):
    """The mid-size set of the given size, or a named `dynjax synth` setting at its own size."""
    from dynjax.config import SynthConfig
    from dynjax.data.synth import SETTINGS

    if setting:
        return SynthConfig(**SETTINGS[setting])
    return SynthConfig(n_train_eras=train_eras, n_val_eras=val_eras, rows_per_era=rows_per_era, n_features=features,
                       n_factors=32, active_per_regime=16)


def run_dynjax(data_dir: Path, out: Path) -> dict:
    """The main job through its CLI entry point; stage seconds from the run's metrics.json."""
    from dynjax.cli import main as cli

    shutil.rmtree(out, ignore_errors=True)
    start, start_time, before = time.perf_counter(), time.time(), cpu_usage()
    if cli(["walk-forward", "--data", str(data_dir), "--out", str(out)]) != 0:
        raise RuntimeError("dynjax walk-forward failed")
    wall_s, cpu = time.perf_counter() - start, cpu_since(before)
    metrics = json.loads((out / "metrics.json").read_text())
    embargo = metrics["embargo"]["eras"]
    t = metrics["timing"]
    stages = {"data loading": t["load_s"], "compile (XLA, inside training)": t["compile_s"],
              "training": t["train_s"] - t["compile_s"], "prediction": t["predict_s"],
              "checkpointing": t["checkpoint_s"], "scoring (report)": t["report_s"]}
    stages["other (frozen predictions, setup)"] = wall_s - sum(stages.values())
    return {"wall_s": wall_s, "cpu": cpu, "stages": stages, "dynjax": metrics["dynjax"], "frozen": metrics["frozen"],
            "embargo": embargo, "ridge": metrics["ridge"], "oracle": metrics.get("oracle"), "start": start_time,
            "out": str(out)}


def run_lightgbm(data_dir: Path, embargo: int, refit: bool = True) -> dict | None:
    """LightGBM with Numerai's example parameters (`dynjax.eval.gbdt`), fitted once on the train
    split and refit on every resolved era every 12 eras, scored per validation era (numerai-tools)."""
    try:
        import lightgbm
    except ImportError:
        print("lightgbm is not installed (pip install -e '.[bench]'): skipping the LightGBM baseline")
        return None
    from dynjax.data import load_numerai
    from dynjax.eval.gbdt import LGBM_PARAMS, lightgbm_static, lightgbm_walk_forward
    from dynjax.eval.report import score_predictions as score

    start = time.perf_counter()
    data = load_numerai(data_dir, "all", ("target",))
    load_s = time.perf_counter() - start
    out = {"params": LGBM_PARAMS, "lightgbm": lightgbm.__version__, "load_s": load_s}
    fits = {"static": lambda: lightgbm_static(data), "walk_forward": lambda: lightgbm_walk_forward(data, embargo)}
    for name in ("static", "walk_forward") if refit else ("static",):
        fit = fits[name]
        start = time.perf_counter()
        preds, times = fit()
        out[name] = {"wall_s": load_s + time.perf_counter() - start, **times, "scores": score(data, preds),
                     "corr_E": era_corr(data, preds)}
    return out


def era_corr(data, preds) -> dict[str, float]:
    """Each validation era's numerai corr of `preds` (`id`, `prediction`)."""
    import polars as pl

    from dynjax.eval.scores import per_era_corr

    val = data.validation
    truth = pl.DataFrame({"id": val.ids, "era": val.era_column(), "target": val.y_NxT[:, 0]})
    per_era = per_era_corr(truth.join(preds.select("id", "prediction"), on="id"), "prediction")
    return dict(zip(per_era["era"].to_list(), per_era["corr"].to_list()))


def time_to_quality(run: dict, lgbm: dict | None, every: int = 20) -> list[dict]:
    """The walk-forward's mean corr over the eras predicted by then against its wall time, after its
    first era (the model just pretrained) and every `every` eras, beside the frozen model's and static
    LightGBM's mean corr on the same eras (LightGBM's wall: its fit and predict of them all)."""
    import polars as pl

    out = Path(run["out"])
    walked = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    walked = [r for r in walked if r["phase"] == "walk" and r["era"] != "next"]
    per_era = pl.read_csv(out / "metrics_per_era.csv", schema_overrides={"era": pl.String})
    corr = dict(zip(per_era["era"].to_list(), per_era["corr_dynjax"].to_list()))
    frozen = dict(zip(per_era["era"].to_list(), per_era["corr_frozen"].to_list()))
    rows = []
    for k in sorted({1, *range(every, len(walked) + 1, every), len(walked)}):
        eras = [r["era"] for r in walked[:k]]
        mean = lambda scores, eras=eras: sum(scores[e] for e in eras) / len(eras)
        rows.append({"eras": k, "wall_s": walked[k - 1]["time"] - run["start"], "corr": mean(corr),
                     "frozen_corr": mean(frozen), "lightgbm_corr": mean(lgbm["static"]["corr_E"]) if lgbm else None,
                     "lightgbm_wall_s": lgbm["static"]["wall_s"] if lgbm else None})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-eras", type=int, default=160)
    parser.add_argument("--val-eras", type=int, default=48)
    parser.add_argument("--rows-per-era", type=int, default=2000)
    parser.add_argument("--features", type=int, default=705)
    parser.add_argument("--setting", default="", help="a `dynjax synth` setting (e.g. diffuse) instead of the sizes above")
    parser.add_argument("--data", default="/tmp/dynjax_bench_wf")
    parser.add_argument("--no-lightgbm", action="store_true")
    parser.add_argument("--no-refit", action="store_true", help="LightGBM fitted once only, not refit every 12 eras")
    add_check(parser)
    args = parser.parse_args()
    data_dir = synthetic_data(args.data, synth_config(args.train_eras, args.val_eras, args.rows_per_era, args.features,
                                                               args.setting))

    run = run_dynjax(data_dir, Path(args.data) / "run")
    slowest = max(run["stages"], key=run["stages"].get)
    stage_rows = [{"stage": k, "seconds": v, "share": v / run["wall_s"]} for k, v in run["stages"].items()]
    stage_rows.append({"stage": "total", "seconds": run["wall_s"], "share": 1.0})
    lgbm = None if args.no_lightgbm else run_lightgbm(data_dir, run["embargo"], refit=not args.no_refit)

    quality = [
        {"model": "dynjax walk-forward", "wall_s": run["wall_s"], **run["dynjax"]},
        {"model": "dynjax frozen after pretraining (same run)", "wall_s": None, **run["frozen"]},
        {"model": "ridge walk-forward (same run's report)", "wall_s": None, **run["ridge"]},
    ]
    if lgbm:
        quality.append({"model": "LightGBM, Numerai example params", "wall_s": lgbm["static"]["wall_s"], **lgbm["static"]["scores"]})
    if lgbm and "walk_forward" in lgbm:
        quality.append({"model": "LightGBM refit every 12 eras", "wall_s": lgbm["walk_forward"]["wall_s"],
                        **lgbm["walk_forward"]["scores"]})
    if run["oracle"]:
        quality.append({"model": "oracle (true signal)", "wall_s": None, **run["oracle"]})
    within = None if not lgbm else run["wall_s"] <= lgbm["static"]["wall_s"]
    markdown = "\n\n".join([
        table(stage_rows, [("stage", "stage", ""), ("seconds", "seconds", ".1f"), ("share", "share", ".0%")]),
        f"Slowest stage: {slowest}.",
        table(quality, [("model", "model", ""), ("wall s", "wall_s", ".0f"), ("validation corr", "corr_mean", ".4f"),
                        ("sharpe", "corr_sharpe", ".2f"), ("max exposure", "max_exposure_mean", ".3f"), ("eras", "n_eras", "")]),
        *([(f"Walk-forward within static LightGBM's wall: {'yes' if within else 'no'} "
            f"({run['wall_s']:.0f} s against {lgbm['static']['wall_s']:.0f} s).")] if lgbm else []),
        (f"CPU of the walk-forward: user {run['cpu']['user_s']:.0f} s, system {run['cpu']['system_s']:.0f} s "
         f"({run['cpu']['system_share']:.1%} of user; target <= {TARGET_SYSTEM_SHARE:.0%}), "
         f"{run['cpu']['minor_faults']:,.0f} minor page faults."),
    ])
    quality_curve = time_to_quality(run, lgbm)
    markdown += "\n\nTime to quality (mean corr over the validation eras predicted so far):\n\n" + table(
        quality_curve, [("eras", "eras", ""), ("dynjax wall s", "wall_s", ".0f"), ("dynjax corr", "corr", ".4f"),
                        ("frozen corr", "frozen_corr", ".4f"), ("LightGBM corr", "lightgbm_corr", ".4f"),
                        ("LightGBM wall s", "lightgbm_wall_s", ".0f")])
    print(markdown)
    size = ({"setting": args.setting} if args.setting else
            {"train_eras": args.train_eras, "val_eras": args.val_eras, "rows_per_era": args.rows_per_era, "features": args.features})
    path = write_results("walk_forward" + (f"_{args.setting}" if args.setting else ""), {"machine": machine(), "data": size, "dynjax": run, "slowest_stage": slowest,
                                          "training_is_slowest": slowest == "training", "lightgbm": lgbm,
                                          "time_to_quality": quality_curve,
                                          "within_lightgbm_wall": within}, markdown)
    print(f"wrote {path}")
    return gate(args.check, {"training is the slowest stage": slowest == "training",
                             "system CPU <= 10 % of user": run["cpu"]["system_share"] <= TARGET_SYSTEM_SHARE}, "walk_forward")


if __name__ == "__main__":
    sys.exit(main())
