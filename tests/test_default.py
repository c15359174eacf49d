"""Covers the default config as shipped: `RunConfig()` with only its sizes shrunk runs end to end
through the CLI (a killed walk-forward resumed, the weekly update equal to a fresh run, export and
predict) and learns the signal of a small synthetic set (a skill smoke test with wide bands)."""

import json
import pickle
import shutil

import numpy as np
import polars as pl
import pytest

from dynjax.cli import main
from dynjax.config import RunConfig, load_config, override
from dynjax.data.rounds import earlier_round
from tests.test_export import check_upload, export_and_predict

# Sizes only: the data (a smaller, less noisy draw of the default setting), the windows, the rows
# per era, the holdout and the predict chunk, the model's width. Every mechanism stays as shipped.
SIZES = ["synth.n_train_eras=40", "synth.n_val_eras=10", "synth.rows_per_era=200", "synth.n_features=16",
         "synth.n_factors=4", "synth.active_per_regime=4", "synth.regime_eras=10", "synth.noise=1.5",
         "data.window_eras=4", "data.rows_per_era=128", "train.holdout_eras=4", "train.predict_chunk=256",
         "model.d_model=8", "model.n_heads=2"]
SHIPPED = override(RunConfig(), SIZES)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> pl.DataFrame:
    """A walk-forward of the shrunk default over the whole data, uninterrupted."""
    out = tmp_path_factory.mktemp("default") / "run"
    assert main(["walk-forward", "--out", str(out), *SIZES]) == 0
    return out


def test_the_default_as_shipped_runs_end_to_end_and_learns(fresh):
    assert load_config(fresh / "config.json") == SHIPPED  # nothing but the sizes differs from RunConfig()
    metrics = json.loads((fresh / "metrics.json").read_text())
    oracle, walk = metrics["oracle"]["corr_mean"], metrics["dynjax"]["corr_mean"]
    # Skill, with wide bands: measured 0.160 against the oracle's 0.506 (frozen 0.227, ridge 0.153).
    assert walk > 0.05 and walk > 0.15 * oracle and metrics["frozen"]["corr_mean"] > 0.05, metrics
    assert metrics["members"]["updates"] == SHIPPED.synth.n_val_eras + 1 and len(metrics["members"]["weight_mean"]) == 2
    assert 0 <= metrics["members"]["frozen_share_mean"] <= 1, metrics["members"]
    # What Numerai pays, for the walk-forward and for each member kind and their mix, scored out of sample.
    scores = metrics["members"]["scores"]
    assert list(scores) == ["all eras, dense", "latest 16 eras, gated at z 5", "equal mix"], scores
    assert all(s["n_eras"] > 0 and 0 <= s["below_zero"] <= 1 and s["max_drawdown"] >= 0 for s in scores.values())
    assert 0 <= metrics["dynjax"]["below_zero"] <= 1
    preds = pl.read_parquet(fresh / "predictions.parquet")
    assert preds["prediction"].is_finite().all() and preds["era"].n_unique() == SHIPPED.synth.n_val_eras + 1


def test_a_killed_default_run_resumes_and_updates_into_the_fresh_run(fresh, tmp_path):
    """The earlier round (8 of the 10 validation eras), killed after 2 eras and resumed, then updated
    with the whole data: the predictions of a fresh run, to the bit."""
    first = earlier_round(fresh / "data", tmp_path / "r1", SHIPPED.synth.n_val_eras - 2)
    run = tmp_path / "run"
    args = ["--data", str(first), "--out", str(run), *SIZES]
    assert main(["walk-forward", *args, "--stop-after", "2"]) == 0 and not (run / "predictions.parquet").exists()
    assert main(["walk-forward", *args, "--resume"]) == 0
    assert main(["update", "--run", str(run), "--data", str(fresh / "data")]) == 0
    for name in ("predictions.parquet", "predictions_frozen.parquet"):
        a, b = (pl.read_parquet(d / name).sort("id") for d in (fresh, run))
        np.testing.assert_array_equal(a["prediction"].to_numpy(), b["prediction"].to_numpy(), err_msg=name)
    assert (fresh / "submission.csv").read_text() == (run / "submission.csv").read_text()


def test_the_default_exports_a_pickle_that_predicts_what_dynjax_predict_writes(fresh, tmp_path):
    run = shutil.copytree(fresh, tmp_path / "run")
    pkl, live, sub = export_and_predict(run, tmp_path)
    model = pickle.loads(pkl.read_bytes())
    check_upload(model(live), live, sub)
    assert model.weight_M.shape == (4,) and model.info["embargo"] == 4  # two members, then their frozen copies
    np.testing.assert_allclose(model.weight_M.sum(), 1.0)
