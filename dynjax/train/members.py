"""The members of a run: what sets them apart, resolved once, and how one era's predictions are mixed.

The `train.ensemble` members are trained as one vmapped population. Member m takes the m-th
entry (in turn) of `train.horizons` (its walk-forward memory), `model.gate_thresholds` (how much
resolved-era evidence opens a feature's context gate; -1000 keeps every gate open) and
`loss.prior_members` (its share of the additive prior). Members with the same memory and
threshold are one *kind* (they differ only in their seeds). Hedge (`dynjax.train.hedge`)
weighs mixtures of the kinds: each kind alone and, with `train.hedge_mean`, all of them equally.
One era's prediction is the members' tie-kept ranks (numerai-tools) averaged by their weights.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numerai_tools.scoring import tie_kept_rank

from dynjax.config import RunConfig
from dynjax.train.policy import Policies, policies

# A gate threshold (evidence z) at or below this keeps every gate open: the dense member's -1000.
ALL_OPEN = -100.0


@dataclass(frozen=True, eq=False)
class Members:
    """The M members of one run (a population sweep repeats them per trial), from `plan_members`."""

    horizons_M: tuple[int, ...]  # walk-forward memory in resolved eras (0: all); () when every member takes the latest window
    thresholds_M: tuple[float, ...] | None  # context gate thresholds (None: the model's gates are not context gates)
    prior_M: tuple[float, ...]  # scale of the additive prior
    kinds_M: tuple[int, ...]  # members with the same memory and threshold share a kind
    mixtures_XxM: np.ndarray  # the mixtures Hedge weighs (rows sum to one)
    frozen_A: np.ndarray  # the frozen members' shares of the mixtures the safe expert's Hedge weighs (`train.frozen_shares`)
    policies: Policies  # the mixing policies over `mixtures_XxM` (`dynjax.train.policy`)
    lag: int  # eras between an era's prediction and its scoring, less one: the embargo

    @property
    def n(self) -> int:
        return len(self.kinds_M)

    @property
    def per_member_windows(self) -> bool:
        """Whether the members' updates draw from different memories (one window each)."""
        return len(set(self.horizons_M)) > 1

    def gated_M(self) -> np.ndarray:
        """Whether each member's gates can shut (a context gate threshold above `ALL_OPEN`)."""
        if self.thresholds_M is None:
            return np.zeros(self.n, bool)
        return np.asarray(self.thresholds_M) > ALL_OPEN


def plan_members(cfg: RunConfig) -> Members:
    """The members of a run of `cfg`."""
    m = cfg.train.ensemble
    horizons = per_member(cfg.train.horizons, m) if cfg.train.horizons else ()
    thresholds = per_member(cfg.model.gate_thresholds, m) if cfg.model.gates == "context" else None
    spec = list(zip(horizons or (None,) * m, thresholds or (None,) * m))
    kinds = tuple(spec.index(s) for s in spec)
    return Members(horizons, thresholds, per_member(cfg.loss.prior_members, m), kinds,
                   mixtures(kinds, cfg.train.hedge_mean), np.asarray(cfg.train.frozen_shares, np.float64),
                   policies(cfg.train), cfg.data.embargo_eras)


def mixture_labels(members: Members) -> list[str]:
    """A name per Hedge mixture, in `mixtures_XxM` order: each kind by its memory and gates
    ("all eras, dense", "latest 16 eras, gated at z 5"), then "equal mix"."""

    def kind(m: int) -> str:
        memory = ("latest window" if not members.horizons_M else
                  "all eras" if members.horizons_M[m] == 0 else f"latest {members.horizons_M[m]} eras")
        if members.thresholds_M is None:
            return memory
        t = members.thresholds_M[m]
        return f"{memory}, {'dense' if t <= ALL_OPEN else f'gated at z {t:g}'}"

    # `mixtures` puts each kind alone first (a kind's number is its first member's), then the equal mix.
    alone = [kind(int(m)) for m in np.unique(members.kinds_M)]
    return alone + ["equal mix"] * (len(members.mixtures_XxM) - len(alone))


def per_member(values: tuple, n_members: int) -> tuple:
    """A per-member config tuple taken in turn: member m gets `values[m % len(values)]`."""
    return tuple(values[m % len(values)] for m in range(n_members))


def mixtures(kinds_M: tuple[int, ...], mean: bool) -> np.ndarray:
    """The mixtures Hedge weighs, `[X, M]` (rows sum to one): each kind alone and, with `mean`, all
    kinds equally (with more than one kind); a kind's weight is shared equally by its members."""
    kinds_M = np.asarray(kinds_M)
    onehot_MxK = (kinds_M[:, None] == np.unique(kinds_M)[None]).astype(np.float64)
    k = onehot_MxK.shape[1]
    grid_XxK = np.eye(k) if not mean or k == 1 else np.vstack([np.eye(k), np.full(k, 1 / k)])
    return grid_XxK @ (onehot_MxK / onehot_MxK.sum(axis=0)).T


def with_frozen(walk_GM: np.ndarray, frozen_G: np.ndarray, mixtures_XxM: np.ndarray) -> np.ndarray:
    """Weights `[G * 2M]` over each trial's M members then its M frozen ones: the walk's Hedge
    weights scaled by 1 - the frozen share, the frozen model's own (every mixture equally, as
    pretraining left Hedge) by the share."""
    frozen_M = mixtures_XxM.mean(axis=0)
    walk_GxM = np.asarray(walk_GM, np.float64).reshape(len(frozen_G), -1)
    a_Gx1 = np.asarray(frozen_G, np.float64)[:, None]
    return np.concatenate([(1 - a_Gx1) * walk_GxM, a_Gx1 * frozen_M], axis=1).reshape(-1)


def stack_frozen(pred_GMxR: np.ndarray, frozen_GMxR: np.ndarray, groups: int) -> np.ndarray:
    """Each trial's members followed by its frozen members, `[G * 2M, R]`."""
    split = lambda p: np.asarray(p).reshape(groups, -1, p.shape[-1])
    return np.concatenate([split(pred_GMxR), split(frozen_GMxR)], axis=1).reshape(-1, pred_GMxR.shape[-1])


def combine_members(pred_MxR: np.ndarray, weights_M: np.ndarray | None = None) -> np.ndarray:
    """One era's ensemble prediction: the members' tie-kept ranks, averaged (by `weights_M` if
    given; the raw output of a single member)."""
    if len(pred_MxR) == 1:
        return pred_MxR[0]
    return mix_members(pred_MxR, np.ones((1, len(pred_MxR))) if weights_M is None else np.asarray(weights_M)[None])[0]


def mix_members(pred_MxR: np.ndarray, weights_XxM: np.ndarray) -> np.ndarray:
    """Several weighted means of the members' tie-kept ranks of one era at once, `[X, R]` (M > 1)."""
    ranks_RxM = tie_kept_rank(pd.DataFrame(np.asarray(pred_MxR, np.float64).T)).to_numpy()
    weights_XxM = np.asarray(weights_XxM, np.float64)
    return (ranks_RxM @ (weights_XxM / weights_XxM.sum(axis=1, keepdims=True)).T).T


def combine_trials(pred_GMxR: np.ndarray, groups: int, weights_GM: np.ndarray | None = None) -> np.ndarray:
    """Each trial's ensemble prediction of one era, `[G, R]`: `combine_members` within each of the
    G trials (G trials of M members stacked)."""
    w = [None] * groups if weights_GM is None else np.split(np.asarray(weights_GM), groups)
    return np.stack([combine_members(p, wg) for p, wg in zip(np.split(np.asarray(pred_GMxR), groups), w)])
