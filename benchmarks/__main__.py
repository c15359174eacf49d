"""Run a suite of benchmarks, each in its own process: `python -m benchmarks [--suite all|device] [--only a,b] [--skip a,b]`.

Same command on CPU, GPU or TPU; results go to `benchmarks/results/<name>-<backend>.{json,md}`.
`--suite device` is the accelerator suite, sized for 8 minutes on one H200: the run's train step
at F 705 and 2,748 (float32 and bfloat16, host and device placement, W 16 x R 4,096 rows so the
step measures throughput rather than launch latency) with predict, then a walk-forward on the
mid-size set (each under `--check`), then the diffuse setting's walk-forward against static
LightGBM on the same host (the diffuse wall time against LightGBM's); each with a time limit of its own.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

BENCHMARKS = ("step_throughput", "scaling", "walk_forward", "load_memory", "population_tune",
              "predict_live", "upload", "weekly_update", "sharded", "full_scale")
# (name, benchmark, arguments, seconds it may take) of the accelerator suite; --only / --skip pick by name.
DEVICE_SUITE = (
    ("step_throughput", "step_throughput", ["--features", "705,2748", "--d-model", "32", "--normalizers", "softmax",
                         "--dtypes", "float32,bfloat16", "--placements", "host,device", "--eras", "16", "--rows", "4096",
                         "--repeats", "20", "--name", "step_throughput_device", "--check"], 270),
    # The first H200 run: data 41-47 s, the walk-forward 24 s, the report's exposures the rest.
    ("walk_forward", "walk_forward", ["--no-lightgbm", "--check"], 210),
    # The wall-time test: the diffuse set's walk-forward against static LightGBM fitted on
    # the same host (2 CPU cores: 714 s against 95 s, training 638 s at ~43k member-rows/s).
    ("walk_forward_diffuse", "walk_forward", ["--setting", "diffuse", "--no-refit", "--data", "/tmp/dynjax_bench_diffuse"],
     300),
)


def call(command: list[str], timeout_s: float | None) -> int:
    """`command`'s exit status, 124 when it ran past `timeout_s`. It runs in its own process group,
    killed whole at the limit: a benchmark's isolated children (`run_isolated`) would otherwise
    run on, holding the accelerator through the next benchmark (seen on an H200)."""
    proc = subprocess.Popen(command, start_new_session=True)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return 124


def run(name: str, args: list[str], timeout_s: float | None) -> int:
    """One benchmark in a fresh process; its exit status (124 when it ran past `timeout_s`)."""
    print(f"\n=== {name} {' '.join(args)}", flush=True)
    start = time.perf_counter()
    rc = call([sys.executable, "-m", f"benchmarks.{name}", *args], timeout_s)
    print(f"=== {name}: {'ok' if rc == 0 else f'FAILED (rc {rc})'} in {time.perf_counter() - start:.0f}s", flush=True)
    return rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", choices=("all", "device"), default="all")
    labels = [label for label, *_ in DEVICE_SUITE]
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)} "
                        f"(--suite device: of {', '.join(labels)}); default all")
    parser.add_argument("--skip", default="")
    args = parser.parse_args()
    known = labels if args.suite == "device" else list(BENCHMARKS)
    chosen = [b for b in (args.only.split(",") if args.only else known) if b and b not in args.skip.split(",")]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.suite == "device":
        plan = [(name, a, t) for label, name, a, t in DEVICE_SUITE if label in chosen]
    else:
        plan = [(name, [], None) for name in chosen]
    failed = [name for name, a, t in plan if run(name, a, t)]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
