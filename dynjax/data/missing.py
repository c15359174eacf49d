"""Missing feature values: the missing bin, imputation strategies, and the float view.

Numerai features are int8 bins 0..4; a null becomes the bin `MISSING` (= 5), which the
model can embed as its own bin ("bin"), or which an imputer replaces in place with a real
bin: the era's median ("era_median"), the training mean ("global_mean"), or a ridge fit on
the most correlated features ("model"). Imputers work in place on the int8 matrix so that
no second copy of the feature set is ever made.
"""

import jax.numpy as jnp
import numpy as np

from dynjax.data.bins import (
    CENTER,
    MISSING,
    SCALE,
    STRATEGIES,
    Imputer,
    fill_block,
)
from dynjax.data.eras import EraIndex

_ROW_CHUNK = 65536


def fit_imputer(
    strategy: str,
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
    if imputer.strategy == "era_median":
        for e in range(index.n_eras):
            fill_block(imputer, x_NxF[index.rows(e)])
    elif imputer.strategy != "bin":
        for start in range(0, len(x_NxF), _ROW_CHUNK):
            fill_block(imputer, x_NxF[start : start + _ROW_CHUNK])
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


def float_view(x: jnp.ndarray) -> jnp.ndarray:
    """Centred, unit-scaled float32 view of a batch of bins; the missing bin maps to 0."""
    xf = (x.astype(jnp.float32) - CENTER) / SCALE
    return jnp.where(x == MISSING, 0.0, xf)


def _fit_neighbor_model(sample_NxF: np.ndarray, fill_F: np.ndarray, k: int, ridge: float) -> Imputer:
    """Per feature: ridge of its bin on the k features it correlates with most."""
    n_features = sample_NxF.shape[1]
    k = max(1, min(k, n_features - 1))
    seen_NxF = sample_NxF != MISSING
    xc_NxF = np.where(seen_NxF, sample_NxF - fill_F, 0.0).astype(np.float32)
    # Mean-filled correlation: cheap, and only used to rank candidate neighbours.
    cov_FxF = xc_NxF.T @ xc_NxF
    std_F = np.sqrt(np.maximum(np.diag(cov_FxF), 1e-12))
    corr_FxF = np.abs(cov_FxF / std_F[:, None] / std_F[None, :])
    np.fill_diagonal(corr_FxF, -1.0)
    neighbors_FxJ = np.argsort(-corr_FxF, axis=1)[:, :k]
    coef_FxJ = np.zeros((n_features, k), np.float32)
    intercept_F = fill_F.astype(np.float32).copy()
    for f in range(n_features):
        rows = seen_NxF[:, f]
        if rows.sum() <= k:
            continue
        a_NxJ = xc_NxF[rows][:, neighbors_FxJ[f]]
        b_N = xc_NxF[rows, f]
        coef_FxJ[f] = np.linalg.solve(a_NxJ.T @ a_NxJ + ridge * np.eye(k), a_NxJ.T @ b_N)
    return Imputer("model", fill_F, neighbors_FxJ, coef_FxJ, intercept_F)
