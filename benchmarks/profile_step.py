"""Where a train step's time goes: a per-op breakdown from a `jax.profiler` trace.

    python -m benchmarks.profile_step [--features 705] [--d-model 32] [--normalizer softmax]
        [--steps 5] [--top 20] [--trace-dir /tmp/dynjax_profile]

Traces `steps` steady-state steps of the jitted train step, sums each compiled op's time
per step, and names it by the JAX operation it came from (the HLO's `op_name`), grouped
so that e.g. every op of the attention's gather and its scatter-add gradient add up. The
raw trace stays in --trace-dir for Perfetto / TensorBoard.
"""

import argparse
import collections
import gzip
import json
import re
import shutil
from pathlib import Path

from benchmarks.step_throughput import StepSpec, build


def op_names(hlo_text: str) -> dict[str, str]:
    """Compiled op (thunk) name -> the `op_name` of the JAX operation it came from."""
    return {m.group(1): m.group(2) for m in re.finditer(r"%([\w.\-]+) = [^\n]*?op_name=\"([^\"]*)\"", hlo_text)}


def group(op_name: str) -> str:
    """A readable group: the model path and primitive, without jit/vmap/jvp wrappers."""
    parts = [p for p in op_name.split("/") if p and not p.startswith("jit(")]
    backward = any(p.startswith("transpose(") for p in parts)
    clean = [re.sub(r"(jvp|vmap|transpose|jit)\(", "", p).rstrip(")") for p in parts]
    clean = [p for p in clean if p and p != "FeatureAttentionModel"]
    return ("backward: " if backward else "forward: ") + "/".join(clean[-3:])


def profile(spec: StepSpec, steps: int, trace_dir: Path) -> tuple[float, list[tuple[str, float]]]:
    """Per-step milliseconds of every op group, largest first, and the per-step total."""
    import jax

    _, step, state, _, resident, next_batch, mask_F = build(spec)  # the run's step (benchmarks.step_throughput)
    batch, key = next_batch(), jax.random.key(1)
    names = op_names(step.lower(state, batch, mask_F, key, resident).compile().as_text())
    for _ in range(2):
        state, _ = step(state, batch, mask_F, key, resident)
    jax.block_until_ready(state)
    shutil.rmtree(trace_dir, ignore_errors=True)
    jax.profiler.start_trace(str(trace_dir))
    for _ in range(steps):
        state, _ = step(state, batch, mask_F, key, resident)
        jax.block_until_ready(state)
    jax.profiler.stop_trace()
    with gzip.open(max(trace_dir.glob("**/*.trace.json.gz"))) as f:
        events = json.load(f)["traceEvents"]
    per_group: collections.Counter = collections.Counter()
    for event in events:
        if event.get("ph") == "X" and event["name"] in names:
            per_group[group(names[event["name"]])] += event["dur"] / 1e3 / steps
    return sum(per_group.values()), per_group.most_common()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=705)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--normalizer", default="softmax")
    parser.add_argument("--eras", type=int, default=8)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--trace-dir", default="/tmp/dynjax_profile")
    args = parser.parse_args()
    spec = StepSpec(args.features, args.d_model, 4, args.normalizer, args.eras, args.rows)
    total, groups = profile(spec, args.steps, Path(args.trace_dir))
    print(f"F={spec.features} D={spec.d_model} {spec.normalizer} W={spec.eras} R={spec.rows}: "
          f"{total:.1f} ms of compiled ops per step")
    print("| ms/step | share | op (model path / primitive) |\n| --- | --- | --- |")
    for name, ms in groups[: args.top]:
        print(f"| {ms:.1f} | {ms / total:.0%} | {name} |")


if __name__ == "__main__":
    main()
