"""Missing feature values: the missing bin, imputation strategies, and the float view.

Numerai features are int8 bins 0..4; a null becomes the bin `MISSING` (= 5), which the
model can embed as its own bin ("bin"), or which an imputer replaces in place with a real
bin: the era's median ("era_median"), the training mean ("global_mean"), or a ridge fit on
the most correlated features ("model"). Imputers work in place on the int8 matrix so that
no second copy of the feature set is ever made.
"""

from dataclasses import dataclass
from typing import Literal

import jax.numpy as jnp
import numpy as np

from dynjax.data.eras import EraIndex

MAX_BIN = 4
MISSING = MAX_BIN + 1
N_BINS = MISSING + 1  # bins 0..4 plus the missing bin
CENTER = MAX_BIN / 2
SCALE = float(np.sqrt(2.0))  # std of a uniform draw over bins 0..4

Strategy = Literal["bin", "era_median", "global_mean", "model"]
STRATEGIES: tuple[str, ...] = ("bin", "era_median", "global_mean", "model")
_ROW_CHUNK = 65536


@dataclass(frozen=True, eq=False)
class Imputer:
    """A fitted imputation: what replaces `MISSING` in each feature."""

    strategy: Strategy
    fill_F: np.ndarray | None = None  # global_mean / model fallback: float mean per feature
    neighbors_FxK: np.ndarray | None = None  # model: most correlated features
    coef_FxK: np.ndarray | None = None  # model: ridge coefficients on centred neighbours
    intercept_F: np.ndarray | None = None


def fit_imputer(
    strategy: Strategy,
    x_NxF: np.ndarray,
    *,
    n_neighbors: int = 8,
    sample_rows: int = 20_000,
    ridge: float = 1.0,
    seed: int = 0,
) -> Imputer:
    """Fit an imputer on training features (never on targets)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown missing-value strategy {strategy!r}; choose from {STRATEGIES}")
    if strategy in ("bin", "era_median"):
        return Imputer(strategy)
    fill_F = feature_means(x_NxF)
    if strategy == "global_mean":
        return Imputer(strategy, fill_F=fill_F)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x_NxF), min(sample_rows, len(x_NxF)), replace=False))
    return _fit_neighbor_model(x_NxF[rows], fill_F, n_neighbors, ridge)


def impute_inplace(imputer: Imputer, x_NxF: np.ndarray, index: EraIndex) -> np.ndarray:
    """Replace `MISSING` entries of `x_NxF` in place; returns the same array."""
    if imputer.strategy == "bin":
        return x_NxF
    if imputer.strategy == "era_median":
        for e in range(index.n_eras):
            block = x_NxF[index.rows(e)]
            _fill_inplace(block, era_medians(block))
        return x_NxF
    for start in range(0, len(x_NxF), _ROW_CHUNK):
        block = x_NxF[start : start + _ROW_CHUNK]
        if imputer.strategy == "global_mean":
            _fill_inplace(block, _to_bins(imputer.fill_F))
        else:
            _model_fill_inplace(imputer, block)
    return x_NxF


def feature_means(x_NxF: np.ndarray) -> np.ndarray:
    """Mean bin of each feature over non-missing rows (CENTER where all are missing)."""
    total = np.zeros(x_NxF.shape[1], np.float64)
    count = np.zeros(x_NxF.shape[1], np.int64)
    for start in range(0, len(x_NxF), _ROW_CHUNK):
        block = x_NxF[start : start + _ROW_CHUNK]
        seen = block != MISSING
        total += np.where(seen, block, 0).sum(axis=0)
        count += seen.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), CENTER)


def era_medians(block_NxF: np.ndarray) -> np.ndarray:
    """Median bin of each feature in one era, from bin counts (CENTER if all missing)."""
    counts_BxF = np.stack([(block_NxF == b).sum(axis=0) for b in range(MAX_BIN + 1)])
    cum_BxF = np.cumsum(counts_BxF, axis=0)
    total_F = cum_BxF[-1]
    median_F = (cum_BxF < (total_F + 1) / 2).sum(axis=0)
    return np.where(total_F > 0, median_F, int(CENTER)).astype(np.int8)


def float_view_np(x: np.ndarray) -> np.ndarray:
    """`float_view` on the host, for numpy consumers (summaries, ridge, exposure)."""
    return np.where(x == MISSING, 0.0, (x.astype(np.float32) - CENTER) / SCALE).astype(np.float32)


def float_view(x: jnp.ndarray) -> jnp.ndarray:
    """Centred, unit-scaled float32 view of a batch of bins; the missing bin maps to 0."""
    xf = (x.astype(jnp.float32) - CENTER) / SCALE
    return jnp.where(x == MISSING, 0.0, xf)


def _to_bins(values_F: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values_F), 0, MAX_BIN).astype(np.int8)


def _fill_inplace(block_NxF: np.ndarray, fill_F: np.ndarray) -> None:
    rows, cols = np.nonzero(block_NxF == MISSING)
    block_NxF[rows, cols] = fill_F[cols]


def _fit_neighbor_model(sample_SxF: np.ndarray, fill_F: np.ndarray, k: int, ridge: float) -> Imputer:
    """Per feature: ridge of its bin on the k features it correlates with most."""
    n_features = sample_SxF.shape[1]
    k = max(1, min(k, n_features - 1))
    seen_SxF = sample_SxF != MISSING
    xc_SxF = np.where(seen_SxF, sample_SxF - fill_F, 0.0).astype(np.float32)
    # Mean-filled correlation: cheap, and only used to rank candidate neighbours.
    cov_FxF = xc_SxF.T @ xc_SxF
    std_F = np.sqrt(np.maximum(np.diag(cov_FxF), 1e-12))
    corr_FxF = np.abs(cov_FxF / std_F[:, None] / std_F[None, :])
    np.fill_diagonal(corr_FxF, -1.0)
    neighbors_FxK = np.argsort(-corr_FxF, axis=1)[:, :k]
    coef_FxK = np.zeros((n_features, k), np.float32)
    intercept_F = fill_F.astype(np.float32).copy()
    for f in range(n_features):
        rows = seen_SxF[:, f]
        if rows.sum() <= k:
            continue
        a_SxK = xc_SxF[rows][:, neighbors_FxK[f]]
        b_S = xc_SxF[rows, f]
        coef_FxK[f] = np.linalg.solve(a_SxK.T @ a_SxK + ridge * np.eye(k), a_SxK.T @ b_S)
    return Imputer("model", fill_F, neighbors_FxK, coef_FxK, intercept_F)


def _model_fill_inplace(imputer: Imputer, block_NxF: np.ndarray) -> None:
    rows, cols = np.nonzero(block_NxF == MISSING)
    if len(rows) == 0:
        return
    nbr_MxK = imputer.neighbors_FxK[cols]
    vals_MxK = block_NxF[rows[:, None], nbr_MxK].astype(np.float32)
    centred_MxK = np.where(vals_MxK == MISSING, 0.0, vals_MxK - imputer.fill_F[nbr_MxK])
    pred_M = imputer.intercept_F[cols] + (imputer.coef_FxK[cols] * centred_MxK).sum(axis=1)
    block_NxF[rows, cols] = _to_bins(pred_M)
