"""Covers dynjax.train.ensemble: population steps and predictions, member 0 = the single model, rank averaging."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from dynjax.config import LossConfig, ModelConfig, OptimConfig
from dynjax.data import load_numerai, sample_window, window_rng
from dynjax.model import FeatureAttentionModel
from dynjax.train import create_train_state, make_optimizer, make_predict
from dynjax.train.ensemble import combine_members, population_predict, population_step
from dynjax.train.state import member_keys
from dynjax.train.step import train_step_fn


@pytest.fixture(scope="module")
def setup(synth_dir):
    train = load_numerai(synth_dir).train
    n_features = train.x_NxF.shape[1]
    model = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, dropout=0.1, gates="none"), n_features)
    optimizer = make_optimizer(OptimConfig(learning_rate=1e-2, warmup_steps=0, decay_steps=100))
    batches = [sample_window(train, np.arange(i, i + 3), 16, window_rng(0, i)) for i in range(3)]
    return train, model, optimizer, batches, jnp.ones(n_features, bool)


@pytest.fixture(scope="module")
def steps(setup):
    """The pure step (with EMA) and its single-model jitted form, compiled once for the module."""
    _, model, optimizer, _, _ = setup
    pure = train_step_fn(model, LossConfig(sparsity="none"), optimizer, ema_decay=0.9)
    return pure, jax.jit(pure)


def _members(model, optimizer, n):
    return jax.vmap(lambda k: create_train_state(model, optimizer, k))(member_keys(jax.random.key(0), n))


def test_member_zero_of_a_population_is_the_single_model_trained_alone_and_compiles_once(setup, steps):
    _, model, optimizer, batches, all_F = setup
    pure, single = steps
    population = population_step(pure, 3)
    states, alone = _members(model, optimizer, 3), create_train_state(model, optimizer, jax.random.key(0))
    for i, batch in enumerate(batches):
        mask_F = all_F.at[i].set(False)  # a new mask each step must not recompile
        states, metrics = population(states, batch, mask_F, jax.random.key(7))
        alone, _ = single(alone, batch, mask_F, jax.random.key(7))
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[0], states.ema_params), alone.ema_params, rtol=1e-5, atol=1e-6)
    assert not np.allclose(states.params["params"]["query"][0], states.params["params"]["query"][1])  # members differ
    assert metrics["loss"].shape == ()  # metrics are member means
    assert population._cache_size() == 1


def test_an_ensemble_of_one_equals_the_single_model(setup, steps):
    train, model, optimizer, batches, all_F = setup
    pure, single = steps
    states, alone = _members(model, optimizer, 1), create_train_state(model, optimizer, jax.random.key(0))
    states, _ = population_step(pure, 1)(states, batches[0], all_F, jax.random.key(7))
    alone, _ = single(alone, batches[0], all_F, jax.random.key(7))
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[0], states.params), alone.params)
    pred_NxR, weight_NxRxF, gate_NxF = population_predict(make_predict(model), 1)(states.params, train.x_NxF[:10], all_F)
    pred_R, _, _ = make_predict(model)(alone.params, train.x_NxF[:10], all_F)
    chex.assert_shape((pred_NxR, weight_NxRxF, gate_NxF), ((1, 10), (1, 10, all_F.shape[0]), (1, all_F.shape[0])))
    np.testing.assert_array_equal(combine_members(np.asarray(pred_NxR)), np.asarray(pred_R))


def test_rank_average_matches_a_hand_computation():
    pred_NxR = np.array([[0.1, 0.3, 0.2, 0.2], [5.0, 1.0, 2.0, 3.0]])
    # Tie-kept ranks into (0, 1), (rank - 0.5) / n: member 0 ranks [1, 4, 2.5, 2.5], member 1 [4, 1, 2, 3].
    expected = ((np.array([1, 4, 2.5, 2.5]) - 0.5) / 4 + (np.array([4, 1, 2, 3]) - 0.5) / 4) / 2
    np.testing.assert_allclose(combine_members(pred_NxR), expected)
    assert isinstance(combine_members(pred_NxR), np.ndarray) and pd.notna(combine_members(pred_NxR)).all()
