"""BMC / MMC and neutralisation: numerai-tools' figures, reference files and their errors."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numerai_tools.scoring import correlation_contribution, max_feature_correlation, neutralize

from dynjax.data import DataError
from dynjax.data.bins import MISSING, float_view_np
from dynjax.data.references import benchmark_column, read_reference
from dynjax.eval.contribution import contribution_per_era, era_contribution
from dynjax.eval.neutral import neutralize_era
from dynjax.upload.live import neutralize as live_neutralize


def era_frames(rng, n_eras=3, rows=50):
    ids = [f"i{k}" for k in range(n_eras * rows)]
    eras = [f"{e:04d}" for e in range(n_eras) for _ in range(rows)]
    y = rng.integers(0, 5, len(ids)) / 4
    ref = y + rng.normal(0, 1, len(ids))
    pred = y + rng.normal(0, 1, len(ids))
    truth = pl.DataFrame({"id": ids, "era": eras, "target": y})
    return truth, pl.DataFrame({"id": ids, "prediction": pred}), pl.DataFrame({"id": ids, "reference": ref})


def test_contribution_per_era_is_numerai_tools_correlation_contribution():
    truth, preds, ref = era_frames(np.random.default_rng(0))
    const = preds.with_columns(pl.lit(0.5).alias("prediction"))
    got = contribution_per_era(truth, {"m": preds, "flat": const}, ref, "bmc")
    assert got.columns == ["era", "bmc_m", "bmc_flat", "bmc_corr_with_m", "bmc_corr_with_flat"] and got.height == 3
    era = truth.join(preds, on="id").join(ref, on="id").filter(pl.col("era") == "0001")
    pdf = pd.DataFrame({c: era[c].to_numpy() for c in era.columns}).set_index("id")
    want = correlation_contribution(pdf[["prediction"]], pdf["reference"], pdf["target"])["prediction"]
    row = got.filter(pl.col("era") == "0001")
    assert row["bmc_m"].item() == pytest.approx(want, abs=1e-9) and row["bmc_flat"].item() == 0.0
    assert row["bmc_corr_with_m"].item() == pytest.approx(pdf["reference"].rank().corr(pdf["prediction"].rank()), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_the_numpy_contribution_equals_numerai_tools_with_ties_and_other_targets(seed):
    """`era_contribution` (the report's and the tuner's BMC / MMC) against numerai-tools'
    `correlation_contribution`: ties in both rankings, targets in bins and targets outside [0, 1]."""
    rng = np.random.default_rng(seed)
    r = int(rng.integers(20, 500))
    pred, ref = np.round(rng.standard_normal(r), 1), np.round(rng.standard_normal(r), 1)
    for y in (rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], r), rng.standard_normal(r)):
        idx = pd.Index([f"i{k:04d}" for k in range(r)])
        want = correlation_contribution(pd.DataFrame({"p": pred}, index=idx), pd.Series(ref, index=idx),
                                        pd.Series(y, index=idx))["p"]
        assert era_contribution(pred, ref, y) == pytest.approx(float(want), abs=1e-9)


def test_neutralising_cuts_exposure_and_the_live_models_numpy_form_equals_numerai_tools():
    rng = np.random.default_rng(1)
    x_RxF = rng.integers(0, 5, (200, 6)).astype(np.int8)
    x_RxF[::17, 2] = MISSING
    pred = float_view_np(x_RxF) @ np.array([1.0, 0.5, 0, 0, 0, 0]) + rng.normal(0, 0.5, 200)
    feats = pd.DataFrame(float_view_np(x_RxF).astype(np.float64), columns=[f"f{j}" for j in range(6)])
    half = neutralize_era(pred, x_RxF, 0.5)
    full = neutralize_era(pred, x_RxF, 1.0)
    want = neutralize(pd.DataFrame({"p": pred}), feats, 0.5)["p"].to_numpy()
    np.testing.assert_allclose(half, want, atol=1e-12)
    np.testing.assert_allclose(live_neutralize(pred, x_RxF, 0.5), want, atol=1e-9)
    exposure = lambda p: max_feature_correlation(pd.Series(p), feats)[1]
    assert exposure(full) < 1e-6 < exposure(half) < exposure(pred)
    assert np.array_equal(neutralize_era(pred, x_RxF, 0.0), pred)


def test_reference_files_are_read_and_their_problems_named(tmp_path):
    frame = pl.DataFrame({"id": ["a", "b"], "era": ["1", "1"], "v52_ridge": [0.1, 0.2], "v52_lgbm_ender20": [0.3, 0.4]})
    frame.write_parquet(tmp_path / "b.parquet")
    assert read_reference(tmp_path / "b.parquet")[0] == "v52_lgbm_ender20"  # the first *lgbm* column
    column, ref = read_reference(tmp_path / "b.parquet", "v52_ridge")
    assert column == "v52_ridge" and ref.columns == ["id", "reference"] and ref["reference"].to_list() == [0.1, 0.2]
    assert benchmark_column(["id", "era", "x", "y"]) == "x"
    with pytest.raises(DataError, match="eval.benchmark='nope' is not a column .* v52_ridge"):
        read_reference(tmp_path / "b.parquet", "nope")
    with pytest.raises(DataError, match="no such reference-model file"):
        read_reference(tmp_path / "missing.parquet")
    frame.drop("id").write_parquet(tmp_path / "noid.parquet")
    with pytest.raises(DataError, match="no id column"):
        read_reference(tmp_path / "noid.parquet")
    frame.select("id", "era").write_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataError, match="no benchmark model column"):
        read_reference(tmp_path / "empty.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="unreadable parquet"):
        read_reference(tmp_path / "bad.parquet")


def test_every_era_at_once_equals_each_era_alone():
    """The vectorised `contribution_per_era` against `era_contribution` and the rank corr era by era:
    ties, targets outside [0, 1] in one era, a constant source in one, and the eras it skips
    (fewer than 3 rows, a constant reference)."""
    rng = np.random.default_rng(3)
    sizes = {"a": 40, "b": 2, "c": 25, "d": 30, "e": 60}
    eras = [e for e, n in sizes.items() for _ in range(n)]
    ids = [f"i{k}" for k in range(len(eras))]
    y = rng.integers(0, 5, len(ids)) / 4
    y[np.array(eras) == "e"] = rng.standard_normal(60)
    ref = np.round(rng.standard_normal(len(ids)), 1)
    ref[np.array(eras) == "d"] = 0.3
    pred = np.round(y + rng.standard_normal(len(ids)), 1)
    flat = np.where(np.array(eras) == "c", 0.5, pred)
    truth = pl.DataFrame({"id": ids, "era": eras, "target": y})
    # "target" as a source's name: a target ensemble's members are named by their targets
    sources = {"target": pl.DataFrame({"id": ids, "prediction": pred}), "flat": pl.DataFrame({"id": ids, "prediction": flat})}
    got = contribution_per_era(truth, sources, pl.DataFrame({"id": ids, "reference": ref}), "mmc")
    assert got["era"].to_list() == ["a", "c", "e"]
    for era in got["era"]:
        rows = np.array(eras) == era
        for name, p in (("target", pred), ("flat", flat)):
            want = era_contribution(p[rows], ref[rows], y[rows])
            assert got.filter(pl.col("era") == era)[f"mmc_{name}"].item() == pytest.approx(want, abs=1e-12)
        want_rc = pd.Series(ref[rows]).rank().corr(pd.Series(pred[rows]).rank())
        assert got.filter(pl.col("era") == era)["mmc_corr_with_target"].item() == pytest.approx(want_rc, abs=1e-12)
    assert got.filter(pl.col("era") == "c")["mmc_flat"].item() == 0.0
