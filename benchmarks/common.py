"""Shared benchmark plumbing: timing, the machine's matmul ceiling, memory, isolation, output.

Every benchmark prints a markdown table and writes `results/<name>-<backend>.json` (plus the
table as `.md`), so CPU and GPU results sit side by side. Figures that depend on the
process's memory high-water mark run in a fresh child process (`run_isolated`); the parent
never starts a JAX backend, so on a GPU each child gets the whole device.
"""

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

RESULTS = Path(__file__).parent / "results"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def rss_bytes(field: str = "VmRSS") -> int:
    """Resident set (`VmRSS`) or its high-water mark (`VmHWM`) of this process."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: KiB on most


def cpu_usage(who: int = resource.RUSAGE_SELF) -> dict[str, float]:
    """User and system CPU seconds and minor page faults so far (`who`: this process, or its children)."""
    r = resource.getrusage(who)
    return {"user_s": r.ru_utime, "system_s": r.ru_stime, "minor_faults": r.ru_minflt}


def cpu_since(before: dict[str, float], who: int = resource.RUSAGE_SELF) -> dict[str, float]:
    """`cpu_usage` since `before`, with system CPU as a share of user CPU (`system_share`)."""
    now = cpu_usage(who)
    spent = {k: now[k] - before[k] for k in now}
    spent["system_share"] = spent["system_s"] / max(spent["user_s"], 1e-9)
    return spent


def device_peak_bytes() -> int | None:
    """The accelerator allocator's peak (`memory_stats`); None on CPU, which has none."""
    import jax

    stats = jax.devices()[0].memory_stats()
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of `repeats` calls of `fn` (its result blocked on), after `warmup` calls."""
    import jax

    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return times


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def matmul_ceiling(n: int = 2048, repeats: int = 10) -> dict:
    """FLOP/s of a jitted n x n f32 matmul: the yardstick this machine's figures are divided by."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    step_s = median(time_call(lambda: matmul(a, b), repeats, warmup=2))
    return {"n": n, "step_s": step_s, "flops_per_s": 2 * n**3 / step_s}


class CompileCounter:
    """Counts XLA backend compilations while active (`with CompileCounter() as c: ...; c.count`)."""

    _active: ClassVar[list["CompileCounter"]] = []
    _registered: ClassVar[bool] = False

    def __init__(self):
        self.count = 0

    @classmethod
    def _listen(cls, event: str, duration: float, **_) -> None:
        if event == COMPILE_EVENT:
            for counter in cls._active:
                counter.count += 1

    def __enter__(self) -> Self:
        import jax

        if not CompileCounter._registered:
            jax.monitoring.register_event_duration_secs_listener(CompileCounter._listen)
            CompileCounter._registered = True
        CompileCounter._active.append(self)
        return self

    def __exit__(self, *exc) -> None:
        CompileCounter._active.remove(self)


def machine() -> dict:
    """What the figures were measured on."""
    import jax

    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"backend": jax.default_backend(), "device": getattr(device, "device_kind", str(device)),
            "n_devices": jax.device_count(), "cpu": cpu, "cpu_cores": os.cpu_count(),
            "python": platform.python_version(), "jax": jax.__version__}


def run_isolated(module: str, spec: dict, timeout_s: float = 1800) -> dict:
    """Run `python -m <module> --one '<spec json>'` in a fresh process; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, "-m", module, "--one", json.dumps(spec)],
                         check=False, capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise RuntimeError(f"{module} {spec} failed (rc {out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def xla_flops(lowered) -> float:
    """XLA's FLOP count of a lowered computation; from its compiled form where the backend counts
    nothing before compiling (the GPU backend's `Lowered.cost_analysis()` is None); NaN if neither counts."""
    for analysis in (lowered.cost_analysis, lambda: lowered.compile().cost_analysis()):
        cost = analysis()
        cost = cost[0] if isinstance(cost, list) and cost else cost
        if cost and "flops" in cost:
            return float(cost["flops"])
    return float("nan")


def synthetic_data(root: str | Path, cfg) -> Path:
    """`root/data`: synthetic data for `cfg` (a SynthConfig), generated once and reused after."""
    from dynjax.rundir import default_data

    start = time.perf_counter()
    data_dir = default_data(root, cfg)  # regenerates only when the stamped config differs
    print(f"data {data_dir} ready in {time.perf_counter() - start:.0f}s", flush=True)
    return data_dir


def add_check(parser) -> None:
    """`--check`: the benchmark exits 1 when one of its targets is missed (a red run, not a word in a table)."""
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")


def gate(check: bool, targets: dict[str, bool], name: str) -> int:
    """The exit status: 1 under `--check` when a target in `targets` (name -> met) was missed, named on stderr."""
    missed = [k for k, met in targets.items() if not met]
    if missed:
        print(f"{name}: missed {', '.join(missed)}" + ("" if check else " (no --check: exit 0)"), file=sys.stderr)
    return 1 if check and missed else 0


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table of `rows`; columns are (header, key, format spec)."""
    head = "| " + " | ".join(h for h, _, _ in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(_fmt(r.get(k), f) for _, k, f in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return format(value, spec) if spec else str(value)


def write_results(name: str, payload: dict, markdown: str) -> Path:
    """`results/<name>-<backend>.json` and `.md`; returns the JSON path."""
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{name}-{payload['machine']['backend']}"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=float) + "\n")
    header = f"{name} on {payload['machine']['device']} ({payload['machine']['cpu']}, {payload['machine']['cpu_cores']} cores)"
    stem.with_suffix(".md").write_text(f"{header}\n\n{markdown}\n")
    return stem.with_suffix(".json")
