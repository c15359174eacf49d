"""Train-step throughput, compile time, recompiles, peak memory and prediction speed.

    python -m benchmarks.step_throughput [--features 42,705,2376] [--d-model 32,64]
        [--normalizers softmax,sparsemax,entmax15] [--eras 8] [--rows 512] [--repeats 10]
        [--dtypes float32,bfloat16] [--placements host,device] [--members 2] [--check]

Times the step a run uses: `dynjax.train.step.make_step` as `train.run.compiled` builds it
for the default config (its ensemble of `--members` members vmapped in one step, its loss with
the additive prior, AdamW with the Polyak average), on pretraining's batches of W eras x R rows
drawn from a synthetic split of random int8 bins. Each timed step includes what the run does
on the host for it: drawing the rows and, with `host` placement, gathering them (numpy) and
sending them; with `device` placement the split lives on the device and the step gathers its
rows from int32 row numbers. Median of `repeats` steps after warm-up, each blocked on (targets
are judged on the median; the fastest step is reported too, as the figure least disturbed by a
shared machine). Rows/s count member-rows: W x R x members per step. Per configuration, in a
fresh process: compile time (first call), backend compilations during the timed steps (must be
0), peak memory (resident set on CPU, the allocator's peak on an accelerator), prediction rows/s
(the run's predict on W x R rows in one chunk), and achieved FLOP/s from XLA's FLOP count of
the step as a fraction of a large f32 matmul timed on the same machine in the same run.
`--check` exits 1 when a target is missed.
"""

import argparse
import dataclasses
import json
import sys
from dataclasses import asdict, dataclass

from benchmarks.common import (
    CompileCounter,
    cpu_since,
    cpu_usage,
    device_peak_bytes,
    gate,
    machine,
    matmul_ceiling,
    median,
    rss_bytes,
    run_isolated,
    table,
    time_call,
    write_results,
    xla_flops,
)

MODULE = "benchmarks.step_throughput"
# Targets on a 2-core CPU (D = 32, H = 4, W = 8, R = 512): (features, normalizer) -> train rows/s.
TARGET_ROWS_PER_S = {(705, "softmax"): 30_000, (705, "entmax15"): 12_000, (2376, "softmax"): 10_000}
# On an accelerator (device placement, the run's two-member step): member-rows/s.
TARGET_ACCELERATOR_ROWS_PER_S = {(705, "softmax"): 10_000_000}
TARGET_COMPILE_S, TARGET_PREDICT_RATIO, TARGET_MEMORY_GB = 15.0, 3.0, 2.0
# Device placement against host placement, their steps alternating in one process: at least as fast.
TARGET_DEVICE_OVER_HOST = 1.0


@dataclass(frozen=True)
class StepSpec:
    """One benchmarked configuration: W eras x R rows x F features, model width, normaliser, placement."""

    features: int
    d_model: int = 32
    heads: int = 4
    normalizer: str = "softmax"
    eras: int = 8
    rows: int = 512
    repeats: int = 10
    gates: str = "context"  # the default model's per-era gates; "none" for the plain attention model
    dtype: str = "float32"  # model.dtype: "bfloat16" tables and matmuls
    placement: str = "host"  # data.placement: "device" keeps the split on the device
    members: int = 2  # train.ensemble (the default's two members)


def run_config(spec: StepSpec):
    """The default run config with the spec's model, window and ensemble."""
    from dynjax.config import RunConfig, override

    return override(RunConfig(), [f"model.d_model={spec.d_model}", f"model.n_heads={spec.heads}",
                                  f"model.normalizer={spec.normalizer}", f"model.gates={spec.gates}",
                                  f"model.dtype={spec.dtype}", f"data.window_eras={spec.eras}",
                                  f"data.rows_per_era={spec.rows}", f"data.placement={spec.placement}",
                                  f"train.ensemble={spec.members}"]
                    + ([] if spec.gates != "none" else ["loss.sparsity=none"]))


def synthetic_split(spec: StepSpec, seed: int = 0):
    """A split of 4 W eras x 2 R rows of random int8 bins and targets to draw windows from."""
    import numpy as np
    import polars as pl

    from dynjax.data.bins import N_BINS
    from dynjax.data.eras import build_era_index
    from dynjax.data.numerai import EraData

    rng, n_eras, per_era = np.random.default_rng(seed), 4 * spec.eras, 2 * spec.rows
    n = n_eras * per_era
    numbers = np.repeat(np.arange(n_eras), per_era)
    index = build_era_index([f"{e:04d}" for e in numbers], numbers, np.full(n, True))
    return EraData(x_NxF=rng.integers(0, N_BINS, (n, spec.features), dtype=np.int8),
                   y_NxT=rng.random((n, 1), dtype=np.float32), ids=pl.Series("id", np.arange(n).astype(str)),
                   index=index, features=tuple(f"f{i}" for i in range(spec.features)), targets=("target",),
                   source="synthetic")


def build(spec: StepSpec, seed: int = 0):
    """The run's jitted step and predict for the spec, its placed members, the split (and its
    resident copy), and `next_batch()`: a fresh window as the run draws it."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from dynjax.data.context import EraContext
    from dynjax.data.resident import put_resident
    from dynjax.data.windows import sample_eras, window_rng
    from dynjax.train.members import plan_members
    from dynjax.train.run import batch_specs, compiled
    from dynjax.train.state import initial_run_state, resolve_decay

    cfg, split = run_config(spec), synthetic_split(spec, seed)
    cfg = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, prior_rows=split.n_rows),
                              optim=resolve_decay(cfg.optim, 10_000))  # as a run resolves them
    device, members = spec.placement == "device", plan_members(cfg)
    batch_spec = batch_specs(cfg, members, device)[0]
    fns = compiled(cfg.model, spec.features, cfg.loss, cfg.optim, spec.members, mesh=cfg.train.mesh, specs=(batch_spec,),
                   resident=device, chunks=(spec.eras * spec.rows,))
    train = initial_run_state(members, fns.model, fns.optimizer, jax.random.key(seed)).train
    train = fns.layout.put(train, fns.layout.train_shardings(train))
    resident = put_resident((split,), fns.layout.put, fns.layout.replicated) if device else None
    rng = np.random.default_rng(seed)
    context = None
    if spec.gates == "context":  # evidence of a null feature set: about a quarter of the gates open
        z_WxFxV = np.abs(rng.standard_normal((spec.eras, spec.features, len(cfg.model.evidence_eras)))) * 6
        context = EraContext(evidence_FxV=np.arcsinh(z_WxFxV).astype(np.float32))
    counter = iter(range(10**9))

    def next_batch():
        i = next(counter)
        window = np.sort(rng.choice(split.index.n_eras, spec.eras, replace=False))
        batch = sample_eras([(split, int(e)) for e in window], spec.rows, window_rng(seed, i),
                            offsets=[0] * spec.eras if device else None)
        return batch.replace(context=context)

    return fns, fns.steps[batch_spec], train, split, resident, next_batch, jnp.ones(spec.features, bool)


def measure(spec: StepSpec) -> dict:
    """All figures of one configuration (run it in a fresh process for a clean memory peak)."""
    import time

    import jax
    import numpy as np

    fns, step, train, split, resident, next_batch, mask_F = build(spec)
    key = jax.random.key(1)
    jax.block_until_ready(train)
    rss_before = rss_bytes()

    start = time.perf_counter()
    train, _ = step(train, next_batch(), mask_F, key, resident)
    jax.block_until_ready(train)
    compile_s = time.perf_counter() - start
    # After the timed first call: where the FLOP count needs a compile (GPU), it must not pre-empt that one.
    flops = xla_flops(step.lower(train, next_batch(), mask_F, key, resident))
    box = [train]

    def one_step():
        box[0], _ = step(box[0], next_batch(), mask_F, key, resident)
        return box[0]

    before = cpu_usage()
    with CompileCounter() as compiles:
        times = time_call(one_step, spec.repeats, warmup=2)
    cpu = cpu_since(before)  # the timed steps' and their warm-up's: system CPU and faults are allocator churn

    n_rows = spec.eras * spec.rows
    chunk = (np.arange(n_rows, dtype=np.int32) if resident is not None else split.x_NxF[:n_rows])
    context = None if next_batch().context is None else jax.tree.map(lambda a: a[0], next_batch().context)
    valid = np.ones(n_rows, bool)
    predict_times = time_call(lambda: fns.predict(box[0].ema_params, chunk, valid, mask_F, context, resident),
                              spec.repeats, warmup=1)
    step_s = median(times)
    member_rows = n_rows * spec.members
    return {**asdict(spec), "rows_per_step": n_rows, "step_s": step_s, "step_times_s": times,
            "train_rows_per_s": member_rows / step_s, "train_rows_per_s_best": member_rows / min(times),
            "predict_rows_per_s": member_rows / median(predict_times),
            "compile_s": compile_s, "recompiles": compiles.count, "step_flops": flops,
            "achieved_flops_per_s": flops / step_s, "rss_before_bytes": rss_before,
            "peak_rss_bytes": rss_bytes("VmHWM"), "device_peak_bytes": device_peak_bytes(),
            "cpu": cpu, "system_share": cpu["system_share"], "faults_per_step": cpu["minor_faults"] / (spec.repeats + 2)}


def _ceiling() -> dict:
    return {"machine": machine(), "matmul": matmul_ceiling()}


def judge(row: dict, on_cpu: bool) -> dict:
    """Targets of the issue for this row (rows/s targets apply to the 2-core CPU reference)."""
    row["predict_over_train"] = row["predict_rows_per_s"] / row["train_rows_per_s"]
    row["memory_beyond_data_gb"] = ((row["device_peak_bytes"] if row["device_peak_bytes"] is not None
                                     else row["peak_rss_bytes"] - row["rss_before_bytes"]) / 2**30)
    checks = {"compile": row["compile_s"] < TARGET_COMPILE_S, "recompiles": row["recompiles"] == 0,
              "predict_3x": row["predict_over_train"] >= TARGET_PREDICT_RATIO}
    targets = TARGET_ROWS_PER_S if on_cpu else TARGET_ACCELERATOR_ROWS_PER_S if row.get("placement") == "device" else {}
    target = targets.get((row["features"], row["normalizer"])) if row["d_model"] == 32 else None
    if target:
        row["target_rows_per_s"] = target
        checks["rows_per_s"] = row["train_rows_per_s"] >= target
    if row["features"] >= 2376 and on_cpu:
        checks["memory"] = row["memory_beyond_data_gb"] < TARGET_MEMORY_GB
    row["targets"] = checks
    row["met"] = all(checks.values())
    return row


COLUMNS = [("F", "features", ""), ("D", "d_model", ""), ("normaliser", "normalizer", ""), ("gates", "gates", ""),
           ("dtype", "dtype", ""), ("placement", "placement", ""), ("members", "members", ""),
           ("train rows/s", "train_rows_per_s", ",.0f"), ("best", "train_rows_per_s_best", ",.0f"),
           ("target", "target_rows_per_s", ",.0f"),
           ("step ms", "step_ms", ".0f"), ("predict rows/s", "predict_rows_per_s", ",.0f"),
           ("predict/train", "predict_over_train", ".1f"), ("compile s", "compile_s", ".1f"),
           ("recompiles", "recompiles", ""), ("peak mem GB", "memory_beyond_data_gb", ".2f"),
           ("FLOP/s of matmul", "flop_fraction", ".1%"), ("system / user CPU", "system_share", ".1%"),
           ("faults / step", "faults_per_step", ",.0f"), ("targets met", "met", "")]


def markdown(rows: list[dict], device_vs_host: dict[str, float]) -> str:
    """The results table, then the paired placement ratios."""
    text = table(rows, COLUMNS)
    if device_vs_host:
        text += "\n\n" + "\n".join(f"- {k}: device / host train rows/s {v:.2f} (paired run, steps alternating)"
                                     for k, v in device_vs_host.items())
    return text


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
    parser.add_argument("--placements", default="host,device", help="data.placement values: host, device or both")
    parser.add_argument("--members", type=int, default=2, help="train.ensemble: members in the one vmapped step")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--name", help="results file name (default step_throughput, or step_throughput_dtypes)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        spec = json.loads(args.one)
        if spec == "ceiling":
            print(json.dumps(_ceiling(), default=float))
        elif "pair" in spec:
            print(json.dumps(measure_pair(StepSpec(**spec["pair"])), default=float))
        else:
            print(json.dumps(measure(StepSpec(**spec)), default=float))
        return

    base = run_isolated(MODULE, "ceiling")
    ceiling = base["matmul"]["flops_per_s"]
    on_cpu = base["machine"]["backend"] == "cpu"
    print(f"{base['machine']['device']} ({base['machine']['cpu']}, {base['machine']['cpu_cores']} cores): "
          f"f32 matmul {base['matmul']['n']}^3 at {ceiling / 1e9:,.0f} GFLOP/s")
    # A precision comparison is its own record; the plain run keeps the float32 table.
    name = args.name or ("step_throughput" if args.dtypes == "float32" else "step_throughput_dtypes")

    def save(rows: list[dict], device_vs_host: dict[str, float]):
        return write_results(name, {**base, "eras": args.eras, "rows": args.rows, "heads": args.heads,
                                    "device_over_host": device_vs_host, "results": rows}, markdown(rows, device_vs_host))

    rows = []
    for features in map(int, args.features.split(",")):
        for d_model in map(int, args.d_model.split(",")):
            for normalizer, gates, dtype, placement in ((n, g, t, p) for n in args.normalizers.split(",")
                                                        for g in args.gates.split(",") for t in args.dtypes.split(",")
                                                        for p in args.placements.split(",")):
                spec = StepSpec(features, d_model, args.heads, normalizer, args.eras, args.rows, args.repeats, gates, dtype,
                                placement, args.members)
                row = judge(run_isolated(MODULE, asdict(spec)), on_cpu)
                row["step_ms"] = row["step_s"] * 1e3
                row["flop_fraction"] = row["achieved_flops_per_s"] / ceiling
                rows.append(row)
                print(f"F={features:<5} D={d_model:<3} {normalizer:<10} gates={gates:<8} {dtype:<8} {placement:<6} "
                      f"{row['train_rows_per_s']:>9,.0f} rows/s  "
                      f"predict {row['predict_rows_per_s']:>9,.0f}  compile {row['compile_s']:.1f}s  "
                      f"recompiles {row['recompiles']}  mem {row['memory_beyond_data_gb']:.2f} GB  "
                      f"{row['flop_fraction']:.1%} of matmul  {'met' if row['met'] else 'MISSED: ' + str(row['targets'])}",
                      flush=True)
                save(rows, {})  # after every row: a suite cut short by its time limit keeps what it measured
    device_vs_host = placement_ratios(rows, 2 * args.repeats)
    print(markdown(rows, device_vs_host))
    print(f"wrote {save(rows, device_vs_host)}")
    targets = {f"{r['features']} {r['normalizer']} {r['dtype']} {r['placement']}: {k}": met
               for r in rows for k, met in r["targets"].items()}
    targets |= {f"{k}: device >= {TARGET_DEVICE_OVER_HOST} x host": v >= TARGET_DEVICE_OVER_HOST
                for k, v in device_vs_host.items()}
    sys.exit(gate(args.check, targets, "step_throughput"))


def measure_pair(spec: StepSpec) -> dict:
    """Host and device placement of one configuration in one process, their steps alternating (each
    with its host work: drawing, and for host placement gathering and sending, the rows), so that
    a shared machine's drift falls on both alike; medians of `repeats` steps each."""
    import time

    import jax

    parts = {p: build(dataclasses.replace(spec, placement=p)) for p in ("host", "device")}
    boxes, key = {p: parts[p][2] for p in parts}, jax.random.key(1)

    def one(p: str) -> float:
        _, step, _, _, resident, next_batch, mask_F = parts[p]
        start = time.perf_counter()
        boxes[p], _ = step(boxes[p], next_batch(), mask_F, key, resident)
        jax.block_until_ready(boxes[p])
        return time.perf_counter() - start

    for p in parts:  # compile and warm up
        one(p), one(p)
    times = {p: [] for p in parts}
    for i in range(spec.repeats):
        for p in ("host", "device") if i % 2 else ("device", "host"):
            times[p].append(one(p))
    return {"host_step_s": median(times["host"]), "device_step_s": median(times["device"]),
            "device_over_host": median(times["host"]) / median(times["device"])}


def placement_ratios(rows: list[dict], repeats: int) -> dict[str, float]:
    """Device over host placement's train rows/s, per configuration measured both ways: from a
    paired run of the two in one fresh process (`measure_pair`)."""
    key = lambda r: (r["features"], r["d_model"], r["heads"], r["normalizer"], r["eras"], r["rows"], r["gates"], r["dtype"],
                     r["members"])
    both = {key(r) for r in rows if r["placement"] == "host"} & {key(r) for r in rows if r["placement"] == "device"}
    out = {}
    for k in sorted(both):
        spec = StepSpec(k[0], k[1], k[2], k[3], k[4], k[5], repeats, k[6], k[7], "host", k[8])
        pair = run_isolated(MODULE, {"pair": asdict(spec)})
        out[f"F={k[0]} D={k[1]} {k[3]} gates={k[6]} {k[7]}"] = pair["device_over_host"]
    return out


if __name__ == "__main__":
    main()
