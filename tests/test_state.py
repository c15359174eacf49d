"""Covers dynjax.train.state: initial state shapes and the optimiser schedule."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from dynjax.config import ModelConfig, OptimConfig
from dynjax.model import FeatureAttentionModel
from dynjax.train import make_optimizer
from dynjax.train.state import create_train_state


def test_initial_state_for_plain_and_gated_models():
    for cfg in (ModelConfig(d_model=8, n_heads=2, gates="none"), ModelConfig(d_model=8, n_heads=2, gates="l0")):
        model = FeatureAttentionModel(cfg, 7)
        state = create_train_state(model, make_optimizer(OptimConfig()), jax.random.key(0))
        assert int(state.step) == 0
        assert state.params["params"]["embed"]["emb"].shape == (7, 6, 8)
        gates = {"gates"} if cfg.gates != "none" else set()  # "none" has no gate params
        assert set(state.params["params"]) == {"embed", "token_grn", "query", "attention", "additive"} | gates


def test_run_state_stacks_members_with_their_thresholds_and_priors():
    from dynjax.config import RunConfig, override
    from dynjax.train.members import plan_members
    from dynjax.train.state import initial_run_state

    cfg = override(RunConfig(), ["model.d_model=8", "model.n_heads=2", "train.ensemble=3", "model.gates=context"])
    model = FeatureAttentionModel(cfg.model, 7)
    state = initial_run_state(plan_members(cfg), model, make_optimizer(cfg.optim), jax.random.key(0))
    assert state.train.step.shape == (3,) and state.train.params["params"]["embed"]["emb"].shape == (3, 7, 6, 8)
    single = create_train_state(model, make_optimizer(cfg.optim), jax.random.key(0))
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[0], state.train.params), single.params)  # member 0
    chex.assert_trees_all_equal(single.ema_params, single.params)
    # Per-member gate thresholds and prior scales (member m: [m % len]), in the params and the EMA params alike.
    for params in (state.train.params, state.train.ema_params):
        np.testing.assert_array_equal(params["params"]["gates"]["threshold"], [-1000, 5, -1000])
    np.testing.assert_array_equal(state.train.prior_scale, [1.0, 0.0, 1.0])
    assert state.hedge.score_GX.shape == (3,) and int(state.hedge.n_seen) == 0  # member 0 alone, member 1 alone, both


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
