"""The whole walk-forward at Numerai's size: load, pretraining and ~100 walk-forward eras.

    python -m benchmarks.full_scale [--rows 2750000] [--layout v5.3] [--features N] [--eras 1200] [--walk-eras 100]
        [--data /tmp/dynjax_full_scale] [--out DIR] [overrides ...]

A synthetic Numerai directory of `rows` x `features` int8 bins (by default v5.3's width: 3,555
features, Numerai's names and feature sets, `dynjax synth --layout`) over `eras` eras (the last
`walk-eras` of them validation, one live era after; written once under --data and reused),
then in a fresh process: load (parquet -> one int8 matrix per split), the run context (era
summaries, gate evidence), pretraining, the walk-forward over the validation eras with its
checkpoints, the next-era state and live predictions, and the report. Prints and writes
(benchmarks/results/full_scale-<backend>.json) load time, peak resident memory against the
int8 matrices, wall time per stage, compilations after the first walk-forward era, the share
of checkpointing, and the walk-forward's corr against the oracle's.

Targets: peak RSS <= 1.5x the int8 matrices; zero compilations after the first
walk-forward era; checkpointing <= 2 % of the run; under 60 minutes on the 2-core CPU machine
with the scaled-down schedule below (`SCALED`; the full default schedule is
`--overrides-replace`). On a GPU/TPU: `pip install -e '.[cuda12]'` (or the TPU extra), then
the same command.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.common import (
    add_check,
    gate,
    machine,
    rss_bytes,
    run_isolated,
    synthetic_data,
    write_results,
)

MODULE = "benchmarks.full_scale"
TARGET_RSS_RATIO, TARGET_CHECKPOINT_SHARE, TARGET_MINUTES = 1.5, 0.02, 60.0
# What scales the default run down to this machine's hour (see benchmarks/README.md for the cost of each):
# one member instead of three, one pretraining epoch over windows of 8 eras, 4 steps per era.
SCALED = ("train.ensemble=1", "train.pretrain_epochs=1", "data.window_eras=8", "train.window_stride=4",
          "train.steps_per_update=4", "train.predict_chunk=4096")


def synth_config(rows: int, features: int | None, eras: int, walk_eras: int, layout: str = "v5.3"):
    """Numerai-like proportions: ~2,300 rows per era, factors and active features scaled with the width
    (`features` None: the layout's width)."""
    from dynjax.config import SynthConfig
    from dynjax.data.synth import LAYOUTS

    gap = 4
    train_eras = eras - walk_eras - gap
    shape = {"n_train_eras": train_eras, "n_val_eras": walk_eras, "gap_eras": gap, "rows_per_era": rows // (eras - gap),
                 "n_factors": 64, "n_regimes": 4, "active_per_regime": 24, "regime_eras": 60, "noise": 3.0, "nan_rate": 0.01, "seed": 0}
    return SynthConfig(**{**LAYOUTS[layout], **shape, **({"n_features": features} if features else {})})


def _measure(spec: dict) -> dict:
    """Runs in a fresh process: every stage of a run, timed, with memory and compilations."""
    from benchmarks.common import CompileCounter
    from dynjax.config import RunConfig, override
    from dynjax.data import impute, load_numerai
    from dynjax.eval.report import build_report
    from dynjax.train.walk_forward import walk_forward

    baseline = rss_bytes("VmHWM")
    cfg = override(RunConfig(), [f"data.data_dir={spec['data_dir']}", *spec["overrides"]])
    stages, marks = {}, {}
    start = time.perf_counter()
    data = load_numerai(spec["data_dir"], cfg.data.feature_spec, cfg.data.targets, min_era_rows=cfg.data.min_era_rows)
    data = impute(data, cfg.data.missing, seed=cfg.seed)
    stages["load_s"] = time.perf_counter() - start
    int8_bytes = sum(s.x_NxF.nbytes for s in (data.train, data.validation, data.live) if s is not None)
    rss_after_load = rss_bytes("VmHWM")

    def on_start(_cursor):
        marks["start"] = time.perf_counter()

    def on_era(k, _e, _pred):
        if k == 0:
            marks["first_era"] = time.perf_counter()
            compiles.count = 0  # compilations from here on are recompilations
        marks["last_era"] = time.perf_counter()

    with CompileCounter() as compiles:
        start = time.perf_counter()
        timings = walk_forward(cfg, data, spec["out"], on_era=on_era, on_start=on_start)
        end = time.perf_counter()
        after_first = compiles.count
    stages["context_s"] = marks["start"] - start  # run context (summaries, gate evidence) and history check
    stages["pretrain_s"] = marks["first_era"] - marks["start"]  # includes the first walk-forward era
    stages["walk_forward_s"] = marks["last_era"] - marks["first_era"]
    stages["next_and_live_s"] = end - marks["last_era"]  # next-era update and state, live and frozen predictions
    start = time.perf_counter()
    metrics = build_report(spec["out"], data, cfg, spec["data_dir"])
    stages["report_s"] = time.perf_counter() - start
    run_s = sum(stages.values())
    return {"rows": sum(s.n_rows for s in (data.train, data.validation, data.live) if s is not None),
            "features": int(data.train.x_NxF.shape[1]), "eras": int(data.train.index.n_eras + data.validation.index.n_eras),
            "walk_eras": int(data.validation.index.n_eras), "overrides": spec["overrides"], "stages": stages,
            "run_s": run_s, "timings": timings, "int8_bytes": int(int8_bytes), "baseline_rss_bytes": baseline,
            "rss_after_load_bytes": rss_after_load, "peak_rss_bytes": rss_bytes("VmHWM"),
            "compiles_after_first_era": after_first,
            "corr": metrics["dynjax"]["corr_mean"], "sharpe": metrics["dynjax"]["corr_sharpe"],
            "frozen_corr": metrics["frozen"]["corr_mean"], "ridge_corr": metrics["ridge"]["corr_mean"],
            "oracle_corr": (metrics.get("oracle") or {}).get("corr_mean")}


def judge(row: dict) -> dict:
    row["rss_ratio"] = row["peak_rss_bytes"] / row["int8_bytes"]
    row["checkpoint_share"] = row["timings"]["checkpoint_s"] / row["run_s"]
    row["targets"] = {"rss": row["rss_ratio"] <= TARGET_RSS_RATIO, "recompiles": row["compiles_after_first_era"] == 0,
                      "checkpoint": row["checkpoint_share"] <= TARGET_CHECKPOINT_SHARE,
                      "minutes": row["run_s"] / 60 <= TARGET_MINUTES}
    row["met"] = all(row["targets"].values())
    return row


def report(row: dict, data_s: float) -> str:
    gib = 2**30
    lines = [(f"data: {row['rows']:,} rows x {row['features']:,} features, {row['eras']} eras "
             f"({row['walk_eras']} walked); int8 matrices {row['int8_bytes'] / gib:.2f} GiB; written in {data_s:.0f}s"),
             f"config: {' '.join(row['overrides']) or 'defaults'}",
             "", "| stage | wall s | share |", "| --- | --- | --- |"]
    lines += [f"| {k.removesuffix('_s')} | {v:,.1f} | {v / row['run_s']:.1%} |" for k, v in row["stages"].items()]
    t = row["timings"]
    lines += [f"| **run** | {row['run_s']:,.1f} | 100% |", "",
              (f"inside pretrain + walk-forward: compile {t['compile_s']:.1f}s, train {t['train_s']:.1f}s, "
              f"predict {t['predict_s']:.1f}s, checkpoint {t['checkpoint_s']:.1f}s "
              f"({row['checkpoint_share']:.2%} of the run; target <= {TARGET_CHECKPOINT_SHARE:.0%})"),
              (f"peak RSS {row['peak_rss_bytes'] / gib:.2f} GiB = {row['rss_ratio']:.2f}x the int8 matrices "
              f"(after load {row['rss_after_load_bytes'] / gib:.2f} GiB; target <= {TARGET_RSS_RATIO}x)"),
              f"compilations after the first walk-forward era: {row['compiles_after_first_era']} (target 0)",
              (f"corr {row['corr']:.4f} (Sharpe {row['sharpe']:.2f}) against the oracle's {row['oracle_corr']:.4f}; "
              f"ridge {row['ridge_corr']:.4f}, frozen after pretraining {row['frozen_corr']:.4f}"),
              f"targets: {row['targets']}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_750_000)
    parser.add_argument("--layout", default="v5.3", help="dynjax synth --layout (default: %(default)s, 3,555 features)")
    parser.add_argument("--features", type=int, help="feature count (default: the layout's)")
    parser.add_argument("--eras", type=int, default=1200)
    parser.add_argument("--walk-eras", type=int, default=100)
    parser.add_argument("--data", default="/tmp/dynjax_full_scale", help="cache of the synthetic data (reused)")
    parser.add_argument("--out", help="run directory (default: DATA/run, replaced)")
    parser.add_argument("--overrides-replace", action="store_true", help="drop SCALED: only the overrides given")
    parser.add_argument("overrides", nargs="*", help="config overrides after SCALED, e.g. train.ensemble=3")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    add_check(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(json.loads(args.one)), default=float))
        return 0

    import shutil

    start = time.perf_counter()
    cfg = synth_config(args.rows, args.features, args.eras, args.walk_eras, args.layout)
    data_dir = synthetic_data(Path(args.data) / f"{args.rows}x{cfg.n_features}x{args.eras}", cfg)
    data_s = time.perf_counter() - start
    out = Path(args.out or Path(args.data) / "run")
    shutil.rmtree(out, ignore_errors=True)
    overrides = list(args.overrides) if args.overrides_replace else [*SCALED, *args.overrides]
    row = judge(run_isolated(MODULE, {"data_dir": str(data_dir), "out": str(out), "overrides": overrides}, timeout_s=4 * 3600))
    row["data_s"] = data_s
    text = report(row, data_s)
    print(text)
    path = write_results("full_scale", {"machine": machine(), "result": row}, text)
    print(f"wrote {path}")
    return gate(args.check, row["targets"], "full_scale")


if __name__ == "__main__":
    sys.exit(main())
