"""The model-upload pickle at Numerai's live size: size, load, predict and peak memory on one thread.

    python -m benchmarks.upload [--rows 6000] [--features 3555] [--python PATH] [--check] [--root /tmp/dynjax_bench_upload]

Numerai runs an uploaded model with 1 CPU, 4 GB of memory and 10 minutes. A run with the
default model is trained briefly at the full v5.3 width (3,555 features) (`benchmarks.predict_live`'s recipe:
the benchmark is about the pickle, not skill), exported with `dynjax export`, and the pickle
is loaded and called on a `--rows`-row live frame in a fresh process pinned to one core with
one BLAS thread: `--python` (default `DYNJAX_NUMERAI_PYTHON`, else this interpreter) should be
a Numerai-like environment (`.ci/numerai-env`). Targets, with a wide margin: peak RSS under
1 GB (a quarter of 4 GB) and load + predict under 60 s (a tenth of 10 minutes); `--check`
exits non-zero when one is missed.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import machine, table, write_results
from benchmarks.predict_live import RUN, synth_overrides, trained_run

TARGETS = {"peak_rss_mib": 1024.0, "total_s": 60.0}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# Run in the measured process: what numerai-predict does, timed (stdlib, numpy and pandas only).
CALL = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import pandas as pd
model = pd.read_pickle(sys.argv[1])
t1 = time.perf_counter()
live = pd.read_parquet(sys.argv[2]).set_index("id")
t2 = time.perf_counter()
out = model(live)
t3 = time.perf_counter()
assert len(out) == len(live) and not out.isna().any().any() and out.iloc[:, 0].between(0, 1).all()
print(json.dumps({"load_s": t1 - t0, "read_live_s": t2 - t1, "predict_s": t3 - t2,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(python: str, pkl: Path, live: Path) -> dict:
    """One fresh, single-threaded process that loads the pickle and predicts the live file."""
    pin = ["taskset", "-c", "0"] if sys.platform == "linux" and os.path.exists("/usr/bin/taskset") else []
    done = subprocess.run([*pin, python, "-I", "-c", CALL, str(pkl), str(live)], capture_output=True, text=True,
                          env={**os.environ, **ONE_THREAD}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the pickle failed in {python}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--features", type=int, default=3555)  # v5.3's width
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", default=os.environ.get("DYNJAX_NUMERAI_PYTHON", sys.executable))
    parser.add_argument("--root", default="/tmp/dynjax_bench_upload")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    from dynjax.cli import main as dynjax

    root = Path(args.root)
    run, live = trained_run(root, args.features, args.rows)
    pkl = root / "model.pkl"
    start = time.perf_counter()
    assert dynjax(["export", "--run", str(run), "--out", str(pkl)]) == 0
    export_s = time.perf_counter() - start
    calls = [measure(args.python, pkl, live) for _ in range(args.repeats)]
    best = min(calls, key=lambda c: c["load_s"] + c["predict_s"])
    row = {"rows": args.rows, "features": args.features, "pickle_mib": pkl.stat().st_size / 2**20, "export_s": export_s,
           **best, "total_s": best["load_s"] + best["predict_s"], "peak_rss_mib": max(c["peak_rss_mib"] for c in calls)}
    row["meets_targets"] = all(row[k] <= v for k, v in TARGETS.items())
    md = table([row], [("live rows", "rows", "d"), ("features", "features", "d"), ("pickle MiB", "pickle_mib", ".2f"),
                       ("export s", "export_s", ".1f"), ("load s", "load_s", ".3f"), ("predict s", "predict_s", ".2f"),
                       ("peak RSS MiB", "peak_rss_mib", ".0f"), ("meets targets", "meets_targets", "")])
    print(md)
    write_results("upload", {"machine": machine(), "python": args.python, "targets": TARGETS, "calls": calls,
                             "config": [*synth_overrides(args.features), *RUN], "rows": [row]}, md)
    return 1 if args.check and not row["meets_targets"] else 0


if __name__ == "__main__":
    sys.exit(main())
