"""Feature bins in numpy alone: the missing bin, the float view, and filling missing bins.

Numerai features are int8 bins 0..4; a null becomes the bin `MISSING` (= 5). A fitted
`Imputer` says what replaces it. This module imports numpy and the standard library only:
the model-upload pickle carries its source (`dynjax.upload.portable`), so it must run in
Numerai's image, which has no jax and no dynjax.
"""

from dataclasses import dataclass

import numpy as np

MAX_BIN = 4
MISSING = MAX_BIN + 1
N_BINS = MISSING + 1  # bins 0..4 plus the missing bin
CENTER = MAX_BIN / 2
SCALE = float(np.sqrt(2.0))  # std of a uniform draw over bins 0..4
STRATEGIES = ("bin", "era_median", "global_mean", "model")


@dataclass(frozen=True, eq=False)
class Imputer:
    """A fitted imputation: what replaces `MISSING` in each feature."""

    strategy: str  # one of STRATEGIES
    fill_F: np.ndarray | None = None  # global_mean / model fallback: float mean per feature
    neighbors_FxJ: np.ndarray | None = None  # model: most correlated features
    coef_FxJ: np.ndarray | None = None  # model: ridge coefficients on centred neighbours
    intercept_F: np.ndarray | None = None


def fill_block(imputer: Imputer, block_NxF: np.ndarray) -> None:
    """Replace `MISSING` in place in rows that share an era (era_median reads the block as one era)."""
    if imputer.strategy == "era_median":
        fill_inplace(block_NxF, era_medians(block_NxF))
    elif imputer.strategy == "global_mean":
        fill_inplace(block_NxF, to_bins(imputer.fill_F))
    elif imputer.strategy == "model":
        model_fill_inplace(imputer, block_NxF)


def era_medians(block_NxF: np.ndarray) -> np.ndarray:
    """Median bin of each feature in one era, from bin counts (CENTER if all missing)."""
    counts_BxF = np.stack([(block_NxF == b).sum(axis=0) for b in range(MAX_BIN + 1)])
    cum_BxF = np.cumsum(counts_BxF, axis=0)
    total_F = cum_BxF[-1]
    median_F = (cum_BxF < (total_F + 1) / 2).sum(axis=0)
    return np.where(total_F > 0, median_F, int(CENTER)).astype(np.int8)


def _float_view(x: np.ndarray) -> np.ndarray:
    return np.where(x == MISSING, 0.0, (x.astype(np.float32) - CENTER) / SCALE).astype(np.float32)


_FLOAT_VIEW_256 = _float_view(np.arange(256, dtype=np.uint8).view(np.int8))  # every int8 code's float view


def float_view_np(x: np.ndarray) -> np.ndarray:
    """Bins as centred, unit-scaled float32; the missing bin maps to 0 (`missing.float_view` in JAX).
    int8 bins are looked up in a table of every code's value (the same bits, 3x faster)."""
    x = np.asarray(x)
    return np.take(_FLOAT_VIEW_256, x.view(np.uint8)) if x.dtype == np.int8 else _float_view(x)


def to_bins(values_F: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values_F), 0, MAX_BIN).astype(np.int8)


def fill_inplace(block_NxF: np.ndarray, fill_F: np.ndarray) -> None:
    rows, cols = np.nonzero(block_NxF == MISSING)
    block_NxF[rows, cols] = fill_F[cols]


def model_fill_inplace(imputer: Imputer, block_NxF: np.ndarray) -> None:
    """Each missing bin from the ridge on its feature's neighbours (missing neighbours count as their mean)."""
    rows, cols = np.nonzero(block_NxF == MISSING)
    if len(rows) == 0:
        return
    nbr_ZxJ = imputer.neighbors_FxJ[cols]
    vals_ZxJ = block_NxF[rows[:, None], nbr_ZxJ].astype(np.float32)
    centred_ZxJ = np.where(vals_ZxJ == MISSING, 0.0, vals_ZxJ - imputer.fill_F[nbr_ZxJ])
    pred_Z = imputer.intercept_F[cols] + (imputer.coef_FxJ[cols] * centred_ZxJ).sum(axis=1)
    block_NxF[rows, cols] = to_bins(pred_Z)
