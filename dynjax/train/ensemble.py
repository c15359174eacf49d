"""Seed ensembles as one population: N members trained by one vmapped, jitted step.

Members differ in their init and their dropout / gate keys (member 0 is the single model:
see `state.member_keys`) and see the same batches. Their predictions are ranked and averaged
per era (Numerai's tie-kept rank, from numerai-tools); their importances are averaged for the
shared selection. With N = 1 the same functions run the plain step on the one member, so
a single model pays nothing for the population axis.
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numerai_tools.scoring import tie_kept_rank

from dynjax.train.sharding import Layout
from dynjax.train.state import member_keys


def population_step(step_fn: Callable, n_members: int, hyper_G: dict | None = None, layout: Layout | None = None) -> Callable:
    """Jitted, state-donating `step(states_N, batch, feature_mask_F, key)` over stacked members.

    With a `layout` it is jitted onto that device mesh (`sharding.Layout.step`).

    `hyper_G` (float hyperparameters by config path, one value per trial): a population of G
    trials of `n_members` members each, N = G * n_members, trial by trial; `step_fn` takes the
    trial's hyperparameters as a fifth argument, the members of every trial get the keys a run
    of that trial alone would, and `batch.distill_WxR` (when set) has a G axis (after the
    member axis of per-member batches).
    """
    jit = layout.step if layout is not None else partial(jax.jit, donate_argnums=0)
    if hyper_G is not None:
        return jit(_trials_step(step_fn, n_members, hyper_G))
    if n_members == 1:
        def one(states, batch, feature_mask_F, key):
            batch = _first(batch) if member_axis(batch) == 0 else batch
            state, metrics = step_fn(_first(states), batch, feature_mask_F, key)
            return _stack1(state), metrics

        return jit(one)

    def many(states, batch, feature_mask_F, key):
        batch_axis = member_axis(batch)  # per-member batches (members with different memories)
        states, metrics = jax.vmap(step_fn, in_axes=(0, batch_axis, None, 0))(states, batch, feature_mask_F,
                                                                               member_keys(key, n_members))
        return states, jax.tree.map(lambda m: m.mean(axis=0), metrics)

    return jit(many)


def member_axis(batch) -> int | None:
    """0 when the batch carries a leading member axis (`x` of rank 4: one window per member), else None."""
    return 0 if batch.x_WxRxF.ndim == 4 else None


def _trials_step(step_fn: Callable, n_members: int, hyper_G: dict) -> Callable:
    groups = len(next(iter(hyper_G.values())))
    hyper_G = {k: jnp.asarray(v, jnp.float32) for k, v in hyper_G.items()}

    def trials(states, batch, feature_mask_F, key):
        by_trial = jax.tree.map(lambda a: a.reshape(groups, n_members, *a.shape[1:]), states)
        # Per-member batches ([M, ...]; distillation targets [M, G, ...]) are shared by the trials:
        # member m of every trial trains on the same eras.
        per_member = member_axis(batch)
        members = jax.vmap(step_fn, in_axes=(0, per_member, None, 0, None))
        trial_axis = 0 if per_member is None else 1
        axes = jax.tree.map(lambda _: None, batch).replace(distill_WxR=None if batch.distill_WxR is None else trial_axis)
        by_trial, metrics = jax.vmap(members, in_axes=(0, axes, None, None, 0))(
            by_trial, batch, feature_mask_F, member_keys(key, n_members), hyper_G)
        states = jax.tree.map(lambda a: a.reshape(groups * n_members, *a.shape[2:]), by_trial)
        return states, jax.tree.map(lambda m: m.mean(axis=(0, 1)), metrics)

    return trials


def population_predict(predict_fn: Callable, n_members: int, layout: Layout | None = None) -> Callable:
    """Jitted `predict(params_N, x_RxF, feature_mask_F, context) -> (pred_NxR, weight_NxRxF, gate_NxF)`;
    `predict_fn` is the pure one-member predict. With a `layout`, jitted onto its mesh."""
    jit = layout.predict if layout is not None else jax.jit
    if n_members == 1:
        def one(params, x_RxF, feature_mask_F, context=None):
            return _stack1(predict_fn(_first(params), x_RxF, feature_mask_F, context))

        return jit(one)
    return jit(jax.vmap(predict_fn, in_axes=(0, None, None, None)))


def combine_members(pred_NxR: np.ndarray, weights_N: np.ndarray | None = None) -> np.ndarray:
    """One era's ensemble prediction: the members' tie-kept ranks, averaged (by `weights_N` if
    given; raw output for N = 1)."""
    if len(pred_NxR) == 1:
        return pred_NxR[0]
    return mix_members(pred_NxR, np.ones((1, len(pred_NxR))) if weights_N is None else np.asarray(weights_N)[None])[0]


def mix_members(pred_NxR: np.ndarray, weights_CxN: np.ndarray) -> np.ndarray:
    """Several weighted means of the members' tie-kept ranks of one era at once, `[C, R]` (N > 1)."""
    ranks_RxN = tie_kept_rank(pd.DataFrame(np.asarray(pred_NxR, np.float64).T)).to_numpy()
    weights_CxN = np.asarray(weights_CxN, np.float64)
    return (ranks_RxN @ (weights_CxN / weights_CxN.sum(axis=1, keepdims=True)).T).T


def combine_trials(pred_NxR: np.ndarray, groups: int, weights_N: np.ndarray | None = None) -> np.ndarray:
    """Each trial's ensemble prediction of one era, [G, R]: `combine_members` within each trial."""
    w = [None] * groups if weights_N is None else np.split(np.asarray(weights_N), groups)
    return np.stack([combine_members(p, wg) for p, wg in zip(np.split(np.asarray(pred_NxR), groups), w)])


def _first(tree):
    return jax.tree.map(lambda a: a[0], tree)


def _stack1(tree):
    return jax.tree.map(lambda a: a[None], tree)
