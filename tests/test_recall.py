"""Covers `train.recall` (a research option, off): a recent member recalls the resolved eras most like the latest."""

from types import SimpleNamespace

import numpy as np

from dynjax.config import RunConfig, override
from dynjax.train.era_features import EraFeatures
from dynjax.train.run import _recent

N_FEATURES, N_BINS = 6, 5


def _stats(regime_E: np.ndarray, seed: int = 0):
    """`bin_stats`-shaped statistics of eras in two regimes: feature 0's target rises over its bins in
    regime 0 and falls in regime 1, the other features are noise."""
    rng = np.random.default_rng(seed)
    n = len(regime_E)
    count_ExFxB = np.full((n, N_FEATURES, N_BINS), 40.0)
    mean_ExFxB = rng.normal(0, 0.01, (n, N_FEATURES, N_BINS))
    slope_B = np.linspace(-0.1, 0.1, N_BINS)
    mean_ExFxB[:, 0] += np.where(regime_E[:, None] == 0, slope_B, -slope_B)
    return mean_ExFxB * count_ExFxB, count_ExFxB, np.ones(n)


def test_a_regime_that_returns_brings_back_its_own_eras():
    regime_E = np.repeat([0, 1, 0, 1, 0], 6)  # 30 eras; the latest resolved ones are in regime 1
    features = EraFeatures(RunConfig(), None, None, _stats(regime_E))
    resolved = np.arange(24)  # eras 18..23 (regime 1) are the latest resolved
    recalled = features.most_like(resolved, k=12, probe=4)
    assert (regime_E[recalled] == 1).all() and list(recalled) == sorted(recalled)
    assert set(recalled) == set(range(6, 12)) | set(range(18, 24))


def test_recall_reads_resolved_eras_only():
    regime_E = np.repeat([0, 1, 0, 1, 0], 6)
    stats = _stats(regime_E)
    flipped = tuple(a.copy() for a in stats)
    flipped[0][24:] *= -1  # eras not yet resolved: their targets cannot move the choice
    resolved = np.arange(24)
    a = EraFeatures(RunConfig(), None, None, stats).most_like(resolved, 10, 4)
    b = EraFeatures(RunConfig(), None, None, flipped).most_like(resolved, 10, 4)
    np.testing.assert_array_equal(a, b)
    assert set(a) <= set(resolved)


def test_the_recent_member_draws_its_window_from_the_recalled_eras():
    regime_E = np.repeat([0, 1, 0, 1, 0], 6)
    cfg = override(RunConfig(), ["train.recall=true", "data.window_eras=4"])
    run = SimpleNamespace(cfg=cfg, features=EraFeatures(cfg, None, None, _stats(regime_E)))
    resolved = np.arange(24)
    rng = np.random.default_rng(0)
    drawn = np.concatenate([_recent(run, resolved, 12, rng) for _ in range(20)])
    assert (regime_E[drawn] == 1).all() and set(drawn) - set(range(18, 24))  # older eras of the latest regime too
    every = np.concatenate([_recent(run, resolved, 0, rng) for _ in range(20)])
    assert (regime_E[every] == 0).any()  # a member remembering every resolved era is not recalled
    off = SimpleNamespace(cfg=RunConfig(), features=run.features)
    assert set(_recent(off, resolved, 12, rng)) <= set(range(12, 24))  # off: the latest 12
