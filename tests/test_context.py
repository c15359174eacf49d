"""Covers dynjax.data.context and dynjax.model.context: era summaries, the embargoed context window, the encoder."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np

from dynjax.data import MISSING, load_numerai
from dynjax.data.bins import CENTER, SCALE
from dynjax.data.context import context_window, era_summaries
from dynjax.model.context import EraContextEncoder


def test_summaries_are_per_era_feature_target_correlations(synth_dir):
    train = load_numerai(synth_dir).train
    corr = era_summaries(train)
    assert corr.shape == (train.index.n_eras, len(train.features))
    rows = train.index.labeled_rows(4)
    x = train.x_NxF[rows, 2].astype(float)
    xf = np.where(x == MISSING, 0.0, (x - CENTER) / SCALE)
    assert abs(corr[4, 2] - np.corrcoef(xf, train.y_NxT[rows, 0])[0, 1]) < 1e-5


def test_window_uses_only_resolved_eras_oldest_first():
    summary = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    numbers = np.arange(1, 11)
    ctx, mask = context_window(summary, numbers, t=9, embargo=4, length=3)  # eras <= 4 usable
    assert mask.tolist() == [True, True, True]
    np.testing.assert_array_equal(ctx[:, 0], [1, 2, 3])  # eras 2, 3, 4
    ctx, mask = context_window(summary, numbers, t=7, embargo=4, length=3)  # eras 1, 2 only
    assert mask.tolist() == [True, True, False] and ctx[2].sum() == 0


def test_targets_inside_the_embargo_cannot_reach_the_context(synth_dir):
    train = load_numerai(synth_dir).train
    t, embargo = int(train.index.numbers[8]), 4
    y = train.y_NxT.copy()
    late = np.repeat(train.index.numbers > t - 1 - embargo, train.index.sizes)
    y[late] = np.random.default_rng(0).permutation(y[late])  # scramble every unresolved target
    perturbed = dataclasses.replace(train, y_NxT=y)
    a = context_window(era_summaries(train), train.index.numbers, t, embargo, length=6)
    b = context_window(era_summaries(perturbed), train.index.numbers, t, embargo, length=6)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(era_summaries(train)[8], era_summaries(perturbed)[8])  # the scramble bites


def test_encoder_ignores_padding_and_is_finite():
    enc = EraContextEncoder(8)
    ctx = jax.random.normal(jax.random.key(0), (5, 4))
    mask = jnp.arange(5) < 2
    params = enc.init(jax.random.key(1), ctx, mask)
    c = enc.apply(params, ctx, mask)
    chex.assert_shape(c, (8,))
    chex.assert_tree_all_finite(c)
    np.testing.assert_allclose(enc.apply(params, ctx.at[3:].set(7.0), mask), c, atol=1e-6)
    assert not np.allclose(enc.apply(params, ctx.at[1].set(7.0), mask), c)
    chex.assert_tree_all_finite(enc.apply(params, ctx, jnp.zeros(5, bool)))  # no history yet
