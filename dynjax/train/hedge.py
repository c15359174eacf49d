"""Exponentially weighted mixing of the ensemble's members (Hedge), learned online from resolved eras.

The members of a run may differ in their walk-forward memory (`train.horizons`: all
resolved history, a long window, a short one). Which memory pays depends on the data: a
persistent regime rewards the short one, regimes that switch and return reward all history.
Each time an era resolves, every member is scored on it (Numerai corr) with the params it has
before it trains on that era, so the score is out of sample; its discounted sum gives each
member a weight,

    score_n <- decay * score_n + corr_n(era)        w = softmax(eta * score)

and the run predicts the weighted mean of the members' per-era ranks (members of one kind,
differing only in their seeds, share one weight: `hedge_weights`). The scores start from
the pretraining holdout (eras the pretrained members have not trained on), then eras are
scored as they resolve (position order), so only targets of eras <= t - 1 - embargo ever
enter the weights of era t; the state is part of the checkpoint. With one member, or eta = 0, the
weights are uniform and the run is the plain rank average.
"""

import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class HedgeState:
    score_N: jnp.ndarray  # float32: discounted sum of each member's out-of-sample corr
    n_seen: jnp.ndarray  # int32: the next timeline position to score (eras are scored in order)


def init_hedge(n_members: int, first: int = 0) -> HedgeState:
    """Equal weights; eras before position `first` (trained on in pretraining) are never scored."""
    return HedgeState(jnp.zeros((n_members,), jnp.float32), jnp.asarray(first, jnp.int32))


def update_hedge(state: HedgeState, corr_ExN: np.ndarray, decay: float) -> HedgeState:
    """Fold the corr of scored eras (rows in era order) into the scores; `n_seen` is the caller's."""
    score_N = np.asarray(state.score_N, np.float64)
    for corr_N in np.asarray(corr_ExN, np.float64):
        score_N = decay * score_N + np.nan_to_num(corr_N)  # an era without a score (no variance) adds nothing
    return state.replace(score_N=jnp.asarray(score_N, jnp.float32))


def hedge_weights(state: HedgeState, eta: float, kinds_M: tuple[int, ...]) -> np.ndarray:
    """Each member's weight, `[N]` (N = G trials x M members), summing to one within each trial.

    Members of one kind (`kinds_M`: the same memory and gates, differing only in their seeds) are
    one expert: the kind's score is its members' mean, and its weight is shared equally among them,
    so the weights never concentrate on one seed of a kind.
    """
    kinds_M = np.asarray(kinds_M)
    score_GxM = np.asarray(state.score_N, np.float64).reshape(-1, len(kinds_M))
    onehot_MxK = (kinds_M[:, None] == np.unique(kinds_M)[None]).astype(np.float64)
    score_GxK = score_GxM @ onehot_MxK / onehot_MxK.sum(axis=0)
    logit_GxK = eta * score_GxK
    w_GxK = np.exp(logit_GxK - logit_GxK.max(axis=1, keepdims=True))
    w_GxK /= w_GxK.sum(axis=1, keepdims=True)
    return ((w_GxK / onehot_MxK.sum(axis=0)) @ onehot_MxK.T).reshape(-1)
