"""Covers dynjax.eval.jax_corr: the JAX per-era correlation agrees with numerai-tools."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import numerai_corr as nt_numerai_corr
from numerai_tools.scoring import tie_kept_rank as nt_rank

from dynjax.eval.jax_corr import era_corr, numerai_corr, per_era_numerai_corr, tie_kept_rank


def _era(seed, n=300, ties=True):
    rng = np.random.default_rng(seed)
    y = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n, p=[0.05, 0.2, 0.5, 0.2, 0.05])
    pred = y + rng.standard_normal(n)
    if ties:
        pred = np.round(pred, 1)  # plenty of tied predictions
    return pred.astype(np.float32), y.astype(np.float32)


def _reference(pred, y):
    idx = pd.Index([f"id{i:05d}" for i in range(len(y))])
    return float(nt_numerai_corr(pd.DataFrame({"p": pred}, index=idx), pd.Series(y, index=idx, name="target"))["p"])


def test_rank_matches_numerai_tools_with_ties():
    pred, _ = _era(0)
    expected = nt_rank(pd.Series(pred, index=pd.RangeIndex(len(pred)))).to_numpy()
    np.testing.assert_allclose(tie_kept_rank(jnp.asarray(pred), jnp.ones(len(pred), bool)), expected, atol=1e-6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_numerai_corr_agrees_within_1e4(seed):
    pred, y = _era(seed)
    assert float(numerai_corr(jnp.asarray(pred), jnp.asarray(y), jnp.ones(len(y), bool))) == pytest.approx(_reference(pred, y), abs=1e-4)


def test_padded_rows_take_no_part_and_vmap_over_eras():
    eras = [_era(s, n=n) for s, n in ((4, 300), (5, 220), (6, 260))]
    pred_WxR = np.zeros((3, 300), np.float32)
    y_WxR = np.zeros((3, 300), np.float32)
    mask_WxR = np.zeros((3, 300), bool)
    for i, (p, y) in enumerate(eras):
        pred_WxR[i, : len(p)], y_WxR[i, : len(y)], mask_WxR[i, : len(y)] = p, y, True
        pred_WxR[i, len(p):] = 99.0  # padding must not move the ranks
    got = per_era_numerai_corr(pred_WxR, y_WxR, mask_WxR)
    np.testing.assert_allclose(got, [_reference(p, y) for p, y in eras], atol=1e-4)


def test_bucketed_host_helper_matches():
    pred, y = _era(7, n=137)
    assert era_corr(pred, y) == pytest.approx(_reference(pred, y), abs=1e-4)
