"""Covers dynjax.train.policy: the mixing policies are scored with the weights they had when each era
was predicted, the one whose per-era corr has the best Sharpe mixes, and the mean-variance score
makes a leader pay for its variance."""

import numpy as np
import polars as pl

from dynjax.train.hedge import hedge_weights, init_hedge, mixture_weights, update_hedge
from dynjax.train.members import mixtures
from dynjax.train.policy import (
    Policies,
    as_predicted,
    chosen,
    chosen_weights,
    fold_policy,
    init_policy,
)

MIX_XxM = mixtures((0, 1), mean=True)  # kind 0, kind 1, both equally
POLICIES = Policies((30.0, 3.0, 30.0), (0.0, 0.0, 10.0), after=4)


def test_a_policy_is_scored_with_the_weights_it_had_when_the_era_was_predicted():
    """With an embargo of K eras, the era scored next was predicted before the latest K were scored:
    the lagged scores are Hedge's over every scored era but those K."""
    rng = np.random.default_rng(0)
    corr_ExX = rng.normal(0.05, 0.05, (9, 3))
    state, hedge = init_policy(3, 1, POLICIES.n, lag=2), init_hedge(3)
    for e, corr_X in enumerate(corr_ExX):
        want = hedge_weights(update_hedge(init_hedge(3), corr_ExX[: max(e - 2, 0)], 1.0), 3.0, MIX_XxM)
        np.testing.assert_allclose(as_predicted(state, POLICIES, MIX_XxM)[0, 1], want, rtol=1e-6)
        state = fold_policy(state, corr_X, np.zeros(3), decay=1.0)
        hedge = update_hedge(hedge, corr_X[None], 1.0)
    assert int(state.n_scored) == 9 and int(state.n_recent) == 2
    # without an embargo the lagged scores are the latest ones
    state0 = init_policy(3, 1, POLICIES.n, lag=0)
    for corr_X in corr_ExX:
        state0 = fold_policy(state0, corr_X, np.zeros(3), decay=1.0)
    np.testing.assert_allclose(np.asarray(state0.lagged.score_GX), np.asarray(hedge.score_GX), rtol=1e-6)


def test_the_policy_with_the_best_sharpe_mixes_once_enough_eras_are_scored():
    state = init_policy(3, 1, POLICIES.n, lag=1)
    steady, crashing = 0.1, np.array([0.3, -0.2])  # policy 2 steady; policy 0 higher mean, far higher variance
    for e in range(6):
        assert chosen(state, POLICIES)[0] == (0 if e < POLICIES.after else 2)
        state = fold_policy(state, np.zeros(3), np.array([crashing[e % 2] + 0.05, 0.0, steady]), decay=1.0)
    assert chosen(state, POLICIES)[0] == 2
    one = Policies((30.0,), (0.0,), after=0)
    assert chosen(init_policy(3, 1, 1, lag=1), one)[0] == 0


def test_each_trial_chooses_its_own_policy_and_gets_that_policys_weights():
    rng = np.random.default_rng(1)
    state = init_policy(6, 2, POLICIES.n, lag=0)
    for _ in range(POLICIES.after):  # trial 0: policy 0 pays best; trial 1: policy 2
        state = fold_policy(state, np.zeros(6), np.array([0.1, 0.05, 0.02, 0.02, 0.05, 0.1]) + rng.normal(0, 0.01, 6), 1.0)
    np.testing.assert_array_equal(chosen(state, POLICIES), [0, 2])
    hedge = update_hedge(init_hedge(6), np.array([[0.2, 0.0, 0.1, 0.0, 0.1, 0.05]]), 1.0)
    w_GM = chosen_weights(hedge, state, POLICIES, MIX_XxM)
    np.testing.assert_allclose(w_GM[:2], hedge_weights(hedge, 30.0, MIX_XxM)[:2], rtol=1e-6)
    np.testing.assert_allclose(w_GM[2:], hedge_weights(hedge, 30.0, MIX_XxM, risk=10.0)[2:], rtol=1e-6)


def test_the_mean_variance_score_makes_a_crashing_leader_pay():
    """Two mixtures of the same summed corr: without risk they tie; with it the steady one leads."""
    corr_ExX = np.column_stack([np.tile([0.3, -0.1], 10), np.full(20, 0.1)])
    state = update_hedge(init_hedge(2), corr_ExX, 1.0)
    np.testing.assert_allclose(mixture_weights(state, 30.0, 2)[0], 0.5, atol=1e-5)
    assert mixture_weights(state, 30.0, 2, risk=10.0)[0, 1] > 0.99
    np.testing.assert_allclose(float(state.mass), 20.0)
    np.testing.assert_allclose(np.asarray(state.sq_GX), (corr_ExX**2).sum(0), rtol=1e-6)


def test_a_walk_forward_logs_the_chosen_policy_and_mixes_by_its_weights(tmp_path):
    """The log names each update's policy; its weights are that policy's Hedge weights; with one
    policy the run is plain Hedge at that rate."""
    from dynjax.config import RunConfig, override
    from dynjax.data import load_numerai
    from dynjax.data.synth import write_synthetic
    from dynjax.train.walk_forward import walk_forward
    from tests.conftest import TINY_RUN

    cfg = override(RunConfig(), [*TINY_RUN, "train.ensemble=2", "train.horizons=0,2", "model.gate_thresholds=-1000,5",
                                 "train.hedge_select_after=2", "synth.n_val_eras=10", "selection.mode=none"])
    data = load_numerai(write_synthetic(cfg.synth, tmp_path / "data"))
    walk_forward(cfg, data, tmp_path / "run")
    rows = list(pl.read_ndjson(tmp_path / "run" / "metrics.jsonl").iter_rows(named=True))
    walk = [r for r in rows if r["phase"] == "walk"]
    assert all(r["hedge/policy_0"] in (0, 1, 2) for r in walk)
    assert walk[0]["hedge/policy_0"] == 0  # nothing scored yet: the first policy
    assert len([r for r in rows if r["phase"] == "hedge"]) >= cfg.train.hedge_select_after  # so a choice was made
    from dynjax.eval.report import member_weights, policy_labels

    summary = member_weights(tmp_path / "run" / "metrics.jsonl", policy_labels(cfg.train))
    assert list(summary["policy_share"]) == ["Hedge eta 30", "Hedge eta 3", "Hedge eta 30, risk 10"]
    assert np.isclose(sum(summary["policy_share"].values()), 1.0)
    assert summary["policy_share"]["Hedge eta 30"] >= 1 / len(walk)  # the first, before any choice
