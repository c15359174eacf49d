"""The members' mixing policy, chosen by how each would have paid: Hedge's rate and risk learned from resolved eras.

Hedge (`dynjax.train.hedge`) weighs mixtures of the members by their summed out-of-sample corr. How
fast it should follow a leader, and whether a leader that wins inside regimes and crashes after
each change should pay for its variance, depends on the data: a rate of 30 follows the recency
member where it wins every era (default, wide), a rate of 3 keeps the equal mixture where members
trade places in noise (noisy), a mean-variance score leaves a member whose Sharpe is half the
other's (recurring regimes). So the run keeps several policies (`train.hedge_etas`, `train.hedge_risks`:
policy p is Hedge at rate eta_p on the summed corr less risk_p times the summed squared
deviation), scores each one's own prediction on every era as it resolves, with the weights the
policy had when that era was predicted, and mixes by the policy whose per-era corr has the best
Sharpe so far (Numerai pays per era); the first policy until `train.hedge_select_after` eras are
scored. All of them read the same scores, so the members' weights are one choice among a few, not
one more free rate.

Weights "as predicted": era t is predicted from the scores of the eras resolved by then (position
<= t - 1 - embargo) and scored once it resolves, after the embargo's eras in between have been
scored too. So the state keeps the Hedge scores as they were at the prediction of the next era to
score (`lagged`: every scored era but the latest K = embargo, which wait in `recent_KxGX`).
"""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import struct

from dynjax.train.hedge import (
    HedgeState,
    as_device,
    as_f32,
    init_hedge,
    mixture_weights,
    update_hedge,
)


@dataclass(frozen=True)
class Policies:
    """Hedge's rates and risks per policy, and the scored eras before the best one is chosen."""

    etas_P: tuple[float, ...]
    risks_P: tuple[float, ...]
    after: int

    @property
    def n(self) -> int:
        return len(self.etas_P)


def policies(train_cfg) -> Policies:
    return Policies(tuple(train_cfg.hedge_etas), tuple(train_cfg.hedge_risks), train_cfg.hedge_select_after)


@struct.dataclass
class PolicyState:
    lagged: HedgeState  # the members' Hedge scores as they were when the next era to score was predicted
    recent_KxGX: jnp.ndarray  # float32: the mixtures' corr of the latest K scored eras, oldest first
    n_recent: jnp.ndarray  # int32: how many rows of `recent_KxGX` hold an era
    sum_GP: jnp.ndarray  # float32: each trial's policies' own per-era corr, as predicted, summed
    sq_GP: jnp.ndarray  # float32: and squared
    n_scored: jnp.ndarray  # int32: eras in those sums


def init_policy(n_scores: int, n_groups: int, n_policies: int, lag: int) -> PolicyState:
    """No era scored; `lag` (the embargo) eras wait between a prediction and its scoring."""
    zeros_GP = jnp.zeros(n_groups * n_policies, jnp.float32)
    return PolicyState(init_hedge(n_scores), jnp.zeros((lag, n_scores), jnp.float32), jnp.zeros((), jnp.int32),
                       zeros_GP, zeros_GP, jnp.zeros((), jnp.int32))


def policy_mixtures(hedge: HedgeState, pol: Policies, n_mixtures: int) -> np.ndarray:
    """Each policy's mixture weights from `hedge`'s scores: `[G, P, X]`."""
    return np.stack([mixture_weights(hedge, eta, n_mixtures, risk) for eta, risk in zip(pol.etas_P, pol.risks_P)], axis=1)


def chosen(state: PolicyState, pol: Policies) -> np.ndarray:
    """Each trial's policy, `[G]`: the best Sharpe of its per-era corr so far, the first before `after` eras."""
    sum_GxP = np.asarray(state.sum_GP, np.float64).reshape(-1, pol.n)
    n = int(state.n_scored)
    if n < max(pol.after, 2) or pol.n == 1:
        return np.zeros(len(sum_GxP), int)
    mean_GxP = sum_GxP / n
    std_GxP = np.sqrt(np.maximum(np.asarray(state.sq_GP, np.float64).reshape(-1, pol.n) / n - mean_GxP**2, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe_GxP = np.where(std_GxP > 0, mean_GxP / std_GxP, np.sign(mean_GxP) * np.inf)
    return np.argmax(np.nan_to_num(sharpe_GxP, nan=-np.inf), axis=1)


def chosen_mixtures(hedge: HedgeState, state: PolicyState, pol: Policies, n_mixtures: int) -> np.ndarray:
    """Each trial's mixture weights, `[G, X]`: the chosen policy's, from the latest scores."""
    pi_GxPxX = policy_mixtures(hedge, pol, n_mixtures)
    return pi_GxPxX[np.arange(len(pi_GxPxX)), chosen(state, pol)]


def chosen_weights(hedge: HedgeState, state: PolicyState, pol: Policies, mix_XxM: np.ndarray) -> np.ndarray:
    """Each member's weight, `[G * M]`: the chosen policy's, from the latest scores."""
    return (chosen_mixtures(hedge, state, pol, len(mix_XxM)) @ mix_XxM).reshape(-1)


def as_predicted(state: PolicyState, pol: Policies, mix_XxM: np.ndarray) -> np.ndarray:
    """Each policy's member weights when the next era to score was predicted, `[G, P, M]`."""
    return policy_mixtures(state.lagged, pol, len(mix_XxM)) @ mix_XxM


def fold_policy(state: PolicyState, corr_GX: np.ndarray, policy_corr_GP: np.ndarray, decay: float) -> PolicyState:
    """One scored era: its policies' corr into their sums, its mixtures' corr into the waiting eras
    (the oldest of which, once K wait, joins the lagged scores)."""
    policy_corr_GP = np.nan_to_num(np.asarray(policy_corr_GP, np.float64))
    n_recent, lagged = int(state.n_recent), state.lagged
    waiting_KxGX = np.concatenate([np.asarray(state.recent_KxGX)[:n_recent], np.asarray(corr_GX, np.float32)[None]])
    if len(waiting_KxGX) > len(state.recent_KxGX):  # K wait already: the oldest joins the lagged scores
        lagged, waiting_KxGX = update_hedge(lagged, waiting_KxGX[:1], decay), waiting_KxGX[1:]
    n_recent = len(waiting_KxGX)
    recent_KxGX = np.zeros(state.recent_KxGX.shape, np.float32)
    recent_KxGX[:n_recent] = waiting_KxGX
    return state.replace(lagged=lagged, recent_KxGX=as_device(recent_KxGX), n_recent=as_device(np.int32(n_recent)),
                         sum_GP=as_f32(np.asarray(state.sum_GP, np.float64) + policy_corr_GP),
                         sq_GP=as_f32(np.asarray(state.sq_GP, np.float64) + policy_corr_GP**2),
                         n_scored=as_device(np.int32(int(state.n_scored) + 1)))


def settled(state: PolicyState, hedge: HedgeState) -> PolicyState:
    """Eras scored before anything was predicted (pretraining's holdout): the lagged scores are Hedge's."""
    return state.replace(lagged=hedge)
