"""Covers dynjax.data.evidence: bin statistics, the standardised chi-square, embargoed pooling."""

import dataclasses

import numpy as np
import pytest

from dynjax.data import load_numerai
from dynjax.data.bins import N_BINS
from dynjax.data.eras import last_resolved_era
from dynjax.data.evidence import bin_stats, pooled_z, timeline_evidence


def test_bin_stats_are_centred_target_sums_and_counts(synth_dir):
    train = load_numerai(synth_dir).train
    sums, counts, ss = bin_stats(train)
    n_eras, n_feat = train.index.n_eras, len(train.features)
    assert sums.shape == counts.shape == (n_eras, n_feat, N_BINS) and ss.shape == (n_eras,)
    rows = train.index.labeled_rows(3)
    x, y = train.x_NxF[rows, 5], train.y_NxT[rows, 0] - train.y_NxT[rows, 0].mean()
    for b in range(N_BINS):
        assert counts[3, 5, b] == (x == b).sum()
        assert sums[3, 5, b] == pytest.approx(y[x == b].sum(), abs=1e-4)
    np.testing.assert_allclose(sums.sum(axis=2), 0.0, atol=1e-3)  # centred within the era
    assert ss[3] == pytest.approx((y**2).sum(), rel=1e-5)


def test_z_is_near_zero_without_an_effect_and_large_with_one():
    rng = np.random.default_rng(0)
    n, n_feat = 20_000, 200
    x = rng.integers(0, 5, (n, n_feat))
    y = rng.standard_normal(n) + 0.3 * (x[:, 0] - 2)  # only feature 0 matters
    y = y - y.mean()
    sums = np.stack([np.bincount(x[:, f], weights=y, minlength=N_BINS) for f in range(n_feat)])
    counts = np.stack([np.bincount(x[:, f], minlength=N_BINS) for f in range(n_feat)]).astype(float)
    z = pooled_z(sums, counts, float(y @ y))
    assert z[0] > 100
    assert abs(z[1:].mean()) < 0.3 and 0.7 < z[1:].std() < 1.3  # standardised under the null


def test_pooling_uses_resolved_eras_only_and_unresolved_targets_cannot_reach_it(synth_dir):
    train = load_numerai(synth_dir).train
    numbers, embargo, horizons = train.index.numbers, 4, (2, 50)
    clean = timeline_evidence(bin_stats(train), numbers, embargo, horizons)
    assert clean.shape == (train.index.n_eras, len(train.features), 2) and clean.dtype == np.float32
    assert (clean[: embargo + 1] == 0).all()  # nothing resolved yet: no evidence
    t_pos = 8
    late = np.repeat(numbers > last_resolved_era(int(numbers[t_pos]), embargo), train.index.sizes)
    y = train.y_NxT.copy()
    y[late] = np.random.default_rng(1).permutation(y[late])
    scrambled = timeline_evidence(bin_stats(dataclasses.replace(train, y_NxT=y)), numbers, embargo, horizons)
    np.testing.assert_array_equal(clean[: t_pos + 1], scrambled[: t_pos + 1])
    assert not np.array_equal(clean[-1], scrambled[-1])  # the scramble does reach later eras


def test_horizons_pool_the_latest_resolved_eras():
    rng = np.random.default_rng(2)
    n_eras, n_feat = 12, 3
    sums, counts = rng.standard_normal((n_eras, n_feat, N_BINS)), np.full((n_eras, n_feat, N_BINS), 10.0)
    ss = np.full(n_eras, 60.0)
    ev = timeline_evidence((sums, counts, ss), np.arange(1, n_eras + 1), 0, (1, 3))
    # Era 10 (position 9) sees eras 1..9; horizon 1 pools era 9 alone, horizon 3 eras 7..9.
    np.testing.assert_allclose(ev[9, :, 0], np.arcsinh(pooled_z(sums[8], counts[8], 60.0)), rtol=1e-5)
    np.testing.assert_allclose(ev[9, :, 1], np.arcsinh(pooled_z(sums[6:9].sum(0), counts[6:9].sum(0), 180.0)), rtol=1e-5)
