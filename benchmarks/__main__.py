"""Run every benchmark, each in its own process: `python -m benchmarks [--only a,b] [--skip a,b]`.

Same command on CPU, GPU or TPU; results go to `benchmarks/results/<name>-<backend>.{json,md}`.
"""

import argparse
import subprocess
import sys
import time

BENCHMARKS = ("step_throughput", "scaling", "walk_forward", "model_forms", "load_memory", "population_tune",
              "predict_live", "upload", "weekly_update", "sharded", "full_scale")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--skip", default="")
    args = parser.parse_args()
    chosen = [b for b in args.only.split(",") if b and b not in args.skip.split(",")]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    failed = []
    for name in chosen:
        print(f"\n=== {name}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        print(f"=== {name}: {'ok' if rc == 0 else f'FAILED (rc {rc})'} in {time.perf_counter() - start:.0f}s", flush=True)
        if rc:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
