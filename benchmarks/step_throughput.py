"""Train-step throughput, compile time, recompiles, peak memory and prediction speed.

    python -m benchmarks.step_throughput [--features 42,705,2376] [--d-model 32,64]
        [--normalizers softmax,sparsemax,entmax15] [--eras 8] [--rows 512] [--repeats 10]
        [--dtypes float32,bfloat16]

Times the real jitted, state-donating, era-vmapped train step (`make_train_step`: forward,
backward and the AdamW update) on a window of W eras x R rows of random int8 bins: median
of `repeats` steps after warm-up, each blocked on (targets are judged on the median; the
fastest step is reported too, as the figure least disturbed by a shared machine). Per configuration, in a fresh process:
compile time (first call), backend compilations during the timed steps (must be 0), peak
memory (resident set on CPU, the allocator's peak on an accelerator), prediction rows/s
(`make_predict` on the same W*R rows), and achieved FLOP/s from XLA's FLOP count of the step
as a fraction of a large f32 matmul timed on the same machine in the same run.
"""

import argparse
import json
from dataclasses import asdict, dataclass

from benchmarks.common import (
    CompileCounter,
    device_peak_bytes,
    machine,
    matmul_ceiling,
    median,
    rss_bytes,
    run_isolated,
    table,
    time_call,
    write_results,
)

MODULE = "benchmarks.step_throughput"
# Targets on a 2-core CPU (D = 32, H = 4, W = 8, R = 512): (features, normalizer) -> train rows/s.
TARGET_ROWS_PER_S = {(705, "softmax"): 30_000, (705, "entmax15"): 12_000, (2376, "softmax"): 10_000}
TARGET_COMPILE_S, TARGET_PREDICT_RATIO, TARGET_MEMORY_GB = 15.0, 3.0, 2.0


@dataclass(frozen=True)
class StepSpec:
    """One benchmarked configuration: W eras x R rows x F features, model width and normaliser."""

    features: int
    d_model: int = 32
    heads: int = 4
    normalizer: str = "softmax"
    eras: int = 8
    rows: int = 512
    repeats: int = 10
    gates: str = "context"  # the default model's per-era gates; "none" for the plain attention model
    dtype: str = "float32"  # model.dtype: "bfloat16" tables and matmuls


def build(spec: StepSpec, seed: int = 0):
    """Model, optimiser, fresh train state and a random window batch of the spec's shapes."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from dynjax.config import ModelConfig, OptimConfig
    from dynjax.data.context import EraContext
    from dynjax.data.missing import N_BINS
    from dynjax.data.windows import Batch
    from dynjax.model.tft import FeatureAttentionModel
    from dynjax.train.state import create_train_state, make_optimizer

    model_cfg = ModelConfig(d_model=spec.d_model, n_heads=spec.heads, normalizer=spec.normalizer, gates=spec.gates,
                            dtype=spec.dtype)
    model = FeatureAttentionModel(model_cfg, spec.features)
    optimizer = make_optimizer(OptimConfig())
    state = create_train_state(model, optimizer, jax.random.key(seed))
    rng = np.random.default_rng(seed)
    batch = Batch(x_WxRxF=jnp.asarray(rng.integers(0, N_BINS, (spec.eras, spec.rows, spec.features), dtype=np.int8)),
                  y_WxR=jnp.asarray(rng.random((spec.eras, spec.rows), dtype=np.float32)),
                  mask_WxR=jnp.ones((spec.eras, spec.rows), bool))
    if spec.gates == "context":  # evidence of a null feature set: about a quarter of the gates open
        z_WxFxC = np.abs(rng.standard_normal((spec.eras, spec.features, len(model_cfg.evidence_eras)))) * 6
        batch = batch.replace(context=EraContext(evidence_FxC=jnp.asarray(np.arcsinh(z_WxFxC), jnp.float32)))
    return model, optimizer, state, batch


def loss_config(spec: StepSpec):
    """The default loss (expected-L0 penalty on the gates); no penalty for the plain model."""
    from dynjax.config import LossConfig

    return LossConfig() if spec.gates != "none" else LossConfig(sparsity="none")


def step_flops(spec: StepSpec, model, optimizer, state, batch, mask_F, key) -> float:
    """XLA's FLOP count of one train step (from the lowered HLO; nothing is compiled)."""
    import jax

    from dynjax.train.step import train_step_fn

    cost = jax.jit(train_step_fn(model, loss_config(spec), optimizer)).lower(state, batch, mask_F, key).cost_analysis()
    return float(cost["flops"])


def measure(spec: StepSpec) -> dict:
    """All figures of one configuration (run it in a fresh process for a clean memory peak)."""
    import time

    import jax
    import jax.numpy as jnp

    from dynjax.train.step import make_predict, make_train_step

    model, optimizer, state, batch = build(spec)
    mask_F, key = jnp.ones(spec.features, bool), jax.random.key(1)
    flops = step_flops(spec, model, optimizer, state, batch, mask_F, key)
    jax.block_until_ready((state, batch))
    rss_before = rss_bytes()
    step = make_train_step(model, loss_config(spec), optimizer)

    start = time.perf_counter()
    state, _ = step(state, batch, mask_F, key)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - start
    box = [state]

    def one_step():
        box[0], _ = step(box[0], batch, mask_F, key)
        return box[0]

    with CompileCounter() as compiles:
        times = time_call(one_step, spec.repeats, warmup=2)

    predict = make_predict(model)
    x_RxF = batch.x_WxRxF.reshape(-1, spec.features)
    context = None if batch.context is None else jax.tree.map(lambda a: a[0], batch.context)
    predict_times = time_call(lambda: predict(box[0].params, x_RxF, mask_F, context), spec.repeats, warmup=1)
    n_rows = spec.eras * spec.rows
    step_s = median(times)
    return {**asdict(spec), "rows_per_step": n_rows, "step_s": step_s, "step_times_s": times,
            "train_rows_per_s": n_rows / step_s, "train_rows_per_s_best": n_rows / min(times),
            "predict_rows_per_s": n_rows / median(predict_times),
            "compile_s": compile_s, "recompiles": compiles.count, "step_flops": flops,
            "achieved_flops_per_s": flops / step_s, "rss_before_bytes": rss_before,
            "peak_rss_bytes": rss_bytes("VmHWM"), "device_peak_bytes": device_peak_bytes()}


def _ceiling() -> dict:
    return {"machine": machine(), "matmul": matmul_ceiling()}


def judge(row: dict, on_cpu: bool) -> dict:
    """Targets of the issue for this row (rows/s targets apply to the 2-core CPU reference)."""
    row["predict_over_train"] = row["predict_rows_per_s"] / row["train_rows_per_s"]
    row["memory_beyond_data_gb"] = ((row["device_peak_bytes"] if row["device_peak_bytes"] is not None
                                     else row["peak_rss_bytes"] - row["rss_before_bytes"]) / 2**30)
    checks = {"compile": row["compile_s"] < TARGET_COMPILE_S, "recompiles": row["recompiles"] == 0,
              "predict_3x": row["predict_over_train"] >= TARGET_PREDICT_RATIO}
    target = TARGET_ROWS_PER_S.get((row["features"], row["normalizer"])) if row["d_model"] == 32 else None
    if target and on_cpu:
        row["target_rows_per_s"] = target
        checks["rows_per_s"] = row["train_rows_per_s"] >= target
    if row["features"] == 2376 and on_cpu:
        checks["memory"] = row["memory_beyond_data_gb"] < TARGET_MEMORY_GB
    row["targets"] = checks
    row["met"] = all(checks.values())
    return row


COLUMNS = [("F", "features", ""), ("D", "d_model", ""), ("normaliser", "normalizer", ""), ("gates", "gates", ""),
           ("dtype", "dtype", ""),
           ("train rows/s", "train_rows_per_s", ",.0f"), ("best", "train_rows_per_s_best", ",.0f"),
           ("target", "target_rows_per_s", ",.0f"),
           ("step ms", "step_ms", ".0f"), ("predict rows/s", "predict_rows_per_s", ",.0f"),
           ("predict/train", "predict_over_train", ".1f"), ("compile s", "compile_s", ".1f"),
           ("recompiles", "recompiles", ""), ("peak mem GB", "memory_beyond_data_gb", ".2f"),
           ("FLOP/s of matmul", "flop_fraction", ".1%"), ("targets met", "met", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", default="42,705,2376")
    parser.add_argument("--d-model", default="32,64")
    parser.add_argument("--normalizers", default="softmax,sparsemax,entmax15")
    parser.add_argument("--gates", default="context", help="context (the default model), none, or both: none,context")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--eras", type=int, default=8)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtypes", default="float32", help="model.dtype values, e.g. float32,bfloat16")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        spec = json.loads(args.one)
        print(json.dumps(_ceiling() if spec == "ceiling" else measure(StepSpec(**spec)), default=float))
        return

    base = run_isolated(MODULE, "ceiling")
    ceiling = base["matmul"]["flops_per_s"]
    on_cpu = base["machine"]["backend"] == "cpu"
    print(f"{base['machine']['device']} ({base['machine']['cpu']}, {base['machine']['cpu_cores']} cores): "
          f"f32 matmul {base['matmul']['n']}^3 at {ceiling / 1e9:,.0f} GFLOP/s")
    rows = []
    for features in map(int, args.features.split(",")):
        for d_model in map(int, args.d_model.split(",")):
            for normalizer, gates, dtype in ((n, g, t) for n in args.normalizers.split(",") for g in args.gates.split(",")
                                             for t in args.dtypes.split(",")):
                spec = StepSpec(features, d_model, args.heads, normalizer, args.eras, args.rows, args.repeats, gates, dtype)
                row = judge(run_isolated(MODULE, asdict(spec)), on_cpu)
                row["step_ms"] = row["step_s"] * 1e3
                row["flop_fraction"] = row["achieved_flops_per_s"] / ceiling
                rows.append(row)
                print(f"F={features:<5} D={d_model:<3} {normalizer:<10} gates={gates:<8} {dtype:<8} "
                      f"{row['train_rows_per_s']:>9,.0f} rows/s  "
                      f"predict {row['predict_rows_per_s']:>9,.0f}  compile {row['compile_s']:.1f}s  "
                      f"recompiles {row['recompiles']}  mem {row['memory_beyond_data_gb']:.2f} GB  "
                      f"{row['flop_fraction']:.1%} of matmul  {'met' if row['met'] else 'MISSED: ' + str(row['targets'])}",
                      flush=True)
    markdown = table(rows, COLUMNS)
    print(markdown)
    # A precision comparison is its own record; the plain run keeps the float32 table.
    name = "step_throughput" if args.dtypes == "float32" else "step_throughput_dtypes"
    path = write_results(name, {**base, "eras": args.eras, "rows": args.rows, "heads": args.heads,
                                             "results": rows}, markdown)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
