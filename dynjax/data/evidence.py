"""Per-feature evidence from resolved eras: the inputs of the context-conditioned gates.

For every era, each (feature, bin) cell keeps the sum of the era-centred main target over
its rows and the row count. Pooled over the last `h` resolved eras, a feature's bin means
give a chi-square statistic of "the target's mean differs between this feature's bins"
(any shape: linear, U-shaped, threshold), standardised under the null of no effect:

    chi_f = sum_b S_fb^2 / (n_fb * var(y)),   z_f = (chi_f - dof_f) / sqrt(2 dof_f)

so the same z means the same significance whatever the row count, noise level or width.
The gate network sees `asinh(z)` for a few horizons (short ones react to a regime change,
long ones are precise). Era t's evidence pools only eras <= t - 1 - embargo: the embargo
rule is applied here, once, for every position of the timeline.
"""

import numpy as np

from dynjax.data.bins import N_BINS
from dynjax.data.eras import last_resolved_era
from dynjax.data.numerai import EraData


def bin_stats(data: EraData, target: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per era: `(sum_ExFxB, count_ExFxB, ss_E)`: centred-target sums and row counts per cell,
    and the sum of squared centred targets."""
    n_eras, n_feat = data.index.n_eras, data.x_NxF.shape[1]
    sum_ExFxB = np.zeros((n_eras, n_feat, N_BINS), np.float64)
    count_ExFxB = np.zeros((n_eras, n_feat, N_BINS), np.float64)
    ss_E = np.zeros(n_eras, np.float64)
    for e in range(n_eras):
        rows = data.index.labeled_rows(e)
        if rows.stop - rows.start < 2:
            continue
        x_RxF = data.x_NxF[rows]
        y_R = data.y_NxT[rows, target].astype(np.float64)
        y_R = y_R - y_R.mean()
        ss_E[e] = y_R @ y_R
        for b in range(N_BINS):
            in_bin_RxF = (x_RxF == b).astype(np.float32)
            sum_ExFxB[e, :, b] = y_R.astype(np.float32) @ in_bin_RxF
            count_ExFxB[e, :, b] = in_bin_RxF.sum(axis=0)
    return sum_ExFxB, count_ExFxB, ss_E


def pooled_z(sum_FxB: np.ndarray, count_FxB: np.ndarray, ss: float) -> np.ndarray:
    """Standardised chi-square of bin means against "no effect", per feature: [F]."""
    n = count_FxB.sum(axis=1).max(initial=0.0)
    if n < 2 or ss <= 0:
        return np.zeros(sum_FxB.shape[0], np.float64)
    var = ss / n
    filled = count_FxB > 0
    chi_F = np.where(filled, sum_FxB**2 / (np.maximum(count_FxB, 1.0) * var), 0.0).sum(axis=1)
    dof_F = np.maximum(filled.sum(axis=1) - 1, 1)
    return (chi_F - dof_F) / np.sqrt(2.0 * dof_F)


def timeline_evidence(
    stats: tuple[np.ndarray, np.ndarray, np.ndarray], numbers_E: np.ndarray, embargo: int, horizons: tuple[int, ...],
    at_T: np.ndarray | None = None,
) -> np.ndarray:
    """Gate inputs of every timeline position: `asinh(z)` per horizon, `[E, F, V]` float32.

    `stats` are `bin_stats` of the whole timeline in era order (train, validation, live).
    `at_T`: era numbers to compute the inputs for instead (`[T, F, V]`), such as the era after
    the timeline's last, which a live file fills.
    """
    sum_ExFxB, count_ExFxB, ss_E = stats
    at_T = numbers_E if at_T is None else np.asarray(at_T)
    cum_sum = np.concatenate([np.zeros_like(sum_ExFxB[:1]), np.cumsum(sum_ExFxB, axis=0)])
    cum_count = np.concatenate([np.zeros_like(count_ExFxB[:1]), np.cumsum(count_ExFxB, axis=0)])
    cum_ss = np.r_[0.0, np.cumsum(ss_E)]
    # Resolved eras are a prefix of the timeline: era t may pool positions [.., n_resolved).
    cutoff_T = np.array([last_resolved_era(int(t), embargo) for t in at_T])
    n_resolved_T = np.searchsorted(numbers_E, cutoff_T, side="right")
    out_TxFxV = np.zeros((len(at_T), sum_ExFxB.shape[1], len(horizons)), np.float32)
    for e, stop in enumerate(n_resolved_T):
        for c, h in enumerate(horizons):
            start = max(0, stop - h)
            z_F = pooled_z(cum_sum[stop] - cum_sum[start], cum_count[stop] - cum_count[start], cum_ss[stop] - cum_ss[start])
            out_TxFxV[e, :, c] = np.arcsinh(z_F)
    return out_TxFxV
