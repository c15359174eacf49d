"""Covers experiments.frozen_floor: the exact replay of the safe expert's share, and its policy rule."""

import numpy as np

from experiments.frozen_floor import POLICIES, RULES, replay


def _eras(n_eras=24, rows=200, seed=0):
    """A walk-forward that is right on even eras and wrong on odd ones, and a steady frozen model."""
    rng = np.random.default_rng(seed)
    eras = []
    for e in range(n_eras):
        y = rng.integers(0, 5, rows) / 4
        walk = (1 if e % 2 == 0 else -1) * y + rng.normal(0, 0.5, rows)
        frozen = y + rng.normal(0, 2.0, rows)
        eras.append((walk, frozen, y))
    return eras


def test_the_policy_rule_is_a_candidates_corr_era_by_era_and_the_first_before_enough_eras():
    out = replay(_eras(), embargo=2, after=4)
    assert set(out) == {*RULES, "policies"}
    first = replay(_eras(), embargo=2, after=100)["policies"]  # never enough eras: the first candidate throughout
    np.testing.assert_allclose(out["policies"][:6], first[:6])  # eras t < after + embargo
    assert not np.allclose(out["policies"], first)  # then another candidate's share pays more per unit of risk
    assert len(POLICIES) == 3
