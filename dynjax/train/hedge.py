"""Exponentially weighted mixing of a run's members (Hedge over mixtures), learned online from resolved eras.

The members of a run differ in their walk-forward memory and their gates (`dynjax.train.members`).
Which pays depends on the data: a persistent regime rewards the short memory, regimes that
switch and return reward all history, and members of equal skill are best mixed. So Hedge's
experts are mixtures of the members' kinds: each kind alone and (`train.hedge_mean`) all kinds
equally. Each time an era resolves, every mixture's prediction (the weighted mean of the
members' per-era ranks, as the run predicts) is scored on it (Numerai corr) with the params the
members have before they train on that era, so the score is out of sample; its discounted sum
gives each mixture a weight,

    score_x <- decay * score_x + corr_x(era)        pi = softmax(eta * score)

and the run predicts with the members' weights pi @ mixtures. Scoring the equal mixture, not
only the members, measures what mixing gains (a rank mean of two equally good members beats
either), and its score moves with both members' noise, so on noisy data it is not outscored by
whichever member was luckier lately. The default remembers every scored era (decay 1): regimes
that return are not forgotten. Eras are scored as they resolve (position order), so only targets
of eras <= t - 1 - embargo ever enter the weights of era t; the state is part of the checkpoint.
With one kind, or eta = 0, the weights are uniform and the run is the plain rank average. The
state also keeps the discounted sum of squared scores, so a policy can score a mixture by mean and
variance (`risk`); which rate and risk the run mixes by is chosen by `dynjax.train.policy`.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class HedgeState:
    score_GX: jnp.ndarray  # float32 [G * X]: discounted sum of each trial's mixtures' out-of-sample corr
    n_seen: jnp.ndarray  # int32: the next timeline position to score (eras are scored in order)
    sq_GX: jnp.ndarray  # float32 [G * X]: the discounted sum of their squares (a mean-variance score's risk)
    mass: jnp.ndarray  # float32: the discounted count of scored eras


def init_hedge(n_scores: int, first: int = 0) -> HedgeState:
    """Equal scores for the G * X mixtures; eras before position `first` (trained on in pretraining)
    are never scored."""
    zeros = jnp.zeros(n_scores, jnp.float32)
    return HedgeState(zeros, jnp.asarray(first, jnp.int32), zeros, jnp.zeros((), jnp.float32))


def update_hedge(state: HedgeState, corr_ExGX: np.ndarray, decay: float) -> HedgeState:
    """Fold the corr of scored eras (rows in era order) into the scores; `n_seen` is the caller's."""
    score_GX, sq_GX = np.asarray(state.score_GX, np.float64), np.asarray(state.sq_GX, np.float64)
    mass = float(state.mass)
    for corr_GX in np.asarray(corr_ExGX, np.float64):
        corr_GX = np.nan_to_num(corr_GX)  # an era without a score (no variance) adds nothing
        score_GX, sq_GX, mass = decay * score_GX + corr_GX, decay * sq_GX + corr_GX**2, decay * mass + 1.0
    return state.replace(score_GX=as_f32(score_GX), sq_GX=as_f32(sq_GX), mass=as_f32(mass))


def as_f32(x) -> jax.Array:
    """A host value as a float32 device array (`as_device`)."""
    return as_device(np.asarray(x, np.float32))


def as_device(x: np.ndarray | np.generic) -> jax.Array:
    """A host value on the device as it is: `jnp.asarray` compiles a copy per shape, first run when the
    first eras are scored, so after the first walk-forward era (`benchmarks.full_scale` counts them)."""
    return jax.device_put(x)


def mixture_weights(state: HedgeState, eta: float, n_mixtures: int, risk: float = 0.0) -> np.ndarray:
    """Each mixture's weight, `softmax(eta * score)` within each trial: `[G, X]`. With `risk`, the score
    is a mean-variance investor's: the summed corr less `risk` times its summed squared deviation
    from its mean, so a mixture that wins inside regimes and crashes after each change pays for it."""
    score_GX = np.asarray(state.score_GX, np.float64)
    mass = float(state.mass)
    if risk and mass > 0:
        score_GX = score_GX - risk * np.maximum(np.asarray(state.sq_GX, np.float64) - score_GX**2 / mass, 0.0)
    logit_GxX = eta * score_GX.reshape(-1, n_mixtures)
    pi_GxX = np.exp(logit_GxX - logit_GxX.max(axis=1, keepdims=True))
    return pi_GxX / pi_GxX.sum(axis=1, keepdims=True)


def hedge_weights(state: HedgeState, eta: float, mix_XxM: np.ndarray, risk: float = 0.0) -> np.ndarray:
    """Each member's weight, `[G * M]`, summing to one within each trial: the mixtures' weights
    times their member weights."""
    return (mixture_weights(state, eta, len(mix_XxM), risk) @ mix_XxM).reshape(-1)
