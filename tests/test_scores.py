"""Covers dynjax.eval.scores: per-era numerai_corr and the run summary statistics."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numerai_tools.scoring import numerai_corr

from dynjax.eval import per_era_corr, summarize, to_pandas
from dynjax.eval.scores import fast_numerai_corr


def _frame(seed=0, eras=4, rows=50):
    rng = np.random.default_rng(seed)
    n = eras * rows
    target = rng.choice([0, 0.25, 0.5, 0.75, 1.0], n)
    return pl.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "era": [f"{e:04d}" for e in range(eras) for _ in range(rows)],
        "prediction": target + rng.standard_normal(n),
        "target": target,
    })


def test_per_era_corr_matches_numerai_tools_directly():
    frame = _frame()
    scores = per_era_corr(frame, "prediction")
    for era, corr in scores.iter_rows():
        part = to_pandas(frame.filter(pl.col("era") == era))
        assert corr == pytest.approx(numerai_corr(part[["prediction"]], part["target"])["prediction"], abs=1e-12)
    assert scores.height == 4 and (scores["corr"] > 0).all()


def test_rows_without_target_are_skipped():
    frame = _frame().with_columns(pl.when(pl.col("era") == "0001").then(None).otherwise(pl.col("target")).alias("target"))
    assert per_era_corr(frame, "prediction")["era"].to_list() == ["0000", "0002", "0003"]


def test_summary_statistics():
    s = summarize([0.02, -0.01, -0.03, 0.04])
    assert s["corr_mean"] == pytest.approx(0.005)
    assert s["corr_std"] == pytest.approx(np.std([0.02, -0.01, -0.03, 0.04]))
    assert s["corr_sharpe"] == pytest.approx(0.005 / s["corr_std"])
    assert s["max_drawdown"] == pytest.approx(0.04)  # peak 0.02 -> trough -0.02
    assert s["below_zero"] == 0.5
    assert summarize([])["n_eras"] == 0


@pytest.mark.parametrize("seed", range(3))
def test_the_numpy_numerai_corr_equals_numerai_tools(seed):
    from numerai_tools.scoring import numerai_corr

    rng = np.random.default_rng(seed)
    r = int(rng.integers(5, 400))
    pred, y = np.round(rng.standard_normal(r), 1), rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], r)  # ties in both
    idx = pd.Index([f"id{i:05d}" for i in range(r)])
    want = numerai_corr(pd.DataFrame({"p": pred}, index=idx), pd.Series(y, index=idx, name="target"))["p"]
    assert fast_numerai_corr(pred, y) == pytest.approx(float(want), abs=1e-9)


def test_every_era_at_once_equals_each_era_alone():
    """`per_era_corr` scores every era in one pass: each era as `fast_numerai_corr` alone, with ties,
    a constant prediction (0), an era of one row (skipped) and targets outside [0, 1]."""
    rng = np.random.default_rng(5)
    sizes = {"a": 30, "b": 1, "c": 20, "d": 45}
    eras = np.array([e for e, n in sizes.items() for _ in range(n)])
    y = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], len(eras))
    y[eras == "d"] = rng.standard_normal(45)
    pred = np.round(y + rng.standard_normal(len(eras)), 1)
    pred[eras == "c"] = 0.5
    got = per_era_corr(pl.DataFrame({"era": eras, "prediction": pred, "target": y}), "prediction")
    assert got["era"].to_list() == ["a", "c", "d"] and got.filter(pl.col("era") == "c")["corr"].item() == 0.0
    for era in ("a", "d"):
        want = fast_numerai_corr(pred[eras == era], y[eras == era])
        assert got.filter(pl.col("era") == era)["corr"].item() == pytest.approx(want, abs=1e-12)
