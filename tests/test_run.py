"""Covers dynjax.train.run: the run context, step inputs with context and replay, era prediction."""


import jax
import numpy as np
import pytest

from dynjax.config import RunConfig, override
from dynjax.data import load_numerai
from dynjax.data.synth import write_synthetic
from dynjax.data.windows import era_rows
from dynjax.train.replay import offer, replay_rows_rng
from dynjax.train.run import (
    batch_for,
    make_run_context,
    predict_era,
    raw_outputs,
    resolve_prior,
    sampling_rng,
    train_step,
    update_batch,
)
from tests.conftest import TINY_RUN

MECHANISMS = ["model.gates=context", "model.evidence_eras=2,6", "loss.sparsity=l0", "loss.sparsity_lambda=0.01",
              "train.replay_capacity=6", "train.replay_eras=2", "train.replay_sampling=similar", "loss.distill_weight=1.0",
              "optim.ema_decay=0.9", "train.ensemble=2", "train.horizons="]
# Host rows: these tests read the batches' rows (device-resident row numbers: test_walk_forward, test_step).
CFG = override(RunConfig(), [*TINY_RUN, *MECHANISMS, "data.placement=host"])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_numerai(write_synthetic(CFG.synth, tmp_path_factory.mktemp("run_data")))


@pytest.fixture(scope="module")
def run(data):
    return make_run_context(CFG, data)


def test_context_holds_every_eras_evidence_and_summary(run):
    n_eras, n_feat = run.schedule.timeline.n_eras, run.n_features
    assert run.features.evidence_ExFxV.shape == (n_eras, n_feat, 2) and run.features.summary_ExF.shape == (n_eras, n_feat)
    assert run.schedule.predicted[0] == run.schedule.timeline.splits[0].index.n_eras


def test_the_additive_prior_is_spread_over_the_labelled_training_rows_per_member(run):
    from dynjax.config import LossConfig

    assert resolve_prior(LossConfig(), 1234).prior_rows == 1234 and resolve_prior(LossConfig(prior_rows=7), 1234).prior_rows == 7
    from dynjax.model.losses import additive_prior

    rows = int(run.schedule.timeline.splits[0].index.n_labeled.sum())
    state = run.fresh_state()
    state = state.replace(replay=offer(state.replay, np.arange(8), lambda eras: raw_outputs(run, state, eras), CFG.seed))
    for i in range(4):  # beta starts at 0 and the learning rate warms up from 0
        before = jax.tree.map(np.array, state.train.params)  # the step donates the state
        state, metrics = train_step(run, state, update_batch(run, np.arange(6, 8), state.replay, sampling_rng(run, i)),
                                    jax.random.key(i), update=True)
    # loss.prior_members=1,0: member 0 fits under the prior, member 1 without it; metrics are the members' mean
    np.testing.assert_array_equal(state.train.prior_scale, [1.0, 0.0])
    expected = additive_prior(jax.tree.map(lambda p: p[0], before), LossConfig(prior_rows=rows)) / 2
    assert expected > 0 and float(metrics["prior"]) == pytest.approx(float(expected), rel=1e-5)


def test_batch_carries_each_eras_own_context(run):
    positions = np.array([6, 7])
    batch = batch_for(run, positions, sampling_rng(run, 0))
    assert batch.x_WxRxF.shape == (2, CFG.data.rows_per_era, run.n_features)
    np.testing.assert_array_equal(batch.context.evidence_FxV, run.features.evidence_ExFxV[positions])
    assert batch.context.summary_LxF.shape == (2, CFG.model.context_eras, run.n_features)
    assert batch.distill_WxR is None


def test_update_batch_appends_replayed_eras_with_their_stored_outputs(run):
    state = run.fresh_state()
    replay = offer(state.replay, np.arange(8), lambda eras: raw_outputs(run, state, eras), CFG.seed)
    recent = np.arange(6, 8)
    batch = update_batch(run, recent, replay, sampling_rng(run, 1))
    assert batch.x_WxRxF.shape[0] == len(recent) + CFG.train.replay_eras
    np.testing.assert_array_equal(batch.distill_W, [0, 0, 1, 1])
    assert batch.distill_WxR.shape == (1, 4, CFG.data.rows_per_era) and (batch.distill_WxR[:, :2] == 0).all()
    # Each replayed era shows its fixed replay rows, and its distillation targets are what the
    # buffer stored for that era (not for another one).
    stored = {int(e): np.asarray(replay.out_CxGxR)[c, 0] for c, e in enumerate(np.asarray(replay.era_C))}

    def replay_x(e: int) -> np.ndarray:
        split, local = run.schedule.timeline.era(e)
        return split.x_NxF[era_rows(split, local, CFG.data.rows_per_era, replay_rows_rng(CFG.seed, e))]

    for w in (2, 3):
        era = [e for e in stored if np.array_equal(batch.x_WxRxF[w][: len(replay_x(e))], replay_x(e))]
        assert len(era) == 1
        np.testing.assert_array_equal(batch.distill_WxR[0, w], stored[era[0]])


def test_members_with_different_memories_get_their_own_windows(run, data):
    """train.horizons=0,2: member 0 draws its W eras from every resolved era, member 1 from the
    latest 2; the batch gets a leading member axis and the step takes it."""
    from dynjax.train.run import _recent

    resolved, w = np.arange(10), CFG.data.window_eras
    rng = np.random.default_rng(0)
    draws = [_recent(run, resolved, 0, rng) for _ in range(20)]
    assert all(len(d) == w == len(set(d)) for d in draws) and len({int(e) for d in draws for e in d}) > 4
    assert set(_recent(run, resolved, 2, rng)) <= {8, 9} and list(_recent(run, resolved, None, rng)) == [8, 9]
    two = make_run_context(override(CFG, ["train.horizons=0,2"]), data)
    state = two.fresh_state()
    replay = offer(state.replay, np.arange(10), lambda eras: raw_outputs(two, state, eras), CFG.seed)
    batch = update_batch(two, resolved, replay, sampling_rng(two, 1))
    assert batch.x_WxRxF.shape[:2] == (2, w + CFG.train.replay_eras) and batch.distill_WxR.shape[0] == 2
    assert not np.array_equal(batch.x_WxRxF[0, :w], batch.x_WxRxF[1, :w])
    state, metrics = train_step(two, state.replace(replay=replay), batch, jax.random.key(0), update=True)
    assert np.isfinite(float(metrics["loss"]))


def test_a_step_and_a_prediction_with_every_mechanism(run):
    state = run.fresh_state()
    replay = offer(state.replay, np.arange(8), lambda eras: raw_outputs(run, state, eras), CFG.seed)
    state = state.replace(replay=replay)
    state, metrics = train_step(run, state, update_batch(run, np.arange(6, 8), state.replay, sampling_rng(run, 2)),
                                jax.random.key(0), update=True)
    assert {"loss", "distill", "sparsity", "n_features"} <= set(metrics) and np.isfinite(float(metrics["loss"]))
    assert state.train.step.shape == (CFG.train.ensemble,)
    e = int(run.schedule.predicted[0])
    pred_GxR, importance_F, used_F = predict_era(run, state, e)
    pred = pred_GxR[0]
    split, local = run.schedule.timeline.era(e)
    assert pred_GxR.shape == (1, split.index.sizes[local]) and np.isfinite(pred).all()
    assert 0.0 < pred.min() and pred.max() < 1.0  # two members: rank-averaged
    assert importance_F.shape == used_F.shape == (run.n_features,)
    assert (importance_F[~used_F] == 0).all()  # a feature no member uses has no importance
