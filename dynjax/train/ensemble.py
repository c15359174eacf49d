"""Seed ensembles as one population: N members trained by one vmapped, jitted step.

Members differ in their init and their dropout / gate keys (member 0 is the single model:
see `state.member_keys`) and see the same batches. Their predictions are ranked and averaged
per era (Numerai's tie-kept rank, from numerai-tools); their importances are averaged for the
shared selection. With N = 1 the same functions run the plain step on the one member, so
a single model pays nothing for the population axis.
"""

from collections.abc import Callable

import jax
import numpy as np
import pandas as pd
from numerai_tools.scoring import tie_kept_rank

from dynjax.train.state import member_keys


def population_step(step_fn: Callable, n_members: int) -> Callable:
    """Jitted, state-donating `step(states_N, batch, feature_mask_F, key)` over stacked members."""
    if n_members == 1:
        def one(states, batch, feature_mask_F, key):
            state, metrics = step_fn(_first(states), batch, feature_mask_F, key)
            return _stack1(state), metrics

        return jax.jit(one, donate_argnums=0)

    def many(states, batch, feature_mask_F, key):
        states, metrics = jax.vmap(step_fn, in_axes=(0, None, None, 0))(states, batch, feature_mask_F, member_keys(key, n_members))
        return states, jax.tree.map(lambda m: m.mean(axis=0), metrics)

    return jax.jit(many, donate_argnums=0)


def population_predict(predict_fn: Callable, n_members: int) -> Callable:
    """Jitted `predict(params_N, x_RxF, feature_mask_F, context) -> (pred_NxR, weight_NxRxF, gate_NxF)`."""
    if n_members == 1:
        def one(params, x_RxF, feature_mask_F, context=None):
            return _stack1(predict_fn(_first(params), x_RxF, feature_mask_F, context))

        return jax.jit(one)
    return jax.jit(jax.vmap(predict_fn, in_axes=(0, None, None, None)))


def combine_members(pred_NxR: np.ndarray) -> np.ndarray:
    """One era's ensemble prediction: the members' tie-kept ranks, averaged (raw output for N = 1)."""
    if len(pred_NxR) == 1:
        return pred_NxR[0]
    ranks = tie_kept_rank(pd.DataFrame(np.asarray(pred_NxR, np.float64).T))
    return ranks.to_numpy().mean(axis=1)


def _first(tree):
    return jax.tree.map(lambda a: a[0], tree)


def _stack1(tree):
    return jax.tree.map(lambda a: a[None], tree)
