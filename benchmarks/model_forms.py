"""Naive vs tabulated feature attention: rows/s of a jitted forward + backward.

    python -m benchmarks.model_forms [--features 705] [--rows 4096] [--d-model 32] [--heads 4]

Numerai features are discrete, so everything that depends on one feature's own value (its
token GRN, keys, values, attention logits) can be computed once per (feature, bin) — an
F x 6 table — instead of once per row (R x F). Both forms compute the same function; this
times each (median of repeats after warm-up, `block_until_ready`) per normaliser and writes
benchmarks/results/model_forms.json.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import machine, table, write_results
from dynjax.config import ModelConfig
from dynjax.model import FeatureAttentionModel, masked_mse


def time_form(cfg: ModelConfig, n_features: int, n_rows: int, repeats: int) -> dict:
    model = FeatureAttentionModel(cfg, n_features)
    key = jax.random.key(0)
    x_RxF = jax.random.randint(key, (n_rows, n_features), 0, 6).astype(jnp.int8)
    y_R = jax.random.uniform(key, (n_rows,))
    mask_R = jnp.ones(n_rows, bool)
    params = model.init(key, x_RxF[:2])

    @jax.jit
    def grad_step(params, x_RxF, y_R):
        def loss(p):
            pred_R, _ = model.apply(p, x_RxF)
            return masked_mse(pred_R, y_R, mask_R)
        return jax.value_and_grad(loss)(params)

    start = time.perf_counter()
    jax.block_until_ready(grad_step(params, x_RxF, y_R))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(grad_step(params, x_RxF, y_R))
        times.append(time.perf_counter() - start)
    step_s = float(np.median(times))
    return {"normalizer": cfg.normalizer, "tabulate": cfg.tabulate, "step_s": step_s,
            "rows_per_s": n_rows / step_s, "compile_s": compile_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=705)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--normalizers", default="softmax,sparsemax,entmax15")
    args = parser.parse_args()
    rows = []
    print(f"F={args.features} D={args.d_model} H={args.heads} R={args.rows}  backend={jax.default_backend()}")
    print(f"{'normalizer':<11}{'form':<11}{'rows/s':>12}{'step ms':>10}{'compile s':>11}")
    for name in args.normalizers.split(","):
        for tabulate in (False, True):
            cfg = ModelConfig(d_model=args.d_model, n_heads=args.heads, normalizer=name, tabulate=tabulate)
            r = time_form(cfg, args.features, args.rows, args.repeats)
            rows.append(r)
            form = "tabulated" if tabulate else "naive"
            print(f"{name:<11}{form:<11}{r['rows_per_s']:>12,.0f}{r['step_s'] * 1e3:>10.1f}{r['compile_s']:>11.1f}")
    meta = {"features": args.features, "rows": args.rows, "d_model": args.d_model, "heads": args.heads, "machine": machine()}
    for r in rows:
        r["form"] = "tabulated" if r["tabulate"] else "naive"
    markdown = table(rows, [("normaliser", "normalizer", ""), ("form", "form", ""), ("rows/s", "rows_per_s", ",.0f"),
                            ("compile s", "compile_s", ".1f")])
    print(f"wrote {write_results('model_forms', {**meta, 'results': rows}, markdown)}")


if __name__ == "__main__":
    main()
