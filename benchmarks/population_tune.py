"""Population sweeps against sequential trials: `tune.population=N` vs N trials one after another.

    python -m benchmarks.population_tune [--n 4] [--root /tmp/dynjax_bench_pop]

N trials that differ only in float hyperparameters (learning rate, weight decay, sparsity
lambda, distillation weight: drawn log-uniformly around the defaults with a fixed seed) are
scored on the same walk-forward folds twice: as N sequential `tune.evaluate` calls (each
compiles its own step, as trials of `dynjax tune` do) and as one `evaluate_population` (one
jitted step vmapped over the N trials). Reports both wall times, their ratio and the largest
difference between a trial's fold metric in the two (float rounding of the scaled schedule;
a wrong hyperparameter would show as a large one). On a small synthetic set (80 training eras
of ~300 rows, 60 features, two folds of 8 eras) so the benchmark takes minutes on 2 cores.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, synthetic_data, table, write_results

SYNTH = ["synth.n_train_eras=80", "synth.n_val_eras=4", "synth.rows_per_era=300", "synth.n_features=60",
         "synth.n_factors=8", "synth.active_per_regime=5", "synth.regime_eras=16"]
RUN = ["train.ensemble=1", "train.pretrain_epochs=2", "tune.folds=2", "tune.fold_eras=8", "data.window_eras=8",
       "train.holdout_eras=8"]


def draw_hyper(n: int, seed: int = 0) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    logu = lambda lo, hi: np.exp(rng.uniform(np.log(lo), np.log(hi), n)).tolist()
    return {"optim.learning_rate": logu(1e-3, 1e-2), "optim.weight_decay": logu(1e-6, 1e-2),
            "loss.sparsity_lambda": logu(2e-3, 0.2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--root", default="/tmp/dynjax_bench_pop")
    args = parser.parse_args()
    from dynjax.config import RunConfig, override
    from dynjax.data import impute_splits, load_numerai
    from dynjax.tune.objective import evaluate, evaluate_population

    cfg = override(RunConfig(), [*SYNTH, *RUN])
    data = load_numerai(synthetic_data(args.root, cfg.synth), validation=False, live=False)
    impute_splits(cfg.data.missing, data.train, seed=cfg.seed)
    hyper = draw_hyper(args.n)
    keep = lambda g, fold, value: True
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sequential = []
        for g in range(args.n):
            trial = override(cfg, [f"{k}={v[g]!r}" for k, v in hyper.items()])
            sequential.append(evaluate(trial, data, Path(tmp) / f"seq{g}"))
            print(f"sequential trial {g}: {sequential[-1]['value']:.4f}", flush=True)
        sequential_s = time.perf_counter() - start
        start = time.perf_counter()
        together = evaluate_population(cfg, hyper, data, Path(tmp) / "population", keep)
        population_s = time.perf_counter() - start
    diff = max(abs(a["value"] - b["value"]) for a, b in zip(sequential, together))
    row = {"n": args.n, "sequential_s": sequential_s, "population_s": population_s, "speedup": sequential_s / population_s,
           "max_value_diff": diff, "values_sequential": [r["value"] for r in sequential],
           "values_population": [r["value"] for r in together]}
    print(f"population of {args.n}: {population_s:.1f}s; {args.n} sequential trials: {sequential_s:.1f}s "
          f"(x{row['speedup']:.2f}); largest fold-metric difference {diff:.4f}")
    md = table([row], [("trials N", "n", "d"), ("N sequential s", "sequential_s", ".1f"),
                       ("population s", "population_s", ".1f"), ("sequential / population", "speedup", ".2f"),
                       ("max |value diff|", "max_value_diff", ".4f")])
    print(md)
    write_results("population_tune", {"machine": machine(), "config": [*SYNTH, *RUN], "hyper": hyper, "rows": [row]},
                  md)


if __name__ == "__main__":
    main()
