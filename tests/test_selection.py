"""Covers dynjax.model.selection: per-era importance, EMA state, every threshold mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.config import SelectionConfig
from dynjax.model.selection import era_importance, init_selection, top_k_mask, update_selection


def test_era_importance_ignores_padded_rows():
    w = jnp.array([[0.6, 0.4, 0.0], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]])
    imp = era_importance(w, jnp.array([True, True, False]))
    np.testing.assert_allclose(imp, [0.4, 0.3, 0.3], atol=1e-6)


def test_first_update_replaces_prior_then_ema():
    cfg = SelectionConfig(mode="none", decay=0.5)
    s = update_selection(init_selection(3), jnp.array([0.6, 0.4, 0.0]), cfg)
    np.testing.assert_allclose(s.ema_F, [0.6, 0.4, 0.0])
    s = update_selection(s, jnp.array([0.0, 0.0, 1.0]), cfg)
    np.testing.assert_allclose(s.ema_F, [0.3, 0.2, 0.5])
    assert int(s.n_updates) == 2 and bool(s.mask_F.all())


@pytest.mark.parametrize(
    "cfg, expected",
    [
        (SelectionConfig(mode="fixed", threshold=1.0), [True, True, False, False]),  # >= uniform 1/4
        (SelectionConfig(mode="topk", k=1), [True, False, False, False]),
        (SelectionConfig(mode="quantile", quantile=0.5), [True, True, False, False]),
        (SelectionConfig(mode="fixed", threshold=100.0, min_features=1), [True, False, False, False]),
    ],
)
def test_threshold_modes(cfg, expected):
    s = update_selection(init_selection(4), jnp.array([0.5, 0.3, 0.15, 0.05]), cfg)
    assert s.mask_F.tolist() == expected


def test_schedule_shrinks_k_over_updates():
    cfg = SelectionConfig(mode="schedule", k_start=8, k=2, schedule_eras=3, decay=0.0)
    state, imp = init_selection(8), jnp.linspace(1.0, 0.1, 8) / 4.4
    counts = []
    for _ in range(5):
        state = update_selection(state, imp, cfg)
        counts.append(int(state.mask_F.sum()))
    assert counts == [8, 6, 4, 2, 2]


def test_warm_up_keeps_every_feature_then_the_schedule_starts():
    cfg = SelectionConfig(mode="schedule", k_start=8, k=2, schedule_eras=3, decay=0.0, warmup_eras=2)
    state, imp = init_selection(8), jnp.linspace(1.0, 0.1, 8) / 4.4
    counts = []
    for _ in range(6):
        state = update_selection(state, imp, cfg)
        counts.append(int(state.mask_F.sum()))
    assert counts == [8, 8, 8, 6, 4, 2]


def test_update_is_jittable_and_top_k_breaks_ties_by_index():
    cfg = SelectionConfig(mode="topk", k=2)
    s = jax.jit(update_selection, static_argnums=2)(init_selection(4), jnp.full(4, 0.25), cfg)
    assert s.mask_F.tolist() == [True, True, False, False]
    assert top_k_mask(jnp.array([0.1, 0.9, 0.5]), jnp.int32(1)).tolist() == [False, True, False]


def test_bad_selection_config():
    with pytest.raises(ValueError, match="unknown selection mode"):
        SelectionConfig(mode="random")
