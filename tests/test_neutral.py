"""Covers dynjax.eval.neutral: one era's features factored once; neutralisation, feature-neutral corr
and max exposure equal to numerai-tools' on random eras (ties, a constant feature, a collinear pair)."""

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import feature_neutral_corr, max_feature_correlation, neutralize

from dynjax.eval.neutral import RCOND, FeatureSpan, era_exposure, gram_solver, neutralize_era


def test_the_gram_solver_takes_cholesky_only_where_lstsq_would_drop_nothing():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 6))
    b = rng.standard_normal(6)
    for scale in (1.0, 1e-5):  # well conditioned; a direction lstsq keeps but Cholesky must not solve
        a[:, 5] = a[:, 4] + scale * rng.standard_normal(200)
        gram = a.T @ a
        want = np.linalg.lstsq(gram, b, rcond=RCOND**2)[0]
        np.testing.assert_allclose(gram @ gram_solver(gram)(b), gram @ want, rtol=1e-6, atol=1e-6)
    a[:, 5] = a[:, 4]  # singular: the pseudo-inverse over the kept directions
    gram = a.T @ a
    np.testing.assert_allclose(gram_solver(gram)(b), np.linalg.lstsq(gram, b, rcond=RCOND**2)[0], atol=1e-8)


@pytest.mark.parametrize("seed", range(3))
def test_an_era_with_more_features_than_rows_neutralises_as_numerai_tools(seed):
    """The row-space path (AA'): a neutralisation as lstsq's, whether AA' is well conditioned or not."""
    rng = np.random.default_rng(seed)
    r, f = int(rng.integers(20, 60)), int(rng.integers(70, 120))
    x = ((rng.integers(0, 5, (r, f)) - 2) / np.sqrt(2)).astype(np.float64)
    if seed == 2:
        x[1] = x[0]  # two identical rows: AA' singular, the eigendecomposition's path
    pred = np.round(x @ rng.standard_normal(f) / 10 + rng.standard_normal(r), 1)
    idx = pd.Index([f"id{i:05d}" for i in range(r)])
    feats, preds = pd.DataFrame(x, index=idx), pd.DataFrame({"p": pred}, index=idx)
    for proportion in (0.5, 1.0):
        want = neutralize(preds, feats, proportion)["p"].to_numpy()
        np.testing.assert_allclose(FeatureSpan(x).neutralize(pred, proportion), want, atol=1e-6)


def test_exposure_of_a_prediction_equal_to_one_feature():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (200, 3)).astype(np.float32)
    y = (x[:, 1] + rng.standard_normal(200)) / 10
    out = era_exposure(x[:, 1] + 1e-3 * rng.standard_normal(200), y, FeatureSpan(x))
    assert out["max_exposure"] > 0.99 and abs(out["fnc"]) < 0.1  # all signal came from feature b
    assert era_exposure(np.full(200, 0.5), y, FeatureSpan(x)) == {"fnc": pytest.approx(np.nan, nan_ok=True), "max_exposure": 0.0}


@pytest.mark.parametrize("degenerate", [True, False], ids=["rank-deficient", "full-rank"])
@pytest.mark.parametrize("seed", range(4))
def test_exposure_fnc_and_neutralisation_equal_numerai_tools(seed, degenerate):
    rng = np.random.default_rng(seed)
    r, f = int(rng.integers(60, 400)), int(rng.integers(3, 40))
    x = ((rng.integers(0, 5, (r, f)) - 2) / np.sqrt(2)).astype(np.float32)
    if degenerate:  # the eigendecomposition's path; full rank takes Cholesky's
        x[:, 0] = 0.0  # a feature constant in this era (numerai-tools' corr: NaN, skipped; collinear with the constant)
        x[:, 2] = x[:, 1]  # a duplicated feature: rank-deficient, as lstsq's rcond handles it
    pred = np.round(x[:, 1:] @ rng.standard_normal(f - 1) + rng.standard_normal(r), 1)  # ties
    y = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], r)
    idx = pd.Index([f"id{i:05d}" for i in range(r)])
    feats = pd.DataFrame(x.astype(np.float64), index=idx, columns=[f"f{j}" for j in range(f)])
    preds, target = pd.DataFrame({"p": pred}, index=idx), pd.Series(y, index=idx, name="target")
    span = FeatureSpan(x)
    got = era_exposure(pred, y, span)
    assert got["max_exposure"] == pytest.approx(max_feature_correlation(preds["p"], feats)[1], abs=1e-6)
    assert got["fnc"] == pytest.approx(float(feature_neutral_corr(preds, feats, target)["p"]), abs=1e-6)
    for proportion in (0.5, 1.0):
        want = neutralize(preds, feats, proportion)["p"].to_numpy()
        np.testing.assert_allclose(span.neutralize(pred, proportion), want, atol=1e-6)
    bins = rng.integers(0, 6, (r, f)).astype(np.int8)  # bins with the missing bin, as the run passes them
    from dynjax.data.bins import float_view_np

    np.testing.assert_allclose(neutralize_era(pred, bins, 0.5), neutralize(
        preds, pd.DataFrame(float_view_np(bins).astype(np.float64), index=idx), 0.5)["p"].to_numpy(), atol=1e-6)
    assert np.array_equal(neutralize_era(pred, bins, 0.0), pred)
