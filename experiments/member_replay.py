"""Mixing rules over the walk-forward's members *and* the frozen ones, replayed exactly as predicted.

    python -m experiments.member_replay [--settings default,...] [--seeds 0,1,2] [--root /tmp/dynjax_ablation]
        [--name member_replay] [overrides ...]

Question: the safe expert mixes the frozen members only as the frozen model (their equal mix), by one
share; the members' Hedge weighs mixtures of the walk-forward's members alone. Could a rule that
sees every member (the walk-forward's and the frozen ones, each alone and mixed) reach the frozen
model's corr on recurring regimes and its Sharpe on noisy data, without costing the other settings?

Each (setting, seed) is a default `dynjax walk-forward` (plus `overrides`) run in this process under
`root/members/VARIANT/SETTING-sSEED`, recording every walk-forward era's predictions of each member and
each frozen member as the run made them (`members.npz`: `ERA/walk` `[M, R]`, `ERA/frozen` `[M, R]`,
`ERA/y` the labelled rows' target; the record predicts each era's members again beside the run). A
rule maps the corr of the mixtures on the eras resolved before era t (position <= t - 1 - embargo, as
the run) to weights over the 2M members; the era's prediction is the weighted mean of their tie-kept
ranks, scored with Numerai corr. Every rule here scores as predicted, so "safe expert" replays the
run's two levels (the mixing policies over the walk-forward's mixtures, then Hedge over the frozen
shares) with its scores taken as predicted rather than at resolve time. Reported per setting, mean
over seeds: corr / Sharpe of the run itself, of each rule, and of fixed mixtures.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from numerai_tools.scoring import tie_kept_rank
from scipy.special import softmax

from dynjax.eval.scores import fast_numerai_corr, summarize
from dynjax.train.hedge import init_hedge, mixture_weights, update_hedge
from experiments.record import make_data, seeds_parser, write_results

SHARES = np.array([0.0, 0.25, 0.5, 0.75, 1.0])  # train.frozen_shares
POLICIES = ((30.0, 0.0), (3.0, 0.0), (30.0, 10.0))  # (rate, risk): train.hedge_etas, train.hedge_risks
SELECT_AFTER = 8  # train.hedge_select_after
EQUAL_TOO = (*POLICIES, (0.0, 0.0))  # rate 0: the mixtures equally, i.e. the members' equal mix


# Recording


def record(out: Path, data_dir: Path, overrides: list[str]) -> Path:
    """`out/members.npz` of a walk-forward run in `out` (reused when there)."""
    import dynjax.train.walk_forward as wf
    from dynjax.cli import main as dynjax_main
    from dynjax.train.run import member_predictions, raw_predictions

    path = out / "members.npz"
    if path.is_file():
        return path
    arrays, predict_era = {}, wf.predict_era

    def recording(run, state, e):
        timeline = run.schedule.timeline
        if e in run.schedule.predicted:  # a walk-forward era (not a live one, nor pretraining's holdout)
            split, local = timeline.era(e)
            context, name = run.features.of(e), timeline.name(e)
            arrays.setdefault(f"{name}/walk", member_predictions(run, state, split, local, context)[0])
            arrays.setdefault(f"{name}/frozen", raw_predictions(run, state.frozen, state.selection.mask_F, split, local, context))
            arrays.setdefault(f"{name}/y", split.y_NxT[split.index.labeled_rows(local), 0])
        return predict_era(run, state, e)

    wf.predict_era = recording
    try:
        code = dynjax_main(["walk-forward", "--data", str(data_dir), "--out", str(out), *overrides])
    finally:
        wf.predict_era = predict_era
    if code:
        raise RuntimeError(f"{out}: dynjax walk-forward exited with {code}")
    np.savez(path, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    return path


def load(out: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Per validation era in order, the 2M members' tie-kept ranks `[n, 2M]` (walk-forward's, then frozen)
    on its labelled rows and their target; the embargo."""
    metrics = json.loads((out / "metrics.json").read_text())
    with np.load(out / "members.npz") as z:
        names = sorted({k.split("/")[0] for k in z.files})
        eras = []
        for name in names:
            y = z[f"{name}/y"].astype(np.float64)
            p_2MxR = np.concatenate([z[f"{name}/walk"], z[f"{name}/frozen"]]).astype(np.float64)
            ranks_Rx2M = tie_kept_rank(pd.DataFrame(p_2MxR.T)).to_numpy()  # over every row, as the run mixes
            eras.append((ranks_Rx2M[: len(y)], y))  # the labelled rows come first
    return eras, metrics["embargo"]["eras"]


# Rules


def mix_corr(era: tuple[np.ndarray, np.ndarray], w_Xx2M: np.ndarray) -> np.ndarray:
    """Numerai corr of each weighted mean of the members' ranks, `[X]` (0 where a mix is constant)."""
    ranks, y = era
    w = np.atleast_2d(np.asarray(w_Xx2M, np.float64))
    # Rounded: mixes equal in exact arithmetic are tied whatever order their sums were taken in.
    mixed = np.round(ranks @ (w / w.sum(axis=1, keepdims=True)).T, 12)
    return np.array([fast_numerai_corr(m, y) if np.ptp(m) > 0 else 0.0 for m in mixed.T])


def hedge(corr_ExX: np.ndarray, rate: float, risk: float = 0.0) -> np.ndarray:
    """The run's Hedge weights over X mixtures after the scored eras `corr_ExX` (`dynjax.train.hedge`)."""
    n = corr_ExX.shape[1]
    return mixture_weights(update_hedge(init_hedge(n), corr_ExX, decay=1.0), rate, n, risk)[0]


def t_hedge(corr_ExX: np.ndarray, rate: float, ref: int) -> np.ndarray:
    """softmax(rate * t): each mixture's t-statistic of its per-era corr less mixture `ref`'s, a score
    that does not grow with the signal's scale as summed corr does."""
    n = len(corr_ExX)
    if n < 2:
        return np.full(corr_ExX.shape[1], 1 / corr_ExX.shape[1])
    d_ExX = corr_ExX - corr_ExX[:, [ref]]
    return softmax(rate * d_ExX.mean(0) / (d_ExX.std(0, ddof=1) + 1e-9) * np.sqrt(n))


def grids(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixtures `[X, 2M]`: the walk-forward's (each member, their equal mix); every member's (each alone,
    the walk-forward's and the frozen ones' equal mixes, all equally); the frozen model."""
    eye = np.eye(2 * m)
    walk = np.vstack([eye[:m], np.r_[np.full(m, 1 / m), np.zeros(m)]])
    frozen = np.r_[np.zeros(m), np.full(m, 1 / m)]
    every = np.vstack([eye, walk[-1], frozen, np.full(2 * m, 1 / (2 * m))])
    return walk, every, frozen


def hedges(rules=POLICIES) -> list:
    """The mixing policies as rules from the scored eras' corr to weights: Hedge at each (rate, risk)."""
    return [lambda c, rate=rate, risk=risk: hedge(c, rate, risk) for rate, risk in rules]


def policies(eras, lag: int, grid: np.ndarray, rules=None) -> tuple[np.ndarray, np.ndarray]:
    """Per era, the weights `[E, 2M]` the mixing policies (`rules`, each the scored eras' corr `[E, X]`
    to weights over `grid`; the run's three Hedges by default) choose, the one whose own corr as
    predicted has the best Sharpe (the first before `SELECT_AFTER` eras are scored), and the era's
    corr of each policy `[E, P]`."""
    rules = rules or hedges()
    corr_ExX = np.stack([mix_corr(era, grid) for era in eras])
    w_Ex2M, own_ExP = [], []
    for t, era in enumerate(eras):
        seen = corr_ExX[: max(t - lag, 0)]
        w_Px2M = np.stack([rule(seen) @ grid for rule in rules])
        scored = np.array(own_ExP[: max(t - lag, 0)])
        best = int(np.argmax(scored.mean(0) / (scored.std(0) + 1e-12))) if len(scored) >= SELECT_AFTER else 0
        w_Ex2M.append(w_Px2M[best])
        own_ExP.append(mix_corr(era, w_Px2M))
    return np.array(w_Ex2M), np.array(own_ExP)


def safe_expert(eras, lag: int, walk_w_Ex2M: np.ndarray, frozen: np.ndarray, share=None) -> np.ndarray:
    """Per-era corr of the walk-forward's weights mixed with the frozen model at the share Hedge (rate 30,
    or `share(corr)`) gives the frozen shares' corr on the eras resolved by then."""
    share = share or (lambda c: hedge(c, POLICIES[0][0]))
    corr_ExA, out = [], []
    for t, (era, w) in enumerate(zip(eras, walk_w_Ex2M)):
        grid_Ax2M = (1 - SHARES[:, None]) * w + SHARES[:, None] * frozen
        a = float(share(np.array(corr_ExA[: max(t - lag, 0)]).reshape(-1, len(SHARES))) @ SHARES)
        out.append(mix_corr(era, (1 - a) * w + a * frozen)[0])
        corr_ExA.append(mix_corr(era, grid_Ax2M))
    return np.array(out)


def replay(eras, lag: int) -> dict[str, np.ndarray]:
    """Each rule's and fixed mixture's per-era corr `[E]`."""
    m = eras[0][0].shape[1] // 2
    walk, every, frozen = grids(m)
    ref_walk, ref_every = len(walk) - 1, len(every) - 1  # the equal mixes
    walk_w, _ = policies(eras, lag, walk)
    t_walk_w, _ = policies(eras, lag, walk, [lambda c: t_hedge(c, 1.0, ref_walk)])
    fixed = lambda w: np.array([mix_corr(era, w)[0] for era in eras])
    alone = {f"{side} member {k} alone": fixed(np.eye(2 * m)[i])
             for i, (side, k) in enumerate([("walk-forward", k) for k in range(m)] + [("frozen", k) for k in range(m)])}
    return {
        **alone,
        "frozen model": fixed(frozen),
        "walk-forward's members, equal": fixed(walk[-1]),
        "every member, equal": fixed(every[-1]),
        "policies over the walk-forward's members": np.array([mix_corr(era, w)[0] for era, w in zip(eras, walk_w)]),
        "safe expert (the run's rule, as predicted)": safe_expert(eras, lag, walk_w, frozen),
        "the same, the equal mix a fourth policy": safe_expert(eras, lag, policies(eras, lag, walk, hedges(EQUAL_TOO))[0], frozen),
        "policies over every member": _mixed(eras, policies(eras, lag, every)[0]),
        "t-Hedge, safe expert t-Hedge": safe_expert(eras, lag, t_walk_w, frozen, lambda c: t_hedge(c, 1.0, 2)),
        "t-Hedge over every member": _mixed(eras, policies(eras, lag, every, [lambda c: t_hedge(c, 3.0, ref_every)])[0]),
    }


def _mixed(eras, w_Ex2M: np.ndarray) -> np.ndarray:
    return np.array([mix_corr(era, w)[0] for era, w in zip(eras, w_Ex2M)])


# Experiment


def per_setting(root: Path, setting: str, variant: str, seeds: list[int], overrides: list[str]) -> dict:
    data_dir = make_data(root, setting)
    stats: dict[str, list[dict]] = {}
    for seed in seeds:
        out = root / "members" / variant / f"{setting}-s{seed}"
        record(out, data_dir, [*overrides, f"seed={seed}"])
        metrics = json.loads((out / "metrics.json").read_text())
        stats.setdefault("walk-forward (the run)", []).append(metrics["dynjax"])
        for name, corr_E in replay(*load(out)).items():
            stats.setdefault(name, []).append(summarize(corr_E))
    keys = ("corr_mean", "corr_sharpe", "max_drawdown")
    return {"setting": setting, "seeds": len(seeds),
            "rules": {n: {k: float(np.mean([s[k] for s in v])) for k in keys} for n, v in stats.items()}}


def markdown(rows: list[dict]) -> str:
    lines = ["corr / Sharpe, every validation era, mean over seeds (as predicted)", "",
             "| rule | " + " | ".join(f"{r['setting']} ({r['seeds']})" for r in rows) + " |", "| --- |" + " --- |" * len(rows)]
    for name in rows[0]["rules"]:
        lines.append(f"| {name} | " + " | ".join(
            f"{r['rules'][name]['corr_mean']:.4f} / {r['rules'][name]['corr_sharpe']:.2f}" for r in rows) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = seeds_parser(__doc__, "member_replay")
    parser.add_argument("--variant", default="default", help="names the overrides' runs (root/members/VARIANT)")
    parser.add_argument("overrides", nargs="*", help="config overrides of every run, e.g. train.horizons=0,0")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [per_setting(Path(args.root), s, args.variant, seeds, args.overrides) for s in args.settings.split(",")]
    table = markdown(rows)
    print(table)
    write_results(args.name, {"variant": args.variant, "overrides": args.overrides, "seeds": seeds, "settings": rows}, table)


if __name__ == "__main__":
    main()
