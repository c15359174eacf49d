"""Load time and peak memory of a Numerai-width training file, next to its int8 size.

    python -m benchmarks.load_memory [--rows 500000] [--features 2376] [--data /tmp/dynjax_bench_load]

Generates (once, cached in --data/data) a synthetic train.parquet of `rows` x `features`
(the `all` set's width), then loads it in a fresh process and reports wall time and the
peak resident set. Target: peak resident memory under 1.5x the int8 feature matrix.
Writes benchmarks/results/load_memory-<backend>.json.
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
    table,
    write_results,
)

TARGET_RATIO = 1.5


def _measure(data_dir: str) -> dict:
    """Runs in a fresh process: import, note the baseline, load, note the peak."""
    from dynjax.data import load_numerai  # noqa: F401  (imports count towards the baseline)
    from dynjax.data.features import read_feature_metadata, resolve_features
    from dynjax.data.numerai import load_split

    baseline = rss_bytes("VmHWM")
    features = resolve_features(read_feature_metadata(Path(data_dir) / "features.json"), "all")
    start = time.perf_counter()
    split = load_split(Path(data_dir) / "train.parquet", features)
    seconds = time.perf_counter() - start
    peak = rss_bytes("VmHWM")
    return {"rows": split.n_rows, "features": len(features), "load_s": seconds,
            "int8_bytes": int(split.x_NxF.nbytes), "baseline_rss_bytes": baseline, "peak_rss_bytes": peak}


def _synth_config(rows: int, features: int):
    from dynjax.config import SynthConfig

    eras = max(1, rows // 5000)
    return SynthConfig(n_train_eras=eras, n_val_eras=1, rows_per_era=rows // eras, n_features=features,
                       n_factors=64, active_per_regime=20, nan_rate=0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=2376)
    parser.add_argument("--data", default="/tmp/dynjax_bench_load")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    add_check(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(json.loads(args.one))))
        return 0
    data_dir = synthetic_data(args.data, _synth_config(args.rows, args.features))
    result = run_isolated("benchmarks.load_memory", str(data_dir))
    result["peak_over_int8"] = result["peak_rss_bytes"] / result["int8_bytes"]
    result["target_ratio"] = TARGET_RATIO
    result["target_met"] = result["peak_over_int8"] < TARGET_RATIO
    gib = 1 / 2**30
    print(f"rows {result['rows']:,} x features {result['features']:,}  load {result['load_s']:.1f}s")
    print(f"int8 matrix {result['int8_bytes'] * gib:.2f} GiB  baseline RSS {result['baseline_rss_bytes'] * gib:.2f} GiB  "
          f"peak RSS {result['peak_rss_bytes'] * gib:.2f} GiB  = {result['peak_over_int8']:.2f}x int8 "
          f"(target < {TARGET_RATIO}x: {'met' if result['target_met'] else 'NOT met'})")
    row = {**result, "int8_gib": result["int8_bytes"] * gib, "peak_gib": result["peak_rss_bytes"] * gib}
    markdown = table([row], [("rows", "rows", ","), ("features", "features", ","), ("int8 GiB", "int8_gib", ".2f"),
                             ("load s", "load_s", ".1f"), ("peak RSS GiB", "peak_gib", ".2f"),
                             ("peak / int8", "peak_over_int8", ".2f"), ("target met", "target_met", "")])
    print(f"wrote {write_results('load_memory', {**result, 'machine': machine()}, markdown)}")
    return gate(args.check, {f"peak RSS < {TARGET_RATIO}x int8": result["target_met"]}, "load_memory")


if __name__ == "__main__":
    sys.exit(main())
