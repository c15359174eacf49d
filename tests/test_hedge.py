"""Covers dynjax.train.hedge: exponential weights from out-of-sample scores, kinds, the walk-forward's use."""

import numpy as np
import polars as pl
import pytest

from dynjax.train.hedge import hedge_weights, init_hedge, mixtures, update_hedge


def test_weights_start_equal_and_move_to_the_member_that_scores():
    mix_XxM = mixtures((0, 1, 2), 1, mean=False)  # grid 1: each member alone, classic Hedge
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


def test_the_grid_holds_every_mixture_of_the_kinds_in_steps_and_splits_a_kind_among_its_members():
    mix_XxM = mixtures((0, 1, 0), 4, mean=False)  # kinds: members (0, 2) and (1,)
    assert mix_XxM.shape == (5, 3)
    np.testing.assert_allclose(mix_XxM.sum(axis=1), 1.0)
    np.testing.assert_allclose(sorted(mix_XxM[:, 1]), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(mix_XxM[:, 0], mix_XxM[:, 2])  # one kind: equal shares
    assert len(mixtures((0, 1, 2, 3), 4, mean=False)) == 35  # C(4 + 3, 3) points of the 3-simplex
    np.testing.assert_array_equal(mixtures((0, 0), 4, mean=False), [[0.5, 0.5]])  # one kind: one mixture


def test_the_equal_mixture_starts_with_its_lead_and_keeps_it_until_a_member_beats_it_by_more():
    """`train.hedge_lead`: every trial's equal mixture starts `lead` summed corr ahead (the only
    mixture that does, also beside pretrained experts or on a grid); a member alone takes the weight
    only once its scores beat the mean's by more than that."""
    from dynjax.config import RunConfig, override
    from dynjax.train.hedge import lead_of_mean, mixture_weights
    from dynjax.train.state import expert_kinds, expert_mixtures, hedge_start

    cfg = override(RunConfig(), ["train.hedge_lead=0.1"])  # members of two kinds; mixtures: 0, 1, both
    state = hedge_start(cfg, groups=2, first=7)
    assert int(state.n_seen) == 7
    pi_GxX = mixture_weights(state, 30.0, 3)
    np.testing.assert_allclose(pi_GxX, np.tile([1, 1, np.exp(3.0)], (2, 1)) / (2 + np.exp(3.0)), rtol=1e-6)
    ahead = lambda by: mixture_weights(update_hedge(state, np.tile([0.1 + by, 0.0, 0.0], (1, 2)), 1.0), 30.0, 3)
    assert (ahead(-0.02)[:, 2] > 0.5).all() and (ahead(0.1)[:, 0] > 0.9).all()
    for extra in (["train.pretrained_experts=true"], ["train.hedge_grid=4"]):
        c = override(cfg, extra)
        lead_X = lead_of_mean(expert_mixtures(c), expert_kinds(c), 0.1)
        assert np.count_nonzero(lead_X) == 1
        np.testing.assert_allclose(expert_mixtures(c)[lead_X > 0][0], 1 / len(expert_kinds(c)))
    assert not lead_of_mean(mixtures((0, 1), 1, mean=False), (0, 1), 0.1).any()  # no mean mixture: no lead


def test_the_gated_as_one_prior_keeps_the_dense_members_start_whatever_the_number_of_gated_kinds():
    """`train.hedge_prior=gated_as_one`: with one gated kind it is the uniform prior, bit for bit; with
    two gate thresholds the dense member starts at 4/9 (not 1/3), each gated one at 5/18, and a
    gated kind's lead is gone once it has outscored the dense one by log(2) / eta summed corr."""
    from dynjax.config import RunConfig, override
    from dynjax.train.hedge import mixture_weights
    from dynjax.train.state import expert_gated, expert_mixtures, hedge_start

    two = override(RunConfig(), ["train.hedge_prior=gated_as_one"])  # dense + one gated kind
    np.testing.assert_array_equal(hedge_start(two, 2).score_N, hedge_start(RunConfig(), 2).score_N)
    three = override(two, ["train.ensemble=3", "model.gate_thresholds=-1000,3.5,5", "train.horizons=0,16,16"])
    np.testing.assert_array_equal(expert_gated(three), [False, True, True])
    state, mix_XxM = hedge_start(three, 2), expert_mixtures(three)
    np.testing.assert_allclose(hedge_weights(state, 30.0, mix_XxM), np.tile([4 / 9, 5 / 18, 5 / 18], 2), rtol=1e-6)
    uniform = hedge_start(override(three, ["train.hedge_prior=uniform"]), 1)
    np.testing.assert_allclose(hedge_weights(uniform, 30.0, mix_XxM), 1 / 3, rtol=1e-6)
    even = update_hedge(hedge_start(three, 1), np.array([[0.0, np.log(2) / 30, 0.0, 0.0]]), 1.0)
    np.testing.assert_allclose(mixture_weights(even, 30.0, 4)[0, :2], 2 / 7, rtol=1e-5)  # dense alone and z 3.5 alone level
    not_gated = override(three, ["model.gates=l0", "loss.sparsity=l0"])
    assert not expert_gated(not_gated).any() and not np.asarray(hedge_start(not_gated, 1).score_N).any()
    eta0 = override(three, ["train.hedge_eta=0"])
    assert not np.asarray(hedge_start(eta0, 1).score_N).any()


def test_mean_adds_the_equal_mixture_of_the_kinds_once():
    np.testing.assert_allclose(mixtures((0, 1, 2), 1, mean=True), np.vstack([np.eye(3), np.full(3, 1 / 3)]))
    np.testing.assert_allclose(mixtures((0, 1, 0), 1, mean=True)[-1], [0.25, 0.5, 0.25])  # kinds (0, 2) and (1,)
    np.testing.assert_array_equal(mixtures((0, 1), 2, mean=True), mixtures((0, 1), 2, mean=False))  # already there
    np.testing.assert_array_equal(mixtures((0, 0), 1, mean=True), [[0.5, 0.5]])


def test_weights_are_the_mixtures_weighted_by_their_exponential_scores():
    mix_XxM = mixtures((0, 1), 2, mean=False)  # (1, 0), (0.5, 0.5), (0, 1)
    state = update_hedge(init_hedge(3), np.array([[0.0, 0.1, 0.05]]), decay=1.0)
    pi_X = np.exp(10 * np.array([0.0, 0.1, 0.05]))
    pi_X /= pi_X.sum()
    np.testing.assert_allclose(hedge_weights(state, 10.0, mix_XxM), pi_X @ mix_XxM, rtol=1e-6)


def test_an_equal_mixture_that_scores_best_keeps_both_members_whatever_their_own_noise():
    """Two members of equal skill whose per-era corrs swing apart: the equal mixture scores the
    best every era (its rank mean averages the members' errors), so it gets the weight, where
    Hedge over the members alone follows whichever has been luckier."""
    rng = np.random.default_rng(0)
    mix_XxM = mixtures((0, 1), 1, mean=True)  # member 0, member 1, both equally
    noise_E = rng.normal(0, 0.05, 40)
    member_ExM = np.stack([0.1 + noise_E, 0.1 - noise_E], axis=1)
    mixed_ExX = np.column_stack([member_ExM, np.full(40, 0.12)])  # the mixture's gain: its errors partly cancel
    w = hedge_weights(update_hedge(init_hedge(3), mixed_ExX, decay=1.0), 30.0, mix_XxM)
    np.testing.assert_allclose(w, 0.5, atol=0.01)
    classic = hedge_weights(update_hedge(init_hedge(2), member_ExM, decay=1.0), 30.0, mixtures((0, 1), 1, mean=False))
    assert abs(classic[0] - 0.5) > 0.2


def test_decay_forgets_an_old_lead():
    state = init_hedge(2)
    state = update_hedge(state, np.tile([[0.1, 0.0]], (20, 1)), decay=0.8)  # member 0 led ...
    state = update_hedge(state, np.tile([[0.0, 0.1]], (20, 1)), decay=0.8)  # ... then member 1, for as long
    w = hedge_weights(state, 10.0, mixtures((0, 1), 1, mean=False))
    assert w[1] > 0.9


def test_a_population_gets_weights_per_trial():
    state = update_hedge(init_hedge(4), np.array([[0.1, 0.0, 0.0, 0.1]]), decay=1.0)
    w = hedge_weights(state, 10.0, mixtures((0, 1), 1, mean=False))  # two trials of two members
    np.testing.assert_allclose([w[:2].sum(), w[2:].sum()], 1.0)
    assert w[0] > w[1] and w[3] > w[2]


def test_nan_scores_add_nothing():
    state = update_hedge(init_hedge(2), np.array([[np.nan, 0.1]]), decay=1.0)
    np.testing.assert_allclose(np.asarray(state.score_N), [0.0, 0.1], atol=1e-7)


@pytest.mark.parametrize("patience,warm", [(0, False), (2, False), (0, True)])
def test_a_walk_forward_logs_weights_that_start_from_the_holdout_and_learn(tmp_path, patience, warm):
    """Members of two kinds (all history, dense / the latest eras, gated): every walk-forward era's
    weights are logged and sum to one; they start equal without a holdout (patience 0: pretraining
    fits every resolved era) or from the members' holdout scores (early stopping, or the warm walk
    over the holdout), and move as validation eras resolve."""
    from dynjax.config import RunConfig, override
    from dynjax.data import load_numerai
    from dynjax.data.synth import write_synthetic
    from dynjax.eval.report import member_weights
    from dynjax.train.walk_forward import walk_forward
    from tests.conftest import TINY_RUN

    cfg = override(RunConfig(), [*TINY_RUN, "train.ensemble=2", "train.horizons=0,2", "model.gate_thresholds=-1000,5",
                                 "train.replay_eras=0", "train.replay_capacity=0", "train.hedge_eta=10", f"train.patience={patience}",
                                 f"train.warm_walk={str(warm).lower()}", "synth.n_val_eras=8", "selection.mode=none"])
    data = load_numerai(write_synthetic(cfg.synth, tmp_path / "data"))
    walk_forward(cfg, data, tmp_path / "run")
    log = [r for r in pl.read_ndjson(tmp_path / "run" / "metrics.jsonl").iter_rows(named=True) if r["phase"] == "walk"]
    w_UxN = np.array([[r["hedge/weight_0"], r["hedge/weight_1"]] for r in log])
    np.testing.assert_allclose(w_UxN.sum(axis=1), 1.0, rtol=1e-6)
    pi_UxX = np.array([[r[f"hedge/mixture_{c}"] for c in range(3)] for r in log])  # member 0, member 1, both
    np.testing.assert_allclose(pi_UxX @ mixtures((0, 1), 1, mean=True), w_UxN, rtol=1e-6)
    assert np.allclose(w_UxN[0], 0.5) == (patience == 0 and not warm)  # first era: nothing resolved since pretraining
    assert len({tuple(np.round(w, 6)) for w in w_UxN}) > 2  # resolved validation eras move them
    assert member_weights(tmp_path / "run" / "metrics.jsonl")["updates"] == len(log)
    # Hedge's inputs are logged: each scored era, every mixture's corr (member 0, member 1, both), and
    # no era enters the weights of an era it does not precede by the embargo
    rows = list(pl.read_ndjson(tmp_path / "run" / "metrics.jsonl").iter_rows(named=True))
    scored = [r for r in rows if r["phase"] == "hedge"]
    assert scored and all({f"hedge/corr_{c}" for c in range(3)} <= r.keys() for r in scored)
    assert [int(r["era"]) for r in scored] == sorted(int(r["era"]) for r in scored)
    latest = {}  # walk (or warm-walk) era -> the latest era scored before its prediction
    for i, r in enumerate(rows):
        if r["phase"] in ("walk", "warm") and r["era"].isdigit():
            latest[int(r["era"])] = max((int(h["era"]) for h in rows[:i] if h["phase"] == "hedge"), default=-1)
    assert all(last <= t - 1 - cfg.data.embargo_eras for t, last in latest.items())
    assert any(last == t - 1 - cfg.data.embargo_eras for t, last in latest.items())  # the bound is reached: it can fail
    warm_eras = [int(r["era"]) for r in rows if r["phase"] == "warm"]
    assert len(warm_eras) == (cfg.train.holdout_eras if warm else 0)
    if warm:  # the warm walk scores only eras pretraining did not fit: from the one after its last fit era
        from dynjax.train.run import make_run_context, pretrain_plan

        run = make_run_context(cfg, data)
        fit = pretrain_plan(cfg, run.schedule.timeline, int(run.schedule.predicted[0]))[1]
        assert min(int(r["era"]) for r in scored) == int(run.schedule.timeline.numbers_E[fit[-1]]) + 1
        assert warm_eras == sorted(warm_eras) and max(warm_eras) < int(log[0]["era"])


def test_pretrained_experts_stay_as_pretraining_left_them_and_get_their_own_weights(tmp_path):
    """`train.pretrained_experts`: the members' pretrained copies are never trained again (the
    last state's copies equal checkpoint 0's members), and Hedge weighs four experts, the
    copies as kinds of their own, which the resolved eras move apart from the members."""
    from contextlib import closing

    import jax

    from dynjax.config import RunConfig, override
    from dynjax.data import load_numerai
    from dynjax.data.synth import write_synthetic
    from dynjax.train.checkpoint import RunCheckpoints
    from dynjax.train.run import make_run_context
    from dynjax.train.state import expert_kinds
    from dynjax.train.walk_forward import walk_forward
    from tests.conftest import TINY_RUN

    cfg = override(RunConfig(), [*TINY_RUN, "train.ensemble=2", "train.horizons=0,2", "model.gate_thresholds=-1000,5",
                                 "train.replay_eras=0", "train.replay_capacity=0", "train.hedge_eta=10",
                                 "train.pretrained_experts=true", "synth.n_val_eras=8", "selection.mode=none"])
    assert expert_kinds(cfg) == (0, 1, 2, 3)
    data = load_numerai(write_synthetic(cfg.synth, tmp_path / "data"))
    walk_forward(cfg, data, tmp_path / "run")
    abstract = make_run_context(cfg, data).abstract_state()
    with closing(RunCheckpoints(tmp_path / "run" / "checkpoints", keep=cfg.train.keep_checkpoints)) as ckpt:
        first = ckpt.restore_state(0, abstract)
        _, last, _ = ckpt.restore_latest(abstract)
    same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), first.train.ema_params, last.pretrained)
    assert all(jax.tree.leaves(same))
    moved = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), first.train.ema_params, last.train.ema_params)
    assert not all(jax.tree.leaves(moved))  # the members did train: the comparison can fail
    log = [r for r in pl.read_ndjson(tmp_path / "run" / "metrics.jsonl").iter_rows(named=True) if r["phase"] == "walk"]
    w_UxN = np.array([[r[f"hedge/weight_{n}"] for n in range(4)] for r in log])
    np.testing.assert_allclose(w_UxN.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w_UxN[0], 0.25)  # nothing resolved since pretraining
    assert not np.allclose(w_UxN[-1, :2], w_UxN[-1, 2:])  # scored apart from the members they were
