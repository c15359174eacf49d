"""Covers dynjax.data.missing: missing bin, era-median / global-mean / model imputation, float view."""

import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.data import MISSING, fit_imputer, float_view, impute_inplace, load_numerai
from dynjax.data.bins import era_medians
from dynjax.data.missing import feature_means


@pytest.fixture()
def train(synth_dir):
    return load_numerai(synth_dir).train  # fresh copy: imputation works in place


def test_bin_strategy_keeps_missing_bin(train):
    before = train.x_NxF.copy()
    impute_inplace(fit_imputer("bin", train.x_NxF), train.x_NxF, train.index)
    np.testing.assert_array_equal(train.x_NxF, before)
    assert (before == MISSING).any()


def test_era_median_fills_each_era_with_its_own_median(train):
    before = train.x_NxF.copy()
    impute_inplace(fit_imputer("era_median", train.x_NxF), train.x_NxF, train.index)
    assert not (train.x_NxF == MISSING).any()
    for e in (0, 5):
        rows = train.index.rows(e)
        block = before[rows]
        for f in range(block.shape[1]):
            seen = block[:, f][block[:, f] != MISSING]
            holes = block[:, f] == MISSING
            if holes.any():
                assert np.all(train.x_NxF[rows][holes, f] == np.round(np.median(seen) + 1e-9))


def test_era_medians_handles_all_missing_feature():
    block = np.array([[0, MISSING], [4, MISSING], [4, MISSING]], np.int8)
    assert era_medians(block).tolist() == [4, 2]


def test_global_mean_uses_the_training_means(train):
    means = feature_means(train.x_NxF)
    holes = train.x_NxF == MISSING
    impute_inplace(fit_imputer("global_mean", train.x_NxF), train.x_NxF, train.index)
    cols = np.nonzero(holes)[1]
    np.testing.assert_array_equal(train.x_NxF[holes], np.clip(np.rint(means[cols]), 0, 4))


def test_model_imputation_beats_the_mean_on_correlated_features(synth_dir):
    train = load_numerai(synth_dir).train
    truth = train.x_NxF.copy()
    rng = np.random.default_rng(0)
    hide = (rng.random(truth.shape) < 0.1) & (truth != MISSING)
    x_model, x_mean = truth.copy(), truth.copy()
    x_model[hide] = x_mean[hide] = MISSING
    impute_inplace(fit_imputer("model", x_model, n_neighbors=4), x_model, train.index)
    impute_inplace(fit_imputer("global_mean", x_mean), x_mean, train.index)
    err_model = np.abs(x_model[hide].astype(int) - truth[hide]).mean()
    err_mean = np.abs(x_mean[hide].astype(int) - truth[hide]).mean()
    assert not (x_model == MISSING).any()
    assert err_model < 0.9 * err_mean, (err_model, err_mean)


def test_float_view_is_centred_and_scaled():
    x = jnp.array([[0, 1, 2, 3, 4, MISSING]], jnp.int8)
    xf = float_view(x)
    assert xf.dtype == jnp.float32
    np.testing.assert_allclose(xf[0], [-2 / np.sqrt(2), -1 / np.sqrt(2), 0, 1 / np.sqrt(2), 2 / np.sqrt(2), 0], atol=1e-6)
    bins = jnp.tile(jnp.arange(5, dtype=jnp.int8), 100)
    assert abs(float(float_view(bins).mean())) < 1e-6 and abs(float(float_view(bins).std()) - 1) < 1e-6


def test_the_numpy_float_view_table_equals_its_formula_for_every_code():
    from dynjax.data.bins import float_view_np

    codes = np.arange(-128, 128).astype(np.int8).reshape(16, 16)
    np.testing.assert_array_equal(float_view_np(codes), float_view_np(codes.astype(np.int32)))  # the formula, bit for bit
    np.testing.assert_allclose(float_view_np(codes), np.asarray(float_view(jnp.asarray(codes))), rtol=1e-6)  # XLA rounds its own way
    assert float_view_np(codes).dtype == np.float32 and float_view_np(codes).shape == (16, 16)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown missing-value strategy 'knn'"):
        fit_imputer("knn", np.zeros((2, 2), np.int8))
