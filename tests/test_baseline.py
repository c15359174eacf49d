"""Covers dynjax.eval.baseline: the ridge walk-forward learns and only sees resolved eras."""

import dataclasses

import numpy as np
import polars as pl

from dynjax.data import load_numerai
from dynjax.data.timeline import make_timeline
from dynjax.eval import per_era_corr
from dynjax.eval.baseline import ridge_walk_forward


def test_ridge_scores_and_respects_the_embargo(synth_dir):
    data = load_numerai(synth_dir)
    tl = make_timeline(data.train, data.validation)
    predicted = np.arange(data.train.index.n_eras, tl.n_eras)
    preds = ridge_walk_forward(tl, predicted, embargo=4, rows_per_era=32)
    val = data.validation
    frame = pl.DataFrame({"id": val.ids, "era": val.era_column(), "target": val.y_NxT[:, 0]}).join(preds, on="id")
    assert frame.height == val.n_rows and per_era_corr(frame, "prediction")["corr"].mean() > 0.1
    # Scrambling every validation target cannot change the first validation era's predictions.
    y = np.random.default_rng(0).permutation(val.y_NxT)
    tl2 = make_timeline(data.train, dataclasses.replace(val, y_NxT=y))
    again = ridge_walk_forward(tl2, predicted[:1], embargo=4, rows_per_era=32)
    first = preds.filter(pl.col("era") == val.index.names[0])
    np.testing.assert_allclose(again["prediction"].to_numpy(), first["prediction"].to_numpy())
