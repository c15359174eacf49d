"""Which pairs of features interact: GA2M's screen (Lou, Caruana, Gehrke & Hooker, KDD 2013).

The additive path fits each feature's own effect; what it cannot fit is a pair's joint effect.
Before pretraining, on the eras it fits, every pair (f, g) is scored per era e by the corr of
the era's main-effect residual with the pair's centred product (z: a bin minus its era mean, a
missing bin 0):

    res = y - sum_f m[f, x_rf]      m: a GAM on the bins (backfitted, pooled over the eras), centred per era
    c_e(f, g) = <res, z_f z_g> / (|res| |z_f z_g|)
    t(f, g) = mean_e c_e / std_e c_e * sqrt(E)

The product is the first (linear x linear) interaction contrast: it carries a product's joint
effect and part of a threshold's. Residuals of a joint fit, not the target nor each feature's own
bin means: a feature's U-shaped effect would otherwise score as a product with every feature
correlated with it. A t over eras, not a z pooled over rows: the rows of one era share its noise
(a real era's stocks move together), so only the eras' own spread says how surprising a mean is.
Pairs with |t| above Bonferroni's bound for all F (F - 1) / 2 pairs at 5 % family-wise (t with
E - 1 degrees of freedom) are candidates; a pair of a feature correlated with one of a true
pair's scores too (an echo), so the candidates are then fitted jointly, era by era, and those
whose own coefficient passes the same bound are kept, largest first, at most `max_pairs`. Data
without interactions keep none, and the model is the GAM it was. Only the screened eras' targets
are read, so the screen is as embargo-safe as the pretraining that fits the same eras. It reads
a fixed draw of `pair_rows` rows an era, fewer where its bins would pass `SCREEN_BYTES`.
"""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from dynjax.data.bins import MISSING, N_BINS
from dynjax.data.numerai import EraData
from dynjax.data.windows import window_rng

PAIRS = 21  # the sampling stream of the screen's rows (data-determined: every seed screens the same pairs)
FAMILY_ALPHA = 0.05
CANDIDATES = 4  # pairs past the bound fitted jointly, per pair kept
BACKFIT_CYCLES = 4  # passes over the features of the main-effect fit
BACKFIT_L2 = 10.0  # rows' worth of shrinkage of each (feature, bin) mean towards 0
# The most int8 feature bytes the screen reads (E eras x R rows x F): rows per era are cut to fit,
# so that at Numerai's size (1,000 eras x 3,555 features) it reads about 300 an era, 1 GiB beside
# the data, instead of a second copy of them (2,048 rows an era: 7 GiB).
SCREEN_BYTES = 2**30


def screen_pairs(split: EraData, eras: np.ndarray, max_pairs: int, max_rows: int, bound: float = 0.0,
                 target: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The pairs the screen keeps over `eras` (local era numbers of `split`), `[P, 2]` (f < g, the
    largest |t| first, at most `max_pairs`), and their t-statistics `[P]`; `bound` 0: Bonferroni's."""
    n_features = split.x_NxF.shape[1]
    eras = np.array([e for e in np.asarray(eras, np.int64) if split.index.n_labeled[e] >= 3], np.int64)
    none = np.zeros((0, 2), np.int64), np.zeros(0)
    if not max_pairs or n_features < 2 or len(eras) < 3:
        return none
    rows = screen_rows(len(eras), n_features, int(min(max_rows, split.index.n_labeled[eras].max())))
    x_ExRxF, y_ExR, valid_ExR = era_samples(split, eras, rows, target)
    res_ExR = main_effect_residuals(x_ExRxF, y_ExR, valid_ExR)
    t_FxF = pair_t(x_ExRxF, res_ExR, valid_ExR)
    f_P, g_P = np.triu_indices(n_features, 1)
    t_P = t_FxF[f_P, g_P]
    bound = bound or bonferroni_t(len(t_P), len(eras))
    passed = np.flatnonzero(np.abs(t_P) > bound)
    passed = passed[np.argsort(-np.abs(t_P[passed]), kind="stable")][: CANDIDATES * max_pairs]
    if not len(passed):
        return none
    pairs_Kx2 = np.stack([f_P[passed], g_P[passed]], axis=1)
    t_C = joint_t(x_ExRxF, res_ExR, valid_ExR, pairs_Kx2)
    kept = np.flatnonzero(np.abs(t_C) > bound)
    kept = kept[np.argsort(-np.abs(t_C[kept]), kind="stable")][:max_pairs]
    return pairs_Kx2[kept], t_C[kept]


def screen_rows(n_eras: int, n_features: int, max_rows: int) -> int:
    """Rows per era the screen reads: `max_rows`, fewer where `n_eras` x rows x `n_features` would pass
    `SCREEN_BYTES` (at least 3, the fewest an era's corr is read from)."""
    return max(3, min(max_rows, SCREEN_BYTES // max(n_eras * n_features, 1)))


def bonferroni_t(n_pairs: int, n_eras: int) -> float:
    """|t| that one of `n_pairs` null pairs exceeds with probability 5 % (t with E - 1 dof)."""
    return float(stats.t.ppf(1 - FAMILY_ALPHA / (2 * n_pairs), n_eras - 1))


def era_samples(split: EraData, eras: np.ndarray, rows: int, target: int = 0) -> tuple[np.ndarray, ...]:
    """Up to `rows` labelled rows of each era (a fixed draw where it has more), padded:
    `(x_ExRxF, y_ExR, valid_ExR)`."""
    x_ExRxF = np.full((len(eras), rows, split.x_NxF.shape[1]), MISSING, np.int8)
    y_ExR, valid_ExR = np.zeros((len(eras), rows), np.float32), np.zeros((len(eras), rows), bool)
    for i, e in enumerate(eras):
        labeled = split.index.labeled_rows(int(e))
        picked = np.arange(labeled.start, labeled.stop)
        if len(picked) > rows:
            picked = np.sort(window_rng(0, PAIRS, int(e)).choice(picked, rows, replace=False))
        n = len(picked)
        x_ExRxF[i, :n], y_ExR[i, :n], valid_ExR[i, :n] = split.x_NxF[picked], split.y_NxT[picked, target], True
    return x_ExRxF, y_ExR, valid_ExR


def main_effect_residuals(x_ExRxF: np.ndarray, y_ExR: np.ndarray, valid_ExR: np.ndarray) -> np.ndarray:
    """The era-centred target minus a GAM on the bins, centred per era again (0 on padding), `[E, R]`."""
    n_eras, rows, n_features = x_ExRxF.shape
    y_ExR = np.where(valid_ExR, y_ExR - _era_mean(y_ExR, valid_ExR), 0.0).astype(np.float32)
    res_N = _backfit(jnp.asarray(x_ExRxF.reshape(-1, n_features).T), jnp.asarray(y_ExR.reshape(-1)),
                     jnp.asarray(valid_ExR.reshape(-1)))
    res_ExR = np.asarray(res_N, np.float32).reshape(n_eras, rows)
    return np.where(valid_ExR, res_ExR - _era_mean(res_ExR, valid_ExR), 0.0).astype(np.float32)


def _era_mean(v_ExR: np.ndarray, valid_ExR: np.ndarray) -> np.ndarray:
    return (np.where(valid_ExR, v_ExR, 0.0).sum(axis=1) / np.maximum(valid_ExR.sum(axis=1), 1))[:, None]


@jax.jit
def _backfit(x_FxN, y_N, valid_N):
    """Gauss-Seidel over the features: each one's bin means of the others' residual, `BACKFIT_CYCLES`
    times; correlated features share an effect instead of each taking all of it. The residual `[N]`."""
    n_features = x_FxN.shape[0]
    w_N = valid_N.astype(jnp.float32)

    def feature(i, carry):
        m_FxB, res_N = carry
        f = i % n_features
        bin_N = x_FxN[f].astype(jnp.int32)
        partial_N = res_N + m_FxB[f][bin_N] * w_N
        sums_B = jax.ops.segment_sum(partial_N * w_N, bin_N, N_BINS)
        counts_B = jax.ops.segment_sum(w_N, bin_N, N_BINS)
        new_B = sums_B / (counts_B + BACKFIT_L2)
        return m_FxB.at[f].set(new_B), partial_N - new_B[bin_N] * w_N

    m_FxB = jnp.zeros((n_features, N_BINS), jnp.float32)
    return jax.lax.fori_loop(0, BACKFIT_CYCLES * n_features, feature, (m_FxB, y_N * w_N))[1]


def pair_t(x_ExRxF: np.ndarray, res_ExR: np.ndarray, valid_ExR: np.ndarray) -> np.ndarray:
    """Every pair's t-statistic of its per-era corr with the residual, `[F, F]` (zero diagonal)."""
    n_eras, _, n_features = x_ExRxF.shape
    total, total_sq = jnp.zeros((n_features, n_features)), jnp.zeros((n_features, n_features))
    for x_RxF, res_R, valid_R in zip(x_ExRxF, res_ExR, valid_ExR):
        total, total_sq = _accumulate(total, total_sq, x_RxF, res_R, valid_R)
    t_FxF = t_over_eras(np.asarray(total, np.float64) / n_eras, np.asarray(total_sq, np.float64) / n_eras, n_eras)
    np.fill_diagonal(t_FxF, 0.0)
    return t_FxF


def joint_t(x_ExRxF: np.ndarray, res_ExR: np.ndarray, valid_ExR: np.ndarray, pairs_Kx2: np.ndarray) -> np.ndarray:
    """Each candidate pair's t-statistic of its coefficient in the era's joint least squares of the
    residual on every candidate's centred product (columns standardised), `[K]`."""
    n_eras, k = len(x_ExRxF), len(pairs_Kx2)
    total, total_sq = np.zeros(k), np.zeros(k)
    for x_RxF, res_R, valid_R in zip(x_ExRxF, res_ExR, valid_ExR):
        z_RxF = np.asarray(centred(jnp.asarray(x_RxF), jnp.asarray(valid_R)), np.float64)
        prod_RxC = z_RxF[:, pairs_Kx2[:, 0]] * z_RxF[:, pairs_Kx2[:, 1]]
        prod_RxC = np.where(valid_R[:, None], prod_RxC - prod_RxC[valid_R].mean(axis=0), 0.0)
        prod_RxC /= np.maximum(np.sqrt((prod_RxC**2).sum(axis=0)), 1e-12)
        res_R = np.asarray(res_R, np.float64)
        beta_C = np.linalg.solve(prod_RxC.T @ prod_RxC + 1e-6 * np.eye(k), prod_RxC.T @ res_R)
        beta_C /= max(np.sqrt(res_R @ res_R), 1e-12)
        total, total_sq = total + beta_C, total_sq + beta_C**2
    return t_over_eras(total / n_eras, total_sq / n_eras, n_eras)


def t_over_eras(mean, mean_sq, n: int):
    """mean / std * sqrt(n) from the per-era mean and mean square (0 where the eras agree exactly)."""
    std = np.sqrt(np.maximum(mean_sq - mean**2, 0.0) * n / (n - 1))
    return np.where(std > 0, mean / np.where(std > 0, std, 1.0) * np.sqrt(n), 0.0)


def centred(x_RxF: jnp.ndarray, valid_R: jnp.ndarray) -> jnp.ndarray:
    """Bins minus their era mean, `[R, F]` float32; 0 where missing or padding."""
    seen_RxF = (x_RxF != MISSING) & valid_R[:, None]
    xf_RxF = x_RxF.astype(jnp.float32)
    mean_F = (xf_RxF * seen_RxF).sum(axis=0) / jnp.maximum(seen_RxF.sum(axis=0), 1)
    return jnp.where(seen_RxF, xf_RxF - mean_F, 0.0)


@jax.jit
def _accumulate(total_FxF, total_sq_FxF, x_RxF, res_R, valid_R):
    c_FxF = era_pair_corr(centred(x_RxF, valid_R), res_R)
    return total_FxF + c_FxF, total_sq_FxF + c_FxF**2


def era_pair_corr(z_RxF: jnp.ndarray, res_R: jnp.ndarray) -> jnp.ndarray:
    """One era's `c(f, g)`: the corr of its residual with each pair's product of centred features, `[F, F]`."""
    hi = jax.lax.Precision.HIGHEST  # the same pairs on every device (no TF32 in the Grams)
    num_FxF = jnp.matmul((z_RxF * res_R[:, None]).T, z_RxF, precision=hi)
    zz_RxF = z_RxF * z_RxF
    den_FxF = jnp.matmul(zz_RxF.T, zz_RxF, precision=hi) * (res_R @ res_R)
    return jnp.where(den_FxF > 0, num_FxF / jnp.sqrt(jnp.where(den_FxF > 0, den_FxF, 1.0)), 0.0)
