"""Least squares on one era's features, factored once: neutralisation, feature-neutral corr, exposure.

numerai-tools neutralises by `np.linalg.lstsq` of the predictions on the features and a constant
(rcond 1e-6) and measures exposure by a pandas corr per feature. The report needs both for every
era and source, so `FeatureSpan` factors an era's features once and every source reuses it;
exposure is one matrix product. The factor is the Cholesky factor of their Gram matrix where it is
well conditioned (then lstsq drops no direction and the projection is the same), else its
eigendecomposition with the directions below lstsq's rcond dropped; Cholesky costs a tenth. An
era with more features than rows (Numerai's width) is factored through its rows' Gram matrix.
Tests hold each figure equal to numerai-tools' to 1e-6.
"""

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.lapack import dpocon

from dynjax.data.bins import float_view_np
from dynjax.eval.scores import fast_numerai_corr, gaussian_ranks

RCOND = 1e-6  # numerai-tools' `neutralize`: singular values below RCOND x the largest are dropped
# The Gram matrix's reciprocal condition estimate (1-norm) above which Cholesky solves it: its
# 2-norm condition is then far below the 1 / RCOND**2 where lstsq starts dropping directions (the
# norms differ by at most the matrix's size, the estimate by a small factor) and the solve is exact
# to about 1e-9 of the fit.
CHOLESKY_RCOND = 1e-6


class FeatureSpan:
    """The column space of one era's features `x_RxF` and a constant."""

    def __init__(self, x_RxF: np.ndarray):
        x_RxF = np.asarray(x_RxF, np.float64)
        self.fitted = projector(np.hstack([x_RxF, np.ones((len(x_RxF), 1))]))
        self.xc_RxF = x_RxF - x_RxF.mean(axis=0)
        self.norm_F = np.sqrt((self.xc_RxF**2).sum(axis=0))

    def neutralize(self, pred_R: np.ndarray, proportion: float) -> np.ndarray:
        """numerai-tools' `neutralize`: `pred - proportion * fit(pred)`."""
        pred_R = np.asarray(pred_R, np.float64)
        return pred_R - proportion * self.fitted(pred_R)

    def exposure(self, pred_R: np.ndarray) -> float:
        """numerai-tools' `max_feature_correlation`: the largest |Pearson corr| with a feature (a
        constant feature has none)."""
        pc_R = np.asarray(pred_R, np.float64) - np.mean(pred_R)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr_F = np.abs(self.xc_RxF.T @ pc_R) / (self.norm_F * np.sqrt(pc_R @ pc_R))
        return float(np.nanmax(corr_F)) if np.isfinite(corr_F).any() else float("nan")

    def neutral_corr(self, pred_R: np.ndarray, y_R: np.ndarray) -> float:
        """numerai-tools' `feature_neutral_corr`: numerai_corr of the gaussianised ranks neutralised."""
        return fast_numerai_corr(self.neutralize(gaussian_ranks(pred_R), 1.0), y_R)


def projector(a_RxC: np.ndarray):
    """`v_R -> A A+ v_R`, the least-squares fit of `v_R` on the columns of A with lstsq's rcond, from
    the smaller of A's two Gram matrices: A'A, or AA' where A has more columns than rows (A A+ =
    AA' (AA')+, whose nonzero eigenvalues are A'A's, so the same directions are dropped). An era of
    2,300 rows at v5.3's 3,555 features is rank-deficient in A'A, whose eigendecomposition took 5.3 s."""
    if a_RxC.shape[1] <= a_RxC.shape[0]:
        solve = gram_solver(a_RxC.T @ a_RxC)
        return lambda v_R: a_RxC @ solve(a_RxC.T @ v_R)
    gram_RxR = a_RxC @ a_RxC.T
    solve = gram_solver(gram_RxR)
    return lambda v_R: gram_RxR @ solve(v_R)


def gram_solver(gram_CxC: np.ndarray):
    """`b_C -> G+ b_C` for a Gram matrix G, with lstsq's rcond: Cholesky where G is well
    conditioned, else the pseudo-inverse over the eigen-directions lstsq keeps."""
    try:
        factor = cho_factor(gram_CxC, lower=True, check_finite=False)
        rcond, info = dpocon(factor[0], np.abs(gram_CxC).sum(axis=0).max(), uplo="L")
        if info == 0 and rcond > CHOLESKY_RCOND:
            return lambda b_C: cho_solve(factor, b_C, check_finite=False)
    except np.linalg.LinAlgError:  # not positive definite: rank-deficient features
        pass
    lam_C, v_CxC = np.linalg.eigh(gram_CxC)  # singular values squared
    keep_C = lam_C > (RCOND**2) * lam_C.max()
    v_CxK, inv_K = v_CxC[:, keep_C], 1.0 / lam_C[keep_C]
    return lambda b_C: v_CxK @ (inv_K * (v_CxK.T @ b_C))


def era_exposure(pred_R: np.ndarray, y_R: np.ndarray, span: FeatureSpan) -> dict[str, float]:
    """Feature-neutral corr and max feature exposure of one era, whose features `span` factored.

    A constant prediction (an era where the model used no feature) has no exposure and no
    defined feature-neutral corr.
    """
    if np.ptp(pred_R) == 0:
        return {"fnc": float("nan"), "max_exposure": 0.0}
    return {"fnc": span.neutral_corr(pred_R, y_R), "max_exposure": span.exposure(pred_R)}


def neutralize_era(pred_R: np.ndarray, bins_RxF: np.ndarray, proportion: float) -> np.ndarray:
    """One era's predictions neutralised against its features' float view, numerai-tools' way."""
    if proportion == 0 or np.ptp(pred_R) == 0:
        return np.asarray(pred_R, np.float64)
    return FeatureSpan(float_view_np(bins_RxF)).neutralize(pred_R, proportion)
