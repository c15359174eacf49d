"""Covers dynjax.train.step: vmapped window == loop over eras, no recompiles, learning, predict."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.config import LossConfig, ModelConfig, OptimConfig
from dynjax.data import load_numerai, sample_window, sliding_windows, window_rng
from dynjax.model import FeatureAttentionModel, era_loss
from dynjax.model.losses import additive_prior
from dynjax.train import create_train_state, make_optimizer, make_predict, make_train_step
from dynjax.train.step import make_window_loss, train_step_fn

W, R = 3, 16


@pytest.fixture(scope="module")
def setup(synth_dir):
    train = load_numerai(synth_dir).train
    n_features = train.x_NxF.shape[1]
    model = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, normalizer="entmax15", gates="none"), n_features)
    optimizer = make_optimizer(OptimConfig(learning_rate=1e-2, warmup_steps=0, decay_steps=100))
    windows = sliding_windows(np.arange(train.index.n_eras), W)
    batches = [sample_window(train, w, R, window_rng(0, i)) for i, w in enumerate(windows)]
    return train, model, optimizer, batches, jnp.ones(n_features, bool)


def test_vmapped_window_loss_equals_a_loop_over_eras(setup):
    _, model, optimizer, batches, all_F = setup
    params = create_train_state(model, optimizer, jax.random.key(0)).params
    cfg = LossConfig(corr_weight=0.5, sparsity="entropy", sparsity_lambda=0.01)
    mask_WxR = batches[0].mask_WxR.copy()
    mask_WxR[1, 10:] = False  # eras of different sizes
    batch = batches[0].replace(mask_WxR=mask_WxR)

    def loop_loss(params):
        totals = []
        for e in range(W):
            pred, aux = model.apply(params, batch.x_WxRxF[e], all_F)
            totals.append(era_loss(pred, batch.y_WxR[e], batch.mask_WxR[e], aux, cfg)[0])
        return jnp.mean(jnp.stack(totals))

    window_loss = lambda p: make_window_loss(model, cfg)(p, batch, all_F, jax.random.key(1))[0]
    vmapped, looped = (jax.jit(jax.value_and_grad(f)) for f in (window_loss, loop_loss))
    (loss_v, grad_v), (loss_l, grad_l) = vmapped(params), looped(params)
    np.testing.assert_allclose(loss_v, loss_l, rtol=1e-5)
    chex.assert_trees_all_close(grad_v, grad_l, rtol=1e-4, atol=1e-6)


def test_window_loss_adds_the_additive_prior_once_per_step(setup):
    _, model, optimizer, batches, all_F = setup
    params = create_train_state(model, optimizer, jax.random.key(0)).params
    beta = jax.random.normal(jax.random.key(2), params["params"]["additive"]["beta"].shape)
    params = {"params": {**params["params"], "additive": {"beta": beta}}}
    on = LossConfig(sparsity="none", additive_l2=50.0, additive_smooth=200.0, prior_rows=100)
    off = dataclasses.replace(on, additive_l2=0.0, additive_smooth=0.0)
    (loss_on, terms), (loss_off, _) = (make_window_loss(model, c)(params, batches[0], all_F, jax.random.key(1)) for c in (on, off))
    prior = float(additive_prior(params, on))
    assert prior > 0.1 and float(terms["prior"]) == pytest.approx(prior)
    assert float(loss_on) == pytest.approx(float(loss_off) + prior, rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(float(loss_on), rel=1e-5)


def test_no_recompiles_across_steps_and_windows(setup):
    _, model, optimizer, batches, all_F = setup
    step = jax.jit(chex.assert_max_traces(train_step_fn(model, LossConfig(sparsity="none"), optimizer), n=1), donate_argnums=0)
    state = create_train_state(model, optimizer, jax.random.key(0))
    for i, batch in enumerate(batches[:4]):
        mask = all_F.at[i].set(False)  # a new selection mask is data, not a new program
        state, _ = step(state, batch, mask, jax.random.key(1))
    assert int(state.step) == 4 and step._cache_size() == 1


def test_steps_reduce_the_loss_on_a_fixed_window(setup):
    _, model, optimizer, batches, all_F = setup
    step = make_train_step(model, LossConfig(sparsity="none"), optimizer)
    state = create_train_state(model, optimizer, jax.random.key(0))
    losses = []
    for _ in range(30):
        state, metrics = step(state, batches[0], all_F, jax.random.key(1))
        chex.assert_tree_all_finite(metrics)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.8 * losses[0]
    assert {"loss", "mse", "corr", "sparsity", "n_features", "grad_norm"} <= set(metrics)


def test_predict_shapes_and_mask(setup):
    train, model, optimizer, _, all_F = setup
    params = create_train_state(model, optimizer, jax.random.key(0)).params
    predict = make_predict(model)
    mask = all_F.at[:5].set(False)
    pred, weight, gate = predict(params, train.x_NxF[:20], mask)
    chex.assert_shape((pred, weight, gate), ((20,), (20, all_F.shape[0]), (all_F.shape[0],)))
    assert bool((weight[:, :5] == 0).all())


@pytest.mark.parametrize("normalizer", ["softmax", "entmax15"])
def test_a_population_step_vmapped_over_model_states_equals_separate_steps(setup, normalizer):
    _, model, optimizer, batches, all_F = setup
    model = model.clone(cfg=ModelConfig(d_model=8, n_heads=2, normalizer=normalizer, gates="none"))
    keys = jax.random.split(jax.random.key(0), 3)
    pure = train_step_fn(model, LossConfig(sparsity="none"), optimizer)
    population = jax.vmap(lambda k: create_train_state(model, optimizer, k))(keys)
    population, _ = jax.jit(jax.vmap(pure, in_axes=(0, None, None, None)))(population, batches[0], all_F, jax.random.key(1))
    single = jax.jit(pure)
    for i, k in enumerate(keys):
        alone, _ = single(create_train_state(model, optimizer, k), batches[0], all_F, jax.random.key(1))
        # atol 1e-5 (lr 3e-3): Adam's first step divides by |g| + eps, so parameters whose gradient is
        # at rounding level (the zero-initialised query's neighbours) move by a few 1e-6 either way.
        chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], population.params), alone.params, rtol=1e-5, atol=1e-5)
