"""Covers dynjax.train.run: the resolved config, the run context, step inputs with their context,
per-member windows, era prediction."""


import jax
import numpy as np
import pytest

from dynjax.config import RunConfig, override
from dynjax.data import load_numerai
from dynjax.data.synth import write_synthetic
from dynjax.train.run import (
    batch_for,
    make_run_context,
    predict_era,
    sampling_rng,
    train_step,
    update_batch,
)
from tests.conftest import TINY_RUN

MECHANISMS = ["model.gates=context", "model.evidence_eras=2,6", "loss.sparsity=l0", "loss.sparsity_lambda=0.01",
              "optim.ema_decay=0.9", "train.ensemble=2", "train.horizons="]
# Host rows: these tests read the batches' rows (device-resident row numbers: test_walk_forward, test_step).
CFG = override(RunConfig(), [*TINY_RUN, *MECHANISMS, "data.placement=host"])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_numerai(write_synthetic(CFG.synth, tmp_path_factory.mktemp("run_data")))


@pytest.fixture(scope="module")
def run(data):
    return make_run_context(CFG, data)


def test_context_holds_every_eras_evidence(run):
    n_eras, n_feat = run.schedule.timeline.n_eras, run.n_features
    assert run.features.evidence_ExFxV.shape == (n_eras, n_feat, 2)
    assert run.schedule.predicted[0] == run.schedule.timeline.splits[0].index.n_eras


def test_the_config_is_resolved_once_and_the_step_uses_what_it_says(run, data):
    """`loss.prior_rows`, `optim.decay_steps` and `model.pair_index` are worked out before anything is
    compiled: the run's config holds the values the step uses (the prior of member 0, the members' mean)."""
    from dynjax.config import LossConfig
    from dynjax.model.losses import additive_prior

    rows = int(run.schedule.timeline.splits[0].index.n_labeled.sum())
    assert CFG.loss.prior_rows == 0 and run.cfg.loss.prior_rows == rows and run.cfg.optim.decay_steps > CFG.optim.warmup_steps
    assert run.cfg.model.pairs and run.cfg.model.pair_index == ()  # the screen ran and kept no pair on these data
    assert make_run_context(override(CFG, ["loss.prior_rows=7"]), data).cfg.loss.prior_rows == 7
    state = run.fresh_state()
    for i in range(4):  # beta starts at 0 and the learning rate warms up from 0
        before = jax.tree.map(np.array, state.train.params)  # the step donates the state
        state, metrics = train_step(run, state, update_batch(run, np.arange(6, 8), sampling_rng(run, i)),
                                    jax.random.key(i), update=True)
    # loss.prior_members=1,0: member 0 fits under the prior, member 1 without it; metrics are the members' mean
    np.testing.assert_array_equal(state.train.prior_scale, [1.0, 0.0])
    expected = additive_prior(jax.tree.map(lambda p: p[0], before), LossConfig(prior_rows=run.cfg.loss.prior_rows)) / 2
    assert expected > 0 and float(metrics["prior"]) == pytest.approx(float(expected), rel=1e-5)


def test_batch_carries_each_eras_own_context(run):
    positions = np.array([6, 7])
    batch = batch_for(run, positions, sampling_rng(run, 0))
    assert batch.x_WxRxF.shape == (2, CFG.data.rows_per_era, run.n_features)
    np.testing.assert_array_equal(batch.context.evidence_FxV, run.features.evidence_ExFxV[positions])


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
    batch = update_batch(two, resolved, sampling_rng(two, 1))
    assert batch.x_WxRxF.shape[:2] == (2, w)
    assert not np.array_equal(batch.x_WxRxF[0], batch.x_WxRxF[1])
    _, metrics = train_step(two, two.fresh_state(), batch, jax.random.key(0), update=True)
    assert np.isfinite(float(metrics["loss"]))


def test_a_step_and_a_prediction_with_every_mechanism(run):
    state = run.fresh_state()
    state, metrics = train_step(run, state, update_batch(run, np.arange(6, 8), sampling_rng(run, 2)),
                                jax.random.key(0), update=True)
    assert {"loss", "prior", "sparsity", "n_features"} <= set(metrics) and np.isfinite(float(metrics["loss"]))
    assert state.train.step.shape == (CFG.train.ensemble,)
    e = int(run.schedule.predicted[0])
    pred_GxR, importance_F, used_F = predict_era(run, state, e)
    pred = pred_GxR[0]
    split, local = run.schedule.timeline.era(e)
    assert pred_GxR.shape == (1, split.index.sizes[local]) and np.isfinite(pred).all()
    assert 0.0 < pred.min() and pred.max() < 1.0  # two members: rank-averaged
    assert importance_F.shape == used_F.shape == (run.n_features,)
    assert (importance_F[~used_F] == 0).all()  # a feature no member uses has no importance
