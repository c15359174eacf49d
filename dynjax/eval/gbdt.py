"""The LightGBM yardstick: Numerai's example model, trained once or refit as eras resolve.

A yardstick, never a part of dynjax's model: the figures dynjax's default config must beat on
every synthetic setting. LightGBM is the optional `bench` extra (`pip install -e '.[bench]'`).

- static: fit once on the training eras, predict every validation era (Numerai's example);
- walk-forward: refit from scratch on every era resolved at that time (training eras plus the
  validation eras up to t - 1 - embargo) every `refit_eras` eras, predicting the eras between.
"""

import time

import numpy as np
import polars as pl

from dynjax.data.bins import MISSING
from dynjax.data.numerai import EraData, NumeraiData
from dynjax.data.timeline import make_timeline
from dynjax.eval.scores import prediction_frame

# Numerai's example model parameters (numerai/example-scripts).
LGBM_PARAMS = {"n_estimators": 2000, "learning_rate": 0.01, "max_depth": 5, "num_leaves": 31, "colsample_bytree": 0.1}
REFIT_ERAS = 12  # walk-forward: refit every quarter of weekly eras


def float_features(x_NxF: np.ndarray) -> np.ndarray:
    """LightGBM's input: the bins as float32, the missing bin as NaN (LightGBM's own missing)."""
    x = x_NxF.astype(np.float32)
    x[x_NxF == MISSING] = np.nan
    return x


def lightgbm_static(data: NumeraiData, params: dict | None = None, seed: int = 0) -> tuple[pl.DataFrame, dict]:
    """Validation predictions of one fit on the training eras, and `{"fit_s", "predict_s"}`."""
    start = time.perf_counter()
    model = _fit([data.train], [np.arange(data.train.index.n_eras)], params, seed)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    val = data.validation
    pred = model.predict(float_features(val.x_NxF))
    frame = prediction_frame(val.ids, val.era_column(), pred)
    return frame, {"fit_s": fit_s, "predict_s": time.perf_counter() - start}


def lightgbm_walk_forward(data: NumeraiData, embargo: int, refit_eras: int = REFIT_ERAS, params: dict | None = None,
                          seed: int = 0) -> tuple[pl.DataFrame, dict]:
    """Validation predictions of LightGBM refit on all resolved eras every `refit_eras` eras."""
    timeline = make_timeline(data.train, data.validation)
    predicted = np.arange(data.train.index.n_eras, timeline.n_eras)
    frames, fit_s, predict_s, model = [], 0.0, 0.0, None
    for k, e in enumerate(predicted):
        if k % refit_eras == 0:
            start = time.perf_counter()
            resolved = timeline.resolved(int(e), embargo)
            per_split = [resolved[timeline.split_E[resolved] == i] for i in range(len(timeline.splits))]
            model = _fit(list(timeline.splits), [timeline.local_E[p] for p in per_split], params, seed)
            fit_s += time.perf_counter() - start
        start = time.perf_counter()
        split, local = timeline.era(int(e))
        rows = split.index.rows(local)
        pred = model.predict(float_features(split.x_NxF[rows]))
        frames.append(prediction_frame(split.ids[rows.start:rows.stop], timeline.name(int(e)), pred))
        predict_s += time.perf_counter() - start
    return pl.concat(frames), {"fit_s": fit_s, "predict_s": predict_s, "refits": -(-len(predicted) // refit_eras)}


def _fit(splits: list[EraData], eras: list[np.ndarray], params: dict | None, seed: int):
    """LightGBM on the labelled rows of the given eras of each split."""
    import lightgbm

    xs, ys = [], []
    for split, local in zip(splits, eras):
        for e in local:
            rows = split.index.labeled_rows(int(e))
            xs.append(split.x_NxF[rows])
            ys.append(split.y_NxT[rows, 0])
    model = lightgbm.LGBMRegressor(**(params or LGBM_PARAMS), random_state=seed, verbose=-1)
    return model.fit(float_features(np.concatenate(xs)), np.concatenate(ys))
