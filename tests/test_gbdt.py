"""Covers dynjax.eval.gbdt (the LightGBM yardstick): predictions of every validation row, and a
walk-forward that refits only on eras resolved across the embargo."""

import dataclasses

import numpy as np
import polars as pl
import pytest

from dynjax.data import load_numerai
from dynjax.data.bins import MISSING

lightgbm = pytest.importorskip("lightgbm")

from dynjax.eval.gbdt import float_features, lightgbm_static, lightgbm_walk_forward

SMALL = {"n_estimators": 20, "learning_rate": 0.1, "max_depth": 3, "num_leaves": 7, "colsample_bytree": 0.5}


@pytest.fixture(scope="module")
def data(synth_dir):
    return load_numerai(synth_dir)


def test_missing_bins_become_lightgbms_own_missing():
    x = np.array([[0, MISSING, 4]], np.int8)
    out = float_features(x)
    assert out.dtype == np.float32 and np.isnan(out[0, 1]) and out[0, 2] == 4.0


def test_static_predicts_every_validation_row(data):
    preds, times = lightgbm_static(data, SMALL)
    assert preds["id"].to_list() == data.validation.ids.to_list()
    assert preds["prediction"].is_finite().all() and preds["prediction"].n_unique() > 1
    assert times["fit_s"] > 0 and times["predict_s"] > 0


def test_walk_forward_never_sees_an_unresolved_target(data):
    """Refits every 2 eras with embargo 1: era 14 (the third validation era) and later move the
    model of eras 16 on, never the predictions of eras 12-15."""
    a, times = lightgbm_walk_forward(data, embargo=1, refit_eras=2, params=SMALL)
    assert times["refits"] == 3 and a["id"].to_list() == data.validation.ids.to_list()
    val = data.validation
    y = val.y_NxT.copy()
    later = np.repeat(np.arange(val.index.n_eras) >= 2, val.index.sizes)
    y[later] = np.random.default_rng(0).permutation(y[later])
    shuffled = dataclasses.replace(data, validation=dataclasses.replace(val, y_NxT=y))
    b, _ = lightgbm_walk_forward(shuffled, embargo=1, refit_eras=2, params=SMALL)
    era = pl.Series(val.era_column())
    early = era.is_in(list(val.index.names[:4])).to_numpy()
    np.testing.assert_array_equal(a["prediction"].to_numpy()[early], b["prediction"].to_numpy()[early])
    assert not np.allclose(a["prediction"].to_numpy()[~early], b["prediction"].to_numpy()[~early])
