"""Covers dynjax.train.hedge: exponential weights from out-of-sample scores over mixtures of the members'
kinds, and the walk-forward's use of them."""

import numpy as np
import polars as pl
import pytest

from dynjax.train.hedge import hedge_weights, init_hedge, update_hedge
from dynjax.train.members import mixtures
from dynjax.train.policy import init_policy


def test_weights_start_equal_and_move_to_the_member_that_scores():
    mix_XxM = mixtures((0, 1, 2), mean=False)  # each member alone: classic Hedge
    np.testing.assert_array_equal(mix_XxM, np.eye(3))
    state = init_hedge(3, first=10)
    np.testing.assert_allclose(hedge_weights(state, 10.0, mix_XxM), 1 / 3)
    assert int(state.n_seen) == 10  # eras before the first unseen one are never scored
    for _ in range(20):
        state = update_hedge(state, np.array([[0.05, 0.0, -0.05]]), decay=0.95)
    w = hedge_weights(state, 10.0, mix_XxM)
    assert w[0] > w[1] > w[2] and np.isclose(w.sum(), 1.0) and w[0] > 0.9
    np.testing.assert_allclose(hedge_weights(state, 0.0, mix_XxM), 1 / 3)  # eta 0: the plain rank average
    assert int(state.n_seen) == 10  # the caller advances it


def test_mean_adds_the_equal_mixture_of_the_kinds_once():
    np.testing.assert_allclose(mixtures((0, 1, 2), mean=True), np.vstack([np.eye(3), np.full(3, 1 / 3)]))
    np.testing.assert_allclose(mixtures((0, 1, 0), mean=True)[-1], [0.25, 0.5, 0.25])  # kinds (0, 2) and (1,)
    np.testing.assert_array_equal(mixtures((0, 0), mean=True), [[0.5, 0.5]])  # one kind: one mixture


def test_weights_are_the_mixtures_weighted_by_their_exponential_scores():
    mix_XxM = mixtures((0, 1), mean=True)  # (1, 0), (0, 1), (0.5, 0.5)
    state = update_hedge(init_hedge(3), np.array([[0.0, 0.1, 0.05]]), decay=1.0)
    pi_X = np.exp(10 * np.array([0.0, 0.1, 0.05]))
    pi_X /= pi_X.sum()
    np.testing.assert_allclose(hedge_weights(state, 10.0, mix_XxM), pi_X @ mix_XxM, rtol=1e-6)


def test_an_equal_mixture_that_scores_best_keeps_both_members_whatever_their_own_noise():
    """Two members of equal skill whose per-era corrs swing apart: the equal mixture scores the
    best every era (its rank mean averages the members' errors), so it gets the weight, where
    Hedge over the members alone follows whichever has been luckier."""
    rng = np.random.default_rng(0)
    mix_XxM = mixtures((0, 1), mean=True)  # member 0, member 1, both equally
    noise_E = rng.normal(0, 0.05, 40)
    member_ExM = np.stack([0.1 + noise_E, 0.1 - noise_E], axis=1)
    mixed_ExX = np.column_stack([member_ExM, np.full(40, 0.12)])  # the mixture's gain: its errors partly cancel
    w = hedge_weights(update_hedge(init_hedge(3), mixed_ExX, decay=1.0), 30.0, mix_XxM)
    np.testing.assert_allclose(w, 0.5, atol=0.01)
    classic = hedge_weights(update_hedge(init_hedge(2), member_ExM, decay=1.0), 30.0, mixtures((0, 1), mean=False))
    assert abs(classic[0] - 0.5) > 0.2


def test_decay_forgets_an_old_lead():
    state = init_hedge(2)
    state = update_hedge(state, np.tile([[0.1, 0.0]], (20, 1)), decay=0.8)  # member 0 led ...
    state = update_hedge(state, np.tile([[0.0, 0.1]], (20, 1)), decay=0.8)  # ... then member 1, for as long
    w = hedge_weights(state, 10.0, mixtures((0, 1), mean=False))
    assert w[1] > 0.9


def test_a_population_gets_weights_per_trial():
    state = update_hedge(init_hedge(4), np.array([[0.1, 0.0, 0.0, 0.1]]), decay=1.0)
    w = hedge_weights(state, 10.0, mixtures((0, 1), mean=False))  # two trials of two members
    np.testing.assert_allclose([w[:2].sum(), w[2:].sum()], 1.0)
    assert w[0] > w[1] and w[3] > w[2]


def test_nan_scores_add_nothing():
    state = update_hedge(init_hedge(2), np.array([[np.nan, 0.1]]), decay=1.0)
    np.testing.assert_allclose(np.asarray(state.score_GX), [0.0, 0.1], atol=1e-7)


@pytest.mark.parametrize("patience", [0, 2])
def test_a_walk_forward_logs_weights_that_start_from_the_holdout_and_learn(tmp_path, patience):
    """Members of two kinds (all history, dense / the latest eras, gated): every walk-forward era's
    weights are logged and sum to one; they start equal without a holdout (patience 0: pretraining
    fits every resolved era) or from the members' holdout scores (early stopping), and move as
    validation eras resolve; Hedge's inputs are logged, and no era enters the weights of an era it
    does not precede by the embargo."""
    from dynjax.config import RunConfig, override
    from dynjax.data import load_numerai
    from dynjax.data.synth import write_synthetic
    from dynjax.eval.report import member_weights
    from dynjax.train.walk_forward import walk_forward
    from tests.conftest import TINY_RUN

    cfg = override(RunConfig(), [*TINY_RUN, "train.ensemble=2", "train.horizons=0,2", "model.gate_thresholds=-1000,5",
                                 "train.hedge_eta=10", f"train.patience={patience}", "synth.n_val_eras=8", "selection.mode=none"])
    data = load_numerai(write_synthetic(cfg.synth, tmp_path / "data"))
    walk_forward(cfg, data, tmp_path / "run")
    rows = list(pl.read_ndjson(tmp_path / "run" / "metrics.jsonl").iter_rows(named=True))
    log = [r for r in rows if r["phase"] == "walk"]
    w_UxM = np.array([[r["hedge/weight_0"], r["hedge/weight_1"]] for r in log])
    np.testing.assert_allclose(w_UxM.sum(axis=1), 1.0, rtol=1e-6)
    pi_UxX = np.array([[r[f"hedge/mixture_{x}"] for x in range(3)] for r in log])  # member 0, member 1, both
    np.testing.assert_allclose(pi_UxX @ mixtures((0, 1), mean=True), w_UxM, rtol=1e-6)
    assert np.allclose(w_UxM[0], 0.5) == (patience == 0)  # first era: nothing resolved since pretraining
    assert len({tuple(np.round(w, 6)) for w in w_UxM}) > 2  # resolved validation eras move them
    assert member_weights(tmp_path / "run" / "metrics.jsonl")["updates"] == len(log)
    scored = [r for r in rows if r["phase"] == "hedge"]
    assert scored and all({f"hedge/corr_{x}" for x in range(3)} <= r.keys() for r in scored)
    assert [int(r["era"]) for r in scored] == sorted(int(r["era"]) for r in scored)
    latest = {}  # walk era -> the latest era scored before its prediction
    for i, r in enumerate(rows):
        if r["phase"] == "walk" and r["era"].isdigit():
            latest[int(r["era"])] = max((int(h["era"]) for h in rows[:i] if h["phase"] == "hedge"), default=-1)
    assert all(last <= t - 1 - cfg.data.embargo_eras for t, last in latest.items())
    assert any(last == t - 1 - cfg.data.embargo_eras for t, last in latest.items())  # the bound is reached: it can fail
    holdout = [r for r in rows if r.get("eval/holdout_corr") is not None]
    assert len(holdout) == (cfg.train.pretrain_epochs if patience else 0)  # in-sample figures are not logged


def test_the_safe_expert_scales_the_walk_forwards_weights_by_one_minus_the_frozen_share():
    from dynjax.train.members import with_frozen

    mix_XxM = mixtures((0, 1), mean=True)
    w_N = with_frozen(np.array([0.9, 0.1, 0.2, 0.8]), np.array([0.25, 1.0]), mix_XxM)  # two trials of two members
    # each trial: its members' Hedge weights x (1 - share), then the frozen members equally x share
    np.testing.assert_allclose(w_N, [0.675, 0.075, 0.125, 0.125, 0.0, 0.0, 0.5, 0.5])


def test_the_frozen_share_follows_hedge_over_the_shares():
    """Scores that favour the full share put the whole prediction on the frozen members."""
    from types import SimpleNamespace

    from dynjax.config import RunConfig
    from dynjax.train.members import plan_members
    from dynjax.train.run import frozen_share, run_weights

    cfg = RunConfig()
    run = SimpleNamespace(cfg=cfg, members=plan_members(cfg))
    floor = update_hedge(init_hedge(5), np.array([[0.0, 0.0, 0.1, 0.2, 0.4]]), decay=1.0)  # shares 0 ... 1
    state = SimpleNamespace(floor=floor, hedge=init_hedge(3), policy=init_policy(3, 1, 3, 4))
    assert frozen_share(run, state)[0] > 0.99
    np.testing.assert_allclose(run_weights(run, state)[2:], [0.5, 0.5], atol=0.01)
    assert frozen_share(run, SimpleNamespace(floor=init_hedge(5)))[0] == 0.5  # no score yet: the mean share
