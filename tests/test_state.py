"""Covers dynjax.train.state: initial state shapes and the optimiser schedule."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from dynjax.config import ModelConfig, OptimConfig
from dynjax.model import FeatureAttentionModel
from dynjax.train import make_optimizer
from dynjax.train.state import create_train_state


def test_initial_state_for_plain_and_context_models():
    for cfg in (ModelConfig(d_model=8, n_heads=2, gates="none"), ModelConfig(d_model=8, n_heads=2, context=True, gates="l0")):
        model = FeatureAttentionModel(cfg, 7)
        state = create_train_state(model, make_optimizer(OptimConfig()), jax.random.key(0))
        assert int(state.step) == 0
        assert state.params["params"]["embed"]["emb"].shape == (7, 6, 8)
        assert ("context" in state.params["params"]) == cfg.context


def test_run_state_stacks_members_and_holds_the_buffer_only_with_replay():
    from dynjax.config import RunConfig, override
    from dynjax.train.state import initial_run_state

    cfg = override(RunConfig(), ["model.d_model=8", "model.n_heads=2", "train.ensemble=3", "train.replay_capacity=5",
                                 "data.rows_per_era=16", "model.gates=context", "model.gate_thresholds="])
    model = FeatureAttentionModel(cfg.model, 7)
    state = initial_run_state(cfg, model, make_optimizer(cfg.optim), jax.random.key(0))
    assert state.train.step.shape == (3,) and state.train.params["params"]["embed"]["emb"].shape == (3, 7, 6, 8)
    assert state.replay.era_C.shape == (5,) and state.replay.out_CxGxR.shape == (5, 1, 16) and int(state.replay.n_seen) == 0
    single = create_train_state(model, make_optimizer(cfg.optim), jax.random.key(0))
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[0], state.train.params), single.params)  # member 0
    chex.assert_trees_all_equal(single.ema_params, single.params)
    # Per-member gate thresholds (member m: [m % len]), in the params and the EMA params alike.
    mixed = initial_run_state(override(cfg, ["model.gate_thresholds=-1000,5"]), model, make_optimizer(cfg.optim), jax.random.key(0))
    for params in (mixed.train.params, mixed.train.ema_params):
        np.testing.assert_array_equal(params["params"]["gates"]["threshold"], [-1000, 5, -1000])
    plain = initial_run_state(override(cfg, ["train.replay_capacity=0", "train.replay_eras=0"]), model, make_optimizer(cfg.optim), jax.random.key(0))
    assert plain.replay is None


def test_schedule_warms_up_then_decays():
    cfg = OptimConfig(learning_rate=1.0, warmup_steps=10, decay_steps=100, weight_decay=0.0)
    opt = make_optimizer(cfg)
    params = {"w": jnp.zeros(3)}
    state = opt.init(params)
    step_U = []  # with a constant gradient Adam's normalised step is 1, so each update's size is that step's lr
    for _ in range(101):
        updates, state = opt.update({"w": jnp.array([1.0, 0.0, 0.0])}, state, params)
        step_U.append(float(jnp.abs(updates["w"]).max()))
    assert step_U[0] == 0.0  # step 0 of the warm-up: lr 0
    np.testing.assert_allclose(step_U[5], 0.5, rtol=1e-4)  # linear warm-up
    np.testing.assert_allclose(step_U[10], 1.0, rtol=1e-4)  # the peak
    np.testing.assert_allclose(step_U[100], cfg.learning_rate * cfg.end_lr_fraction, rtol=1e-3)  # cosine down to the end
    assert (np.diff(step_U[10:]) <= 0).all()  # then never up


def test_the_anchor_pulls_updates_toward_the_pretrained_params_only_once_set():
    from dynjax.train.state import TrainState, set_anchor

    cfg = OptimConfig(learning_rate=0.1, warmup_steps=0, decay_steps=10, end_lr_fraction=1.0, weight_decay=0.0, anchor=2.0)
    opt = make_optimizer(cfg)
    params_N = {"w": jnp.array([[1.0, -1.0], [3.0, 0.0]])}  # two stacked members
    train = TrainState(params=params_N, opt_state=jax.vmap(opt.init)(params_N), step=jnp.zeros(2, jnp.int32),
                       ema_params={"w": jnp.zeros((2, 2))}, prior_scale=jnp.ones(2))
    no_grad = {"w": jnp.zeros((2, 2))}
    updates, _ = jax.vmap(opt.update)(no_grad, train.opt_state, params_N)
    np.testing.assert_array_equal(updates["w"], 0.0)  # pretraining: no pull (the anchor is not set)
    anchored = set_anchor(train, (1.0, 0.5))  # the anchor: the EMA params (zeros); member 1 pulled half as hard
    updates, _ = jax.vmap(opt.update)(no_grad, anchored.opt_state, params_N)
    # Decoupled: lr * anchor * (anchor - params), with no gradient to normalise.
    np.testing.assert_allclose(updates["w"], -0.1 * 2.0 * np.array([[1.0], [0.5]]) * params_N["w"], rtol=1e-6)
    plain = TrainState(params=params_N, opt_state=jax.vmap(make_optimizer(OptimConfig()).init)(params_N),
                       step=jnp.zeros(2, jnp.int32), ema_params=params_N, prior_scale=jnp.ones(2))
    assert set_anchor(plain, (1.0, 1.0)) is plain  # optim.anchor = 0: nothing to set
