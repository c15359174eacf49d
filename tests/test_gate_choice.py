"""Covers experiments.gate_choice: the proxy predicts an era from evidence and bin means of eras
resolved past the embargo only, and its thresholds keep what they claim."""

import numpy as np
import polars as pl

from dynjax.data.bins import N_BINS
from dynjax.data.eras import build_era_index
from dynjax.data.evidence import bin_stats
from dynjax.data.numerai import EraData
from experiments.gate_choice import (
    EMBARGO,
    MEMORY,
    THRESHOLDS,
    gate_evidence,
    kept_counts,
    walk_scores,
)


def _eras(sign_E: np.ndarray, rows: int = 400, n_feat: int = 6, seed: int = 0):
    """Eras where feature 0 carries the target with sign `sign_E[e]`, the rest noise; their bin stats."""
    rng = np.random.default_rng(seed)
    n_eras = len(sign_E)
    x_NxF = rng.integers(0, N_BINS - 1, (n_eras * rows, n_feat)).astype(np.int8)
    era_N = np.repeat(np.arange(n_eras), rows)
    y_N = sign_E[era_N] * (x_NxF[:, 0] - 2.0) + rng.normal(size=len(era_N))
    index = build_era_index([f"{e:04d}" for e in era_N], era_N, np.ones(len(era_N), bool))
    split = EraData(x_NxF, y_N[:, None].astype(np.float32), pl.Series("id", [str(i) for i in range(len(era_N))]),
                    index, tuple(f"feature_{f}" for f in range(n_feat)), ("target",), "test")
    x_rows = [x_NxF[era_N == e].astype(np.int64) for e in range(n_eras)]
    y_rows = [split.y_NxT[era_N == e, 0].astype(np.float64) for e in range(n_eras)]
    return bin_stats(split), np.arange(n_eras), x_rows, y_rows


def test_the_signal_feature_is_kept_and_predicts():
    stats, numbers_E, x_rows, y_rows = _eras(np.ones(40))
    evidence_ExF = gate_evidence(stats, numbers_E)
    corr_ExK, _ = walk_scores(stats, numbers_E, evidence_ExF, x_rows, y_rows)
    kept_ExK = kept_counts(evidence_ExF)
    late = slice(MEMORY + EMBARGO + 1, None)
    assert np.isnan(corr_ExK[: MEMORY + EMBARGO]).all()  # no 16 resolved eras before them yet
    assert (corr_ExK[late] > 0.5).all()
    assert (kept_ExK[late, THRESHOLDS.index(7.0)] >= 1).all()
    assert kept_ExK[late, THRESHOLDS.index(7.0)].mean() < 1.5  # the noise features stay out at z 7


def test_a_flip_is_seen_only_once_its_eras_resolve():
    flip = 25
    sign_E = np.where(np.arange(60) < flip, 1.0, -1.0)
    stats, numbers_E, x_rows, y_rows = _eras(sign_E)
    corr_ExK, dense_E = walk_scores(stats, numbers_E, gate_evidence(stats, numbers_E), x_rows, y_rows)
    # Eras flip .. flip + embargo predict with bin means of the old sign only: strongly wrong.
    assert (corr_ExK[flip: flip + EMBARGO + 1] < -0.5).all()
    assert (dense_E[flip: flip + EMBARGO + 1] < -0.5).all()
    # Once most of the 16-era memory holds the new sign, the bin means follow it; the dense proxy,
    # pooling every resolved era, still holds more old-sign eras than new ones.
    assert (corr_ExK[flip + EMBARGO + MEMORY:] > 0.5).all()
    assert dense_E[flip + EMBARGO + MEMORY] < 0 and dense_E[-1] > 0
