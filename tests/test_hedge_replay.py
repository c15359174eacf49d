"""Covers experiments.hedge_replay: the blend formula is the corr of a weighted mean of two
standardised predictions, the replayed run rule is the run's Hedge with its embargo, and the
alternative rules do what they claim."""

import numpy as np
import pytest

from dynjax.config import RunConfig, override
from dynjax.train.members import plan_members
from experiments.hedge_replay import adahedge, blend_corr, fixed, replay, rules, select, t_lead


def _standardised(v):
    return (v - v.mean()) / v.std()


@pytest.mark.parametrize("a", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_blend_corr_is_the_corr_of_the_weighted_mean(a):
    rng = np.random.default_rng(0)
    y = rng.normal(size=4000)
    p0 = _standardised(0.3 * y + rng.normal(size=4000))
    p1 = _standardised(0.5 * p0 + 0.1 * y + rng.normal(size=4000))
    c = lambda p: float(np.corrcoef(p, y)[0, 1])
    c_mean = c(_standardised(p0) + _standardised(p1))
    assert blend_corr(c(p0), c(p1), c_mean, a) == pytest.approx(c(a * p0 + (1 - a) * p1), abs=1e-9)


def test_a_kind_without_variance_adds_nothing_to_the_blend():
    assert blend_corr(0.1, np.nan, 0.1, 0.3) == 0.1
    assert blend_corr(np.nan, 0.2, 0.2, 1.0) == 0.0


def _run(corr_ExX, cfg=None):
    cfg = cfg or RunConfig()
    n_e = len(corr_ExX)
    return {"cfg": cfg, "mix_XxM": plan_members(cfg).mixtures_XxM, "corr_ExX": np.asarray(corr_ExX, float),
            "dynjax_E": np.zeros(n_e), "frozen_E": np.zeros(n_e)}


def test_the_run_rule_weighs_only_eras_resolved_past_the_embargo():
    cfg = override(RunConfig(), ["data.embargo=6"])  # longer than the target's 4: the rule follows the config
    corr_ExX = np.tile([0.2, 0.0, 0.1], (8, 1))  # kind 0 always best
    run = _run(corr_ExX, cfg)
    w_ExM, _ = replay(run, rules(cfg, run["mix_XxM"], plan_members(cfg).kinds_M)["run"])
    lag = cfg.data.embargo_eras + 1
    np.testing.assert_allclose(w_ExM[:lag], 0.5)  # nothing resolved yet: the equal mean
    assert w_ExM[lag, 0] > 0.5 and (np.diff(w_ExM[lag:, 0]) > 0).all()  # then kind 0 gains era by era


def test_adahedge_follows_a_consistent_leader_and_stays_even_on_ties():
    lead = np.zeros(3)
    assert adahedge(lead)(np.tile([0.2, 0.0, 0.1], (10, 1)))[0] > 0.99
    np.testing.assert_allclose(adahedge(lead)(np.full((10, 3), 0.1)), 1 / 3)


def test_t_lead_keeps_the_mean_until_a_lead_is_significant():
    rng = np.random.default_rng(1)
    noisy = np.column_stack([0.1 + rng.normal(0, 0.05, 12), 0.1 + rng.normal(0, 0.05, 12), np.full(12, 0.1)])
    assert t_lead(30.0, 2.0, mean_x=2)(noisy).argmax() == 2
    steady = np.column_stack([np.full(12, 0.2) + rng.normal(0, 0.001, 12), np.zeros(12), np.full(12, 0.1)])
    assert t_lead(30.0, 2.0, mean_x=2)(steady).argmax() == 0


def test_select_mixes_by_the_rule_whose_replayed_corr_has_the_best_sharpe():
    """Kind 0 wins on average but crashes every other era; kind 1 is steady: the rule that follows
    kind 0 has the higher mean, the one that holds kind 1 the higher Sharpe, and is chosen once
    enough eras resolved (before: the first rule)."""
    cfg = RunConfig()
    mix_XxM, kinds_M = plan_members(cfg).mixtures_XxM, plan_members(cfg).kinds_M
    kind0, kind1 = fixed(np.array([1.0, 0.0, 0.0])), fixed(np.array([0.0, 1.0, 0.0]))
    rule = select({"kind0": kind0, "kind1": kind1}, mix_XxM, kinds_M, lag=1, min_eras=6)
    scores_ExX = np.column_stack([np.tile([0.4, -0.2], 5), np.full(10, 0.08), np.full(10, 0.1)])
    np.testing.assert_array_equal(rule(scores_ExX[:5]), [1.0, 0.0, 0.0])  # too few eras: the first rule
    np.testing.assert_array_equal(rule(scores_ExX), [0.0, 1.0, 0.0])
