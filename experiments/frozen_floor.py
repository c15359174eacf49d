"""A safe expert, replayed exactly on finished runs: the walk-forward mixed with its own frozen model.

    python -m experiments.frozen_floor --root /tmp/dj [--settings default,...] [--variant default]
        [--seeds 0,1,2] [--name frozen_floor]

Question: can the model frozen after pretraining serve the mixture as an expert it always falls
back to, so that updates add skill but never take the frozen model's away? Every run writes the
walk-forward's and the frozen model's predictions of every validation era, so a mixture of the two
is exact to replay: per era, the weighted mean of their tie-kept ranks, scored with Numerai corr
against the era's target. A rule maps the corr of the eras resolved before era t (position
<= t - 1 - embargo, as the run) of a grid of mixtures (frozen weight 0, 1/4, 1/2, 3/4, 1) to
weights over the grid; the era's prediction mixes the two at the weighted frozen share. Rules:
fixed shares, Hedge (softmax(eta x summed corr), as the run's), and Hedge on a mean-variance score
(summed corr less `risk` x n x the variance of the per-era corr). Reports corr / Sharpe / max
drawdown / share of eras below zero per rule and setting, mean over seeds, beside the walk-forward
and the frozen model.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from dynjax.eval.scores import fast_numerai_corr, summarize
from experiments.record import make_data, replay_main

SHARES = np.array([0.0, 0.25, 0.5, 0.75, 1.0])  # the frozen model's share of each mixture Hedge weighs


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def hedge(eta: float, risk: float = 0.0):
    """Weights over the grid from the resolved eras' corr `[E, A]`: softmax(eta * (sum - risk * n * var))."""
    def rule(corr_ExA: np.ndarray) -> np.ndarray:
        n = len(corr_ExA)
        score_A = corr_ExA.sum(0) - (risk * n * corr_ExA.var(0) if n > 1 else 0.0)
        return softmax(eta * score_A)
    return rule


def fixed(share: float):
    return lambda corr_ExA: (SHARES == share).astype(float)


RULES = {"walk-forward": fixed(0.0), "frozen": fixed(1.0), "fixed 1/4": fixed(0.25), "fixed 1/2": fixed(0.5),
         "hedge eta 30": hedge(30.0), "hedge eta 10": hedge(10.0), "mean-variance 3": hedge(30.0, 3.0),
         "mean-variance 10": hedge(30.0, 10.0)}


def era_ranks(out: Path, data_dir: Path) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int]:
    """Per validation era (in order) the walk-forward's and the frozen model's ranks and the target; the embargo."""
    import json

    from numerai_tools.scoring import tie_kept_rank

    truth = pl.read_parquet(data_dir / "validation.parquet", columns=["id", "era", "target"]).filter(pl.col("target").is_not_nan())
    walk = pl.read_parquet(out / "predictions.parquet").select("id", pl.col("prediction").alias("walk"))
    frozen = pl.read_parquet(out / "predictions_frozen.parquet").select("id", pl.col("prediction").alias("frozen"))
    frame = truth.join(walk, on="id").join(frozen, on="id").sort("era")
    rank = lambda v: tie_kept_rank(pd.DataFrame({"p": v}))["p"].to_numpy()
    eras = [(rank(p["walk"].to_numpy()), rank(p["frozen"].to_numpy()), p["target"].to_numpy())
            for _, p in frame.group_by("era", maintain_order=True)]
    return eras, json.loads((out / "metrics.json").read_text())["embargo"]["eras"]


# Candidates of the policy rule: the floor's share chosen as the members' policies are (dynjax.train.policy).
POLICIES = {"hedge eta 30": hedge(30.0), "hedge eta 3": hedge(3.0), "mean-variance 10": hedge(30.0, 10.0)}


def replay(eras, embargo: int, after: int = 8) -> dict[str, np.ndarray]:
    """Each rule's per-era corr `[E]`; "policies": each era mixed by the candidate of `POLICIES` whose
    own per-era corr over the eras resolved by then has the best Sharpe (the first before `after`)."""
    corr_ExA = np.array([[fast_numerai_corr((1 - a) * w + a * f, y) for a in SHARES] for w, f, y in eras])
    out = {}
    for name, rule in {**RULES, **{f"_{k}": v for k, v in POLICIES.items()}}.items():
        corr_E = []
        for t, (w, f, y) in enumerate(eras):
            a = float(rule(corr_ExA[: max(t - embargo, 0)]) @ SHARES)
            corr_E.append(fast_numerai_corr((1 - a) * w + a * f, y))
        out[name] = np.array(corr_E)
    cand_PxE = np.stack([out.pop(f"_{k}") for k in POLICIES])
    pick_E = [0 if t - embargo < max(after, 2) else
              int(np.argmax([c[: t - embargo].mean() / c[: t - embargo].std() for c in cand_PxE])) for t in range(len(eras))]
    out["policies"] = cand_PxE[pick_E, np.arange(len(eras))]
    return out


def per_setting(root: Path, setting: str, variant: str, seeds: list[int]) -> dict:
    data_dir = make_data(root, setting)
    stats: dict[str, list[dict]] = {}
    for seed in seeds:
        out = root / "runs" / setting / f"{variant}-s{seed}"
        if not (out / "metrics.json").is_file():
            print(f"{out}: no finished run, skipped")
            continue
        for name, corr_E in replay(*era_ranks(out, data_dir)).items():
            stats.setdefault(name, []).append(summarize(corr_E))
    keys = ("corr_mean", "corr_sharpe", "max_drawdown", "below_zero")
    return {"setting": setting, "seeds": len(next(iter(stats.values()), [])),
            "rules": {n: {k: float(np.mean([s[k] for s in v])) for k in keys} for n, v in stats.items()}}


def markdown(rows: list[dict]) -> str:
    rows = [r for r in rows if r["rules"]]
    lines = ["corr / Sharpe / max drawdown / eras below zero, every validation era, mean over seeds", "",
             "| rule | " + " | ".join(f"{r['setting']} ({r['seeds']})" for r in rows) + " |", "| --- |" + " --- |" * len(rows)]
    cell = lambda s: f"{s['corr_mean']:.4f} / {s['corr_sharpe']:.2f} / {s['max_drawdown']:.3f} / {s['below_zero']:.0%}"
    for name in [*RULES, "policies"]:
        lines.append(f"| {name} | " + " | ".join(cell(r["rules"][name]) for r in rows) + " |")
    return "\n".join(lines)


def main() -> None:
    replay_main(__doc__, "frozen_floor", per_setting, markdown)


if __name__ == "__main__":
    main()
