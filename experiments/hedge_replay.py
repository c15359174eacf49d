"""Mixing rules replayed offline on finished runs: how another Hedge would have scored, in seconds.

    python -m experiments.hedge_replay --root /tmp/dj [--settings default,switching,noisy,wide,diffuse]
        [--variant default] [--seeds 0,1,2] [--name hedge_replay]

A run's members do not depend on how Hedge mixes them (Hedge weighs predictions, it never
touches training), so a mixing rule can be judged without training: every run logs, as each
era resolves, the out-of-sample corr of each mixture Hedge weighs (`phase: hedge` in
`metrics.jsonl`: each member kind alone and their equal mean). A rule maps the scores of the
eras resolved before era t (position <= t - 1 - embargo, as the run) to mixture weights; the
members' weights follow as in the run (`pi @ mixtures`). The corr of a weighted rank mean of
two kinds is then `(a c0 + (1 - a) c1) / sqrt(a^2 + (1 - a)^2 + 2 a (1 - a) rho)`, with the two
kinds' rank correlation `rho` solved from the equal mean's logged corr, era by era.

Two checks say how far to trust it: the run's own rule, replayed through `dynjax.train.hedge`,
must give the member weights the run logged (`weights_err`, ~1e-7 with one mixing policy; with
several, the replay chooses the policy by the blended corr below, not the corr the run measured, so
an era where the two choices differ shows as a larger error), and its replayed corr is
compared with the corr the run scored on the same eras (`replay_err`: mean |error| per era; the
blend formula ignores numerai_corr's gaussianisation and power 1.5, and the logged score uses the
members' params of the era it resolves, a few updates after they predicted it). Only eras with a
logged score are replayed: the last `embargo` eras of a run never resolve, and the first
`embargo + 1` are the equal mixture under every rule that starts from equal weights.
"""

import csv
import json
from collections.abc import Callable
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from dynjax.config import load_config
from dynjax.eval.scores import summarize
from dynjax.train.hedge import init_hedge, mixture_weights, update_hedge
from dynjax.train.members import plan_members
from experiments.record import replay_main

Rule = Callable[[np.ndarray], np.ndarray]  # scores of the resolved eras [E, X] -> mixture weights [X]


def softmax(z_X: np.ndarray) -> np.ndarray:
    e = np.exp(z_X - z_X.max())
    return e / e.sum()


def hedge(eta: float, lead_X: np.ndarray, decay: float = 1.0) -> Rule:
    """The run's rule (`dynjax.train.hedge`): softmax(eta * (lead + discounted summed corr))."""
    def rule(scores_ExX):
        start = init_hedge(len(lead_X)).replace(score_GX=jnp.asarray(lead_X, jnp.float32))  # the lead: a head start
        state = update_hedge(start, scores_ExX, decay)
        return mixture_weights(state, eta, len(lead_X))[0]
    return rule


def adahedge(lead_X: np.ndarray) -> Rule:
    """AdaHedge (de Rooij, van Erven, Grünwald & Koolen, JMLR 2014) on losses -corr: no eta to set;
    eta = ln X / (the mixability gaps summed so far), follow-the-leader while they are zero."""
    def rule(scores_ExX):
        loss_X, gap, k = -np.asarray(lead_X, float), 0.0, len(lead_X)
        for corr_X in scores_ExX:
            w_X = _ada_weights(loss_X, np.log(k) / gap if gap > 0 else np.inf)
            l_X = -corr_X
            hedge_loss = w_X @ l_X
            if gap > 0:
                eta = np.log(k) / gap
                mix_loss = l_X.min() - np.log(w_X @ np.exp(-eta * (l_X - l_X.min()))) / eta
            else:
                mix_loss = l_X[w_X > 0].min()
            gap += max(hedge_loss - mix_loss, 0.0)
            loss_X = loss_X + l_X
        return _ada_weights(loss_X, np.log(k) / gap if gap > 0 else np.inf)
    return rule


def _ada_weights(loss_X: np.ndarray, eta: float) -> np.ndarray:
    if np.isinf(eta):  # follow the leader (ties split)
        w_X = np.isclose(loss_X, loss_X.min()).astype(float)
        return w_X / w_X.sum()
    return softmax(-eta * loss_X)


def t_lead(eta: float, z: float, mean_x: int) -> Rule:
    """Hedge at `eta` where a mixture takes weight from the equal mean only by the margin a
    sequential test asks: its summed corr less z standard errors of its per-era lead over the mean."""
    def rule(scores_ExX):
        n = len(scores_ExX)
        if n < 2:
            return hedge(eta, np.zeros(scores_ExX.shape[1]))(scores_ExX)
        lead_ExX = scores_ExX - scores_ExX[:, [mean_x]]
        score_X = scores_ExX.sum(0) - z * lead_ExX.std(0, ddof=1) * np.sqrt(n)
        score_X[mean_x] = scores_ExX[:, mean_x].sum()
        return softmax(eta * score_X)
    return rule


def mean_variance(eta: float, risk: float) -> Rule:
    """Hedge on a risk-adjusted score: each mixture's summed corr less `risk` times its summed squared
    deviation from its mean (a mean-variance investor's utility, mean - risk * variance, over the
    resolved eras), so a mixture that wins inside regimes and crashes after each change pays for it."""
    def rule(scores_ExX):
        n = len(scores_ExX)
        score_X = scores_ExX.sum(0) - risk * n * scores_ExX.var(0) if n > 1 else scores_ExX.sum(0)
        return softmax(eta * score_X)
    return rule


def select(candidates: dict[str, Rule], mix_XxM: np.ndarray, kinds_M: tuple[int, ...], lag: int,
           min_eras: int = 8) -> Rule:
    """A mixing policy learned from the resolved eras: each candidate rule is replayed on them (its
    weights for each from the eras resolved before it, as the run) and the one whose replayed per-era
    corr has the best Sharpe so far mixes the next era; the first candidate until `min_eras` resolve."""
    mean_x = _mean_row(mix_XxM, kinds_M)
    kind0_M = np.asarray(kinds_M) == min(kinds_M)
    first = next(iter(candidates.values()))

    def replayed(cand: Rule, scores_ExX: np.ndarray) -> np.ndarray:
        return np.array([blend_corr(*scores_ExX[e, [0, 1, mean_x]],
                                    float((cand(scores_ExX[: max(e - lag + 1, 0)]) @ mix_XxM)[kind0_M].sum()))
                         for e in range(len(scores_ExX))])

    def rule(scores_ExX):
        if len(scores_ExX) < min_eras:
            return first(scores_ExX)
        sharpe = {name: (c.mean() / c.std() if c.std() > 0 else -np.inf)
                  for name, c in ((n, replayed(cand, scores_ExX)) for n, cand in candidates.items())}
        return candidates[max(sharpe, key=sharpe.get)](scores_ExX)
    return rule


def fixed(pi_X: np.ndarray) -> Rule:
    return lambda scores_ExX: np.asarray(pi_X, float)


def rules(cfg, mix_XxM: np.ndarray, kinds_M: tuple[int, ...]) -> dict[str, Rule]:
    """The rules compared: the run's own (its config's policies) and alternatives to it (rates, leads,
    AdaHedge, mean-variance scores, fixed weights, policies chosen by their replayed Sharpe)."""
    n = len(mix_XxM)
    mean_x = _mean_row(mix_XxM, kinds_M)
    on_mean = lambda v: np.where(np.arange(n) == mean_x, v, 0.0)
    on_first = lambda v: np.where(np.arange(n) == 0, v, 0.0)
    t = cfg.train
    lag = cfg.data.embargo_eras + 1
    policy = {f"eta{e:g}" + (f"_risk{r:g}" if r else ""): mean_variance(e, r) if r else hedge(e, np.zeros(n), t.hedge_decay)
              for e, r in zip(t.hedge_etas, t.hedge_risks)}
    run = select(policy, mix_XxM, kinds_M, lag, t.hedge_select_after) if len(policy) > 1 else next(iter(policy.values()))
    picks = {"eta30": hedge(30.0, np.zeros(n)), "eta3": hedge(3.0, np.zeros(n)), "mean_var10": mean_variance(30.0, 10.0),
             "mean": fixed(on_mean(1.0)), "dense": fixed(on_first(1.0))}
    return {
        "run": run,
        "eta30": hedge(30.0, np.zeros(n)),
        "eta10": hedge(10.0, np.zeros(n)),
        "eta3": hedge(3.0, np.zeros(n)),
        "lead0.1": hedge(30.0, on_mean(0.1)),
        "adahedge": adahedge(np.zeros(n)),
        "adahedge_lead0.1": adahedge(on_mean(0.1)),
        "t_lead1": t_lead(30.0, 1.0, mean_x),
        "t_lead2": t_lead(30.0, 2.0, mean_x),
        "dense_lead0.05": hedge(30.0, on_first(0.05)),
        "dense_lead0.1": hedge(30.0, on_first(0.1)),
        "mean_var1": mean_variance(30.0, 1.0),
        "mean_var3": mean_variance(30.0, 3.0),
        "mean_var10": mean_variance(30.0, 10.0),
        "mean": fixed(on_mean(1.0)),
        "dense": fixed(on_first(1.0)),
        "one_policy": hedge(30.0, np.zeros(n), t.hedge_decay),  # Hedge at rate 30 alone (train.hedge_etas=30)
        "select_policies": select({k: picks[k] for k in ("eta30", "eta3", "mean_var10")}, mix_XxM, kinds_M, lag,
                                  t.hedge_select_after),  # the default's three policies, whatever the run's config
        "select_with_fixed": select(picks, mix_XxM, kinds_M, lag, t.hedge_select_after),  # the fixed mixtures as policies too
    }


def _mean_row(mix_XxM: np.ndarray, kinds_M: tuple[int, ...]) -> int:
    """The mixture weighing both kinds equally."""
    k_XxK = np.stack([mix_XxM[:, np.asarray(kinds_M) == k].sum(1) for k in sorted(set(kinds_M))], axis=1)
    rows = np.flatnonzero(np.isclose(k_XxK, 1 / k_XxK.shape[1]).all(axis=1))
    if k_XxK.shape[1] != 2 or not len(rows) or not all(np.isclose(k_XxK[x], np.eye(2)[x]).all() for x in (0, 1)):
        raise ValueError("the replay needs two member kinds and Hedge's mixtures of each alone and both equally "
                         "(train.hedge_mean=true, the default)")
    return int(rows[0])


def blend_corr(c0: float, c1: float, c_mean: float, a: float) -> float:
    """Corr of the rank mean weighing kind 0 by `a`, from each kind's corr and their equal mean's
    (NaN: a kind without variance that era, whose ranks then add nothing to the mean)."""
    if np.isnan(c0) or np.isnan(c1):
        alone, weight = (c1, 1 - a) if np.isnan(c0) else (c0, a)
        return alone if weight > 0 else 0.0
    rho = float(np.clip(2 * ((c0 + c1) / (2 * c_mean)) ** 2 - 1, -1, 1)) if c_mean else 1.0
    return (a * c0 + (1 - a) * c1) / np.sqrt(a * a + (1 - a) ** 2 + 2 * a * (1 - a) * rho)


def load_run(out: Path) -> dict:
    """A finished run's logged scores, weights and per-era corr (validation eras in order)."""
    cfg = load_config(out / "config.json")
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scored = {r["era"]: r for r in lines if r.get("phase") == "hedge"}
    walked = {r["era"]: r for r in lines if r.get("phase") == "walk"}
    with open(out / "metrics_per_era.csv") as f:
        per_era = list(csv.DictReader(f))
    eras = [r["era"] for r in per_era]
    mix_XxM = plan_members(cfg).mixtures_XxM
    n_x, n_m = mix_XxM.shape
    # None: a mixture whose prediction had no variance that era (a member with every gate shut)
    corr_ExX = np.array([[scored[e][f"hedge/corr_{x}"] for x in range(n_x)] if e in scored else [np.nan] * n_x
                         for e in eras], dtype=float)
    weights_ExM = np.array([[walked[e][f"hedge/weight_{m}"] for m in range(n_m)] if e in walked else [np.nan] * n_m
                            for e in eras])
    return {"cfg": cfg, "eras": eras, "mix_XxM": mix_XxM, "corr_ExX": corr_ExX, "weights_ExM": weights_ExM,
            "dynjax_E": np.array([float(r["corr_dynjax"]) for r in per_era]),
            "frozen_E": np.array([float(r["corr_frozen"]) for r in per_era])}


def replay(run: dict, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
    """The rule's member weights `[E, M]` and replayed corr `[E]` (NaN where the era has no logged score)."""
    cfg, corr_ExX, mix_XxM = run["cfg"], run["corr_ExX"], run["mix_XxM"]
    kinds_M, lag = plan_members(cfg).kinds_M, cfg.data.embargo_eras + 1
    mean_x = _mean_row(mix_XxM, kinds_M)
    kind0_M = np.asarray(kinds_M) == min(kinds_M)
    scored_E = scored_eras(run)
    weights, corr = [], []
    for t in range(len(corr_ExX)):
        past = corr_ExX[: max(t - lag + 1, 0)]
        # as the run: an era without a score for a mixture adds nothing to it
        w_M = rule(np.nan_to_num(past[scored_E[: len(past)]])) @ mix_XxM
        weights.append(w_M)
        corr.append(blend_corr(*corr_ExX[t, [0, 1, mean_x]], float(w_M[kind0_M].sum())) if scored_E[t] else np.nan)
    return np.array(weights), np.array(corr)


def scored_eras(run: dict) -> np.ndarray:
    """`[E]` bool: the eras Hedge scored (resolved before the run ended)."""
    return ~np.isnan(run["corr_ExX"]).all(axis=1)


def summary(corr_E: np.ndarray) -> tuple[float, float, float]:
    """Mean, Sharpe and max drawdown, as the run's report scores them."""
    s = summarize(corr_E)
    return s["corr_mean"], s["corr_sharpe"], s["max_drawdown"]


def replay_setting(root: Path, setting: str, variant: str, seeds: list[int]) -> dict:
    """Every rule on the setting's runs: corr / Sharpe on the scored eras, mean over seeds, and the checks."""
    per_rule: dict[str, list] = {}
    checks = []
    for seed in seeds:
        out = root / "runs" / setting / f"{variant}-s{seed}"
        if not (out / "metrics.json").is_file():
            print(f"{out}: no finished run, skipped")
            continue
        run = load_run(out)
        ok_E = scored_eras(run)
        kinds_M = plan_members(run["cfg"]).kinds_M
        for name, rule in rules(run["cfg"], run["mix_XxM"], kinds_M).items():
            w_ExM, corr_E = replay(run, rule)
            per_rule.setdefault(name, []).append(summary(corr_E[ok_E]))
            if name == "run":
                logged = ~np.isnan(run["weights_ExM"]).any(axis=1)
                checks.append({"seed": seed, "weights_err": float(np.abs(w_ExM - run["weights_ExM"])[logged].max()),
                               "replay_err": float(np.abs(corr_E - run["dynjax_E"])[ok_E].mean()),
                               "scored_eras": int(ok_E.sum()), "eras": len(ok_E)})
        per_rule.setdefault("actual run", []).append(summary(run["dynjax_E"][ok_E]))
        per_rule.setdefault("frozen", []).append(summary(run["frozen_E"][ok_E]))
        per_rule.setdefault("actual run, every era", []).append(summary(run["dynjax_E"]))
        per_rule.setdefault("frozen, every era", []).append(summary(run["frozen_E"]))
    rows = {name: {"corr": float(np.mean([c for c, _, _ in v])), "sharpe": float(np.mean([s for _, s, _ in v])),
                   "max_dd": float(np.mean([d for _, _, d in v])), "seeds": len(v)} for name, v in per_rule.items()}
    return {"setting": setting, "variant": variant, "rules": rows, "checks": checks}


def markdown(results: list[dict]) -> str:
    settings = [r["setting"] for r in results if r["rules"]]
    names = list(next(r for r in results if r["rules"])["rules"]) if settings else []
    by = {r["setting"]: r for r in results}
    seeds = {s: len(by[s]["checks"]) for s in settings}
    lines = ["corr / Sharpe / max drawdown on the scored eras, mean over seeds", "",
             "| rule | " + " | ".join(f"{s} ({seeds[s]} seed{'s' * (seeds[s] > 1)})" for s in settings) + " |",
             "| --- |" + " --- |" * len(settings)]
    cell = lambda r: f"{r['corr']:.4f} / {r['sharpe']:.2f} / {r['max_dd']:.3f}"
    for name in names:
        lines.append(f"| {name} | " + " | ".join(cell(by[s]["rules"][name]) for s in settings) + " |")
    lines += ["", "| setting | seed | scored eras | max weight error | mean replay error per era |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        for c in r["checks"]:
            lines.append(f"| {r['setting']} | {c['seed']} | {c['scored_eras']} of {c['eras']} | {c['weights_err']:.1e} "
                         f"| {c['replay_err']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    replay_main(__doc__, "hedge_replay", replay_setting, markdown)


if __name__ == "__main__":
    main()
