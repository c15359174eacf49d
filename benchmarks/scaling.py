"""How the train step's cost grows with rows, eras and features, and population training.

    python -m benchmarks.scaling [--rows 128,256,512,1024,2048] [--eras 2,4,8,16]
        [--features 42,176,705,1410,2376] [--population 1,4,16] [--repeats 10]

Each sweep varies one of R (rows per era), W (eras per window) and F (features) around the
reference W = 8, R = 512, F = 705 (softmax, D = 32, H = 4) and fits the exponent k of
step time ~ size^k on a log-log scale, on each configuration's fastest step (the least noisy
figure on a shared machine): k = 1 is linear, k < 1 means fixed costs still dominate. The
population run times the walk-forward's own ensemble step (`train.ensemble=N`: the step
`dynjax.train.step.make_step` builds, vmapped over N member states, N = 1 the plain step)
against N calls of the one-member step; the ratio is sequential time over population time.
The reference step is the one a default run uses (`benchmarks.step_throughput`: context
gates, L0 penalty, additive prior, two members, host rows).
"""

import argparse
import dataclasses

import numpy as np

from benchmarks.common import machine, matmul_ceiling, median, table, time_call, write_results
from benchmarks.step_throughput import StepSpec, build, measure

REFERENCE = StepSpec(features=705, d_model=32, heads=4, normalizer="softmax", eras=8, rows=512)


def sweep(field: str, values: list[int], repeats: int, cache: dict) -> dict:
    """Step time and rows/s per value of one StepSpec field; the fitted cost exponent."""
    rows = []
    for v in values:
        spec = dataclasses.replace(REFERENCE, **{field: v, "repeats": repeats})
        if spec not in cache:
            cache[spec] = measure(spec)
        r = cache[spec]
        rows.append({"sweep": field, "value": v, "step_ms": r["step_s"] * 1e3, "best_step_ms": min(r["step_times_s"]) * 1e3,
                     "train_rows_per_s": r["train_rows_per_s"],
                     "predict_rows_per_s": r["predict_rows_per_s"], "step_gflop": r["step_flops"] / 1e9})
        print(f"{field}={v:<6} step {r['step_s'] * 1e3:8.1f} ms (best {rows[-1]['best_step_ms']:.1f})  "
              f"{r['train_rows_per_s']:>10,.0f} rows/s", flush=True)
    if len(set(values)) < 2:
        return {"field": field, "exponent": None, "rows": rows}
    # Fitted on the fastest of the repeats: on a shared machine it is the least noisy estimate.
    slope = float(np.polyfit(np.log(values), np.log([r["best_step_ms"] for r in rows]), 1)[0])
    print(f"  step time ~ {field}^{slope:.2f}")
    return {"field": field, "exponent": slope, "rows": rows}


def population(ns: list[int], repeats: int) -> list[dict]:
    """The run's step over N members (one vmapped step, `make_step`) vs N sequential one-member steps."""
    return [_population_one(n, repeats) for n in ns]


def _population_one(n: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    _, single, one, _, _, next_batch, mask_F = build(dataclasses.replace(REFERENCE, members=1))
    _, vmapped, pop, _, _, _, _ = build(dataclasses.replace(REFERENCE, members=n))
    batch, key = next_batch(), jax.random.key(1)
    box, seq = [pop], [jax.tree.map(jnp.copy, one) for _ in range(n)]

    def pop_step():
        box[0], _ = vmapped(box[0], batch, mask_F, key, None)
        return box[0]

    def seq_step():
        for i in range(n):
            seq[i], _ = single(seq[i], batch, mask_F, key, None)
        return seq

    vmap_s, seq_s = median(time_call(pop_step, repeats)), median(time_call(seq_step, repeats))
    rows_per_s = n * REFERENCE.eras * REFERENCE.rows / vmap_s
    print(f"population N={n:<3} vmapped {vmap_s * 1e3:8.1f} ms  sequential {seq_s * 1e3:8.1f} ms  "
          f"ratio {seq_s / vmap_s:.2f}  {rows_per_s:,.0f} model-rows/s", flush=True)
    return {"n_models": n, "vmapped_step_ms": vmap_s * 1e3, "sequential_ms": seq_s * 1e3,
            "sequential_over_vmapped": seq_s / vmap_s, "model_rows_per_s": rows_per_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="128,256,512,1024,2048")
    parser.add_argument("--eras", default="2,4,8,16")
    parser.add_argument("--features", default="42,176,705,1410,2376")
    parser.add_argument("--population", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    ints = lambda s: [int(v) for v in s.split(",") if v]
    base = {"machine": machine(), "matmul": matmul_ceiling()}
    print(f"{base['machine']['device']} ({base['machine']['cpu']}): f32 matmul {base['matmul']['flops_per_s'] / 1e9:,.0f} GFLOP/s; "
          f"reference W={REFERENCE.eras} R={REFERENCE.rows} F={REFERENCE.features} D={REFERENCE.d_model} {REFERENCE.normalizer}")
    cache: dict = {}
    sweeps = [sweep(field, ints(values), args.repeats, cache)
              for field, values in (("rows", args.rows), ("eras", args.eras), ("features", args.features)) if ints(values)]
    pop = population(ints(args.population), args.repeats) if ints(args.population) else []

    markdown = "\n\n".join([
        table([r for s in sweeps for r in s["rows"]],
              [("sweep", "sweep", ""), ("value", "value", ""), ("step ms", "step_ms", ".1f"), ("best ms", "best_step_ms", ".1f"),
               ("train rows/s", "train_rows_per_s", ",.0f"), ("predict rows/s", "predict_rows_per_s", ",.0f"),
               ("GFLOP/step", "step_gflop", ".2f")]),
        table([{"sweep": s["field"], "exponent": s["exponent"]} for s in sweeps],
              [("step time ~ size^k", "sweep", ""), ("k", "exponent", ".2f")]),
        table(pop, [("models N", "n_models", ""), ("vmapped step ms", "vmapped_step_ms", ".1f"),
                    ("N sequential steps ms", "sequential_ms", ".1f"), ("sequential / vmapped", "sequential_over_vmapped", ".2f"),
                    ("model-rows/s", "model_rows_per_s", ",.0f")]),
    ])
    print(markdown)
    path = write_results("scaling", {**base, "reference": dataclasses.asdict(REFERENCE), "sweeps": sweeps,
                                     "population": pop}, markdown)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
