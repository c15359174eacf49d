"""Exponentially weighted mixing of the ensemble's members (Hedge over mixtures), learned online from resolved eras.

The members of a run may differ in their walk-forward memory (`train.horizons`: all
resolved history, a long window, a short one) and in their gates. Which pays depends on the
data: a persistent regime rewards the short memory, regimes that switch and return reward all
history, and members of equal skill are best mixed. So Hedge's experts are mixtures of the
members' kinds (`mixtures`): each kind alone and, with `train.hedge_mean`, all kinds equally
(`train.hedge_grid` g > 1: every point of the simplex grid of step 1/g). Each time an era
resolves, every mixture's prediction (the weighted mean of the members' per-era ranks, as the
run predicts) is scored on it (Numerai corr) with the params the members have before they train
on that era, so the score is out of sample; its discounted sum gives each mixture a weight,

    score_c <- decay * score_c + corr_c(era)        pi = softmax(eta * score)

and the run predicts with the members' weights pi @ mixtures. Scoring the equal mixture, not
only the members, measures what mixing gains (a rank mean of two equally good members beats
either), and the mixture's score moves with both members' noise, so on noisy data it is not
outscored by whichever member was luckier lately, as Hedge over the members alone was. The
default remembers every scored era (decay 1): regimes that return are not forgotten (the
switching setting, experiments/README.md). Members of one kind (the same memory and gates,
differing only in their seeds) share their kind's weight equally. The scores start from the
pretraining holdout (eras the pretrained members have not trained on), or from a head start of
the equal mixture (`train.hedge_lead`, in summed corr), and from a prior over the mixtures
(`train.hedge_prior`: "gated_as_one" lets the kinds that gate features share one kind's prior, so
offering more gate thresholds to choose from does not take prior weight off the dense member
before any era has resolved), then eras are scored as
they resolve (position order), so only targets of eras <= t - 1 - embargo ever enter the
weights of era t; the state is part of the checkpoint. With one kind, or eta = 0, the weights
are uniform and the run is the plain rank average.
"""

import itertools

import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class HedgeState:
    score_N: jnp.ndarray  # float32 [G * X]: discounted sum of each mixture's out-of-sample corr
    n_seen: jnp.ndarray  # int32: the next timeline position to score (eras are scored in order)


def init_hedge(n_mixtures: int, first: int = 0, score_X: np.ndarray | None = None) -> HedgeState:
    """Scores `score_X` to start from in every trial (None: zeros, equal weights); eras before
    position `first` (trained on in pretraining) are never scored."""
    score_N = np.zeros(n_mixtures) if score_X is None else np.tile(score_X, n_mixtures // len(score_X))
    return HedgeState(jnp.asarray(score_N, jnp.float32), jnp.asarray(first, jnp.int32))


def lead_of_mean(mix_XxM: np.ndarray, kinds_M: tuple[int, ...], lead: float) -> np.ndarray:
    """Starting scores `[X]`: `lead` for the mixture weighing every kind equally, 0 for the others, so
    a mixture leaning on fewer kinds takes the weight only once its scores beat the mean's by `lead`."""
    mean_M = mixtures(kinds_M, 1, False).mean(axis=0)
    return np.where(np.isclose(mix_XxM, mean_M).all(axis=1), lead, 0.0)


def gated_as_one(mix_XxM: np.ndarray, kinds_M: tuple[int, ...], gated_M: np.ndarray, eta: float) -> np.ndarray:
    """Starting scores `[X]` of a prior that counts the gated kinds together as one kind: a mixture
    weighing gated members only starts at log(1 / n_gated_kinds) / eta, every other at 0, so before
    any era resolves the dense member holds the weight it would hold beside a single gated kind.
    One gated kind or none (or eta 0): zeros, the uniform prior."""
    gated_M = np.asarray(gated_M, bool)
    n_gated = len(set(np.asarray(kinds_M)[gated_M].tolist()))
    if n_gated <= 1 or eta == 0:
        return np.zeros(len(mix_XxM))
    only_gated_X = np.isclose(mix_XxM[:, ~gated_M].sum(axis=1), 0.0)
    return np.where(only_gated_X, np.log(1.0 / n_gated) / eta, 0.0)


def update_hedge(state: HedgeState, corr_ExN: np.ndarray, decay: float) -> HedgeState:
    """Fold the corr of scored eras (rows in era order) into the scores; `n_seen` is the caller's."""
    score_N = np.asarray(state.score_N, np.float64)
    for corr_N in np.asarray(corr_ExN, np.float64):
        score_N = decay * score_N + np.nan_to_num(corr_N)  # an era without a score (no variance) adds nothing
    return state.replace(score_N=jnp.asarray(score_N, jnp.float32))


def mixtures(kinds_M: tuple[int, ...], steps: int, mean: bool) -> np.ndarray:
    """The mixtures Hedge weighs, `[X, M]` (rows sum to one): every weighting of the kinds on the
    simplex grid of step 1 / `steps` (1: each kind alone), and with `mean` all kinds equally where the
    grid lacks it; a kind's weight is shared equally by its members."""
    kinds_M = np.asarray(kinds_M)
    onehot_MxK = (kinds_M[:, None] == np.unique(kinds_M)[None]).astype(np.float64)
    k = onehot_MxK.shape[1]
    # Stars and bars: each choice of k - 1 bar positions among steps + k - 1 slots is one grid point.
    bars = [np.diff([-1, *c, steps + k - 1]) - 1 for c in itertools.combinations(range(steps + k - 1), k - 1)]
    grid_XxK = np.array(bars[::-1], np.float64) / steps  # reversed: grid 1 is the identity, kind k alone first
    if mean and not np.isclose(grid_XxK, 1 / k).all(axis=1).any():
        grid_XxK = np.vstack([grid_XxK, np.full(k, 1 / k)])
    return grid_XxK @ (onehot_MxK / onehot_MxK.sum(axis=0)).T


def mixture_weights(state: HedgeState, eta: float, n_mixtures: int) -> np.ndarray:
    """Each mixture's weight, `softmax(eta * score)` within each trial: `[G, X]`."""
    logit_GxX = eta * np.asarray(state.score_N, np.float64).reshape(-1, n_mixtures)
    pi_GxX = np.exp(logit_GxX - logit_GxX.max(axis=1, keepdims=True))
    return pi_GxX / pi_GxX.sum(axis=1, keepdims=True)


def hedge_weights(state: HedgeState, eta: float, mix_XxM: np.ndarray) -> np.ndarray:
    """Each member's weight, `[N]` (N = G trials x M members), summing to one within each trial:
    the mixtures' (`mixtures`) weights times their member weights."""
    return (mixture_weights(state, eta, len(mix_XxM)) @ mix_XxM).reshape(-1)
