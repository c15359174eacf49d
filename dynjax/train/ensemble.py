"""Seed ensembles' predictions mixed: the members' tie-kept ranks, averaged per era.

Members (trained by one vmapped step, `dynjax.train.step.make_step`) differ in their init and
their dropout / gate keys (member 0 is the single model: see `state.member_keys`). Their
predictions are ranked per era (Numerai's tie-kept rank, from numerai-tools) and averaged,
by the Hedge weights where the run learns them.
"""

import numpy as np
import pandas as pd
from numerai_tools.scoring import tie_kept_rank


def combine_members(pred_NxR: np.ndarray, weights_N: np.ndarray | None = None) -> np.ndarray:
    """One era's ensemble prediction: the members' tie-kept ranks, averaged (by `weights_N` if
    given; raw output for N = 1)."""
    if len(pred_NxR) == 1:
        return pred_NxR[0]
    return mix_members(pred_NxR, np.ones((1, len(pred_NxR))) if weights_N is None else np.asarray(weights_N)[None])[0]


def mix_members(pred_NxR: np.ndarray, weights_XxN: np.ndarray) -> np.ndarray:
    """Several weighted means of the members' tie-kept ranks of one era at once, `[C, R]` (N > 1)."""
    ranks_RxN = tie_kept_rank(pd.DataFrame(np.asarray(pred_NxR, np.float64).T)).to_numpy()
    weights_XxN = np.asarray(weights_XxN, np.float64)
    return (ranks_RxN @ (weights_XxN / weights_XxN.sum(axis=1, keepdims=True)).T).T


def combine_trials(pred_NxR: np.ndarray, groups: int, weights_N: np.ndarray | None = None) -> np.ndarray:
    """Each trial's ensemble prediction of one era, [G, R]: `combine_members` within each trial."""
    w = [None] * groups if weights_N is None else np.split(np.asarray(weights_N), groups)
    return np.stack([combine_members(p, wg) for p, wg in zip(np.split(np.asarray(pred_NxR), groups), w)])

