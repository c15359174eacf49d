"""The sharded train step: throughput, compile time and recompiles per device mesh.

    python -m benchmarks.sharded [--meshes data=1,data=2,data=8,data=4;model=2,data=2;members=2;model=2]
        [--features 705] [--members 3] [--eras 24] [--rows 512] [--repeats 5] [--cpu-devices 8]

Times the run's own jitted population step (`train.run.compiled`: the default model, a
window of W eras x R rows, N members, explicit in/out shardings on `train.mesh`) on each mesh,
in a fresh process. On CPU the process gets `--cpu-devices` virtual devices
(XLA_FLAGS=--xla_force_host_platform_device_count), which share the machine's cores: the
figures there measure what sharding costs (collectives, layout), not a speed-up; on a GPU/TPU
host the meshes use the real devices. Meshes are separated by ';' inside one spec.
"""

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import (
    CompileCounter,
    add_check,
    gate,
    machine,
    median,
    table,
    time_call,
    write_results,
)

LOSS_TOLERANCE = 1e-4  # a mesh's loss against one device's (float32 reductions in another order)
MODULE = "benchmarks.sharded"


def measure(spec: dict) -> dict:
    """One mesh's figures (in a fresh process, so its device count is its own)."""
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    from dynjax.config import LossConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
    from dynjax.data.bins import N_BINS
    from dynjax.data.context import EraContext
    from dynjax.data.windows import Batch
    from dynjax.train.members import plan_members
    from dynjax.train.run import compiled
    from dynjax.train.state import initial_run_state
    from dynjax.train.step import BatchSpec

    f, w, r, n = spec["features"], spec["eras"], spec["rows"], spec["members"]
    model_cfg, loss_cfg, optim_cfg = ModelConfig(), LossConfig(), OptimConfig()
    batch_spec = BatchSpec(windows=(w,), rows=r)
    fns = compiled(model_cfg, f, loss_cfg, optim_cfg, n, mesh=spec["mesh"], specs=(batch_spec,))
    model, optimizer, step, layout = fns.model, fns.optimizer, fns.steps[batch_spec], fns.layout
    cfg = RunConfig(model=model_cfg, train=TrainConfig(ensemble=n, mesh=spec["mesh"]))
    state = initial_run_state(plan_members(cfg), model, optimizer, jax.random.key(0))
    train = layout.put(state.train, layout.train_shardings(state.train))
    rng = np.random.default_rng(0)
    evidence = np.arcsinh(np.abs(rng.standard_normal((w, f, len(model_cfg.evidence_eras)))) * 6).astype(np.float32)
    batch = Batch(x_WxRxF=rng.integers(0, N_BINS, (w, r, f), dtype=np.int8), y_WxR=rng.random((w, r), dtype=np.float32),
                  mask_WxR=np.ones((w, r), bool), context=EraContext(evidence_FxV=evidence))
    mask_F, key = jnp.ones(f, bool), jax.random.key(1)
    start = time.perf_counter()
    box = list(step(train, batch, mask_F, key, None))
    jax.block_until_ready(box[0])
    compile_s = time.perf_counter() - start

    def one_step():
        box[0], box[1] = step(box[0], batch, mask_F, key, None)
        return box[0]

    with CompileCounter() as compiles:
        times = time_call(one_step, spec["repeats"], warmup=1)
    return {**spec, "devices": layout.n_devices, "platform": jax.devices()[0].platform,
            "batch_split": "eras" if layout.window_axis((w,), r) == 1 else "rows",
            "step_s": median(times), "train_rows_per_s": w * r / median(times), "compile_s": compile_s,
            "recompiles": compiles.count, "loss": float(box[1]["loss"])}


def run_one(spec: dict, cpu_devices: int) -> dict:
    env = dict(os.environ)
    flag = f"--xla_force_host_platform_device_count={cpu_devices}"
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
    out = subprocess.run([sys.executable, "-m", MODULE, "--one", json.dumps(spec)], env=env, capture_output=True,
                         text=True, check=False, timeout=1800)
    if out.returncode:
        raise RuntimeError(f"{spec} failed (rc {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


COLUMNS = [("mesh", "mesh", ""), ("devices", "devices", ""), ("batch split", "batch_split", ""),
           ("step ms", "step_ms", ".0f"), ("train rows/s", "train_rows_per_s", ",.0f"),
           ("vs one device", "speedup", ".2f"), ("compile s", "compile_s", ".1f"), ("recompiles", "recompiles", ""),
           ("loss - one device's", "loss_diff", ".1e")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meshes", default="data=1,data=2,data=8,data=4;model=2,data=2;members=2;model=2")
    parser.add_argument("--features", type=int, default=705)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--eras", type=int, default=24)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu-devices", type=int, default=8, help="virtual devices of a CPU-only process")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    add_check(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(json.loads(args.one)), default=float))
        return 0
    rows = []
    for mesh in args.meshes.split(","):
        spec = {"mesh": mesh.replace(";", ","), "features": args.features, "members": args.members, "eras": args.eras,
                "rows": args.rows, "repeats": args.repeats}
        row = run_one(spec, args.cpu_devices)
        base = rows[0] if rows else row
        row.update(step_ms=row["step_s"] * 1e3, speedup=base["step_s"] / row["step_s"], loss_diff=abs(row["loss"] - base["loss"]))
        rows.append(row)
        print(f"{row['mesh']:<24} {row['devices']} devices ({row['batch_split']} split): {row['train_rows_per_s']:>9,.0f} rows/s, "
              f"compile {row['compile_s']:.1f}s, recompiles {row['recompiles']}", flush=True)
    markdown = table(rows, COLUMNS)
    print(markdown)
    path = write_results("sharded", {"machine": machine(), "cpu_devices": args.cpu_devices, "results": rows}, markdown)
    print(f"wrote {path}")
    targets = {f"{r['mesh']}: 0 recompiles": r["recompiles"] == 0 for r in rows}
    targets |= {f"{r['mesh']}: loss within {LOSS_TOLERANCE} of one device's": r["loss_diff"] <= LOSS_TOLERANCE for r in rows}
    return gate(args.check, targets, "sharded")


if __name__ == "__main__":
    sys.exit(main())
