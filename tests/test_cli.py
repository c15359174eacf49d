"""Covers dynjax.cli end to end, and through it dynjax.eval.report and dynjax.train.predict."""

import json
import shutil

import numpy as np
import polars as pl
import pytest

from dynjax.cli import main
from tests.conftest import TINY_RUN as TINY_ARGS


def test_synth_command(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--n-train-eras", "4", "--n-val-eras", "2",
                 "--rows-per-era", "20", "--n-features", "6", "--active-per-regime", "2", "--noise", "0.5"]) == 0
    train = pl.read_parquet(tmp_path / "train.parquet")
    assert train["era"].n_unique() == 4 and len([c for c in train.columns if c.startswith("feature_")]) == 6
    assert json.loads((tmp_path / "truth" / "synth.json").read_text())["config"]["noise"] == 0.5
    assert "wrote synthetic" in capsys.readouterr().out


def test_walk_forward_on_embedded_default(finished_run):
    out = finished_run
    summary = json.loads((out / "data_summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["feature_set"] == "medium" and config["synth"]["n_features"] == 12
    assert summary["train"]["eras"] == 14 and summary["train"]["features"] == 6
    assert summary["oracle"]["corr_mean"] > 0
    printed = (out.parent / "stdout.txt").read_text()
    assert "oracle" in printed and "dynjax" in printed and "ridge" in printed
    # The embedded data hold a benchmark model and a meta model, so the report shows BMC and MMC.
    assert "BMC beyond synthetic_ridge: dynjax" in printed and "MMC beyond numerai_meta_model: dynjax" in printed
    assert "neutral " in printed and "neutralised (0.5 of the run's features; report only" in printed  # raw and neutralised
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"dynjax", "frozen", "ridge", "oracle", "selection", "timing", "benchmark", "bmc", "mmc"} <= set(metrics)
    assert metrics["bmc"]["reference"] == "synthetic_ridge" and metrics["bmc"]["dynjax"]["n_eras"] == 5
    assert -1 < metrics["bmc"]["corr_with_dynjax"] < 1 and metrics["mmc"]["reference"] == "numerai_meta_model"
    per_era = pl.read_csv(out / "metrics_per_era.csv")
    assert {"bmc_dynjax", "bmc_frozen", "mmc_dynjax", "corr_benchmark"} <= set(per_era.columns)
    # What Numerai pays: 0.5 x corr + 2 x MMC per era on the main target, and the embargo it followed.
    np.testing.assert_allclose(per_era["payout_dynjax"], 0.5 * per_era["corr_dynjax"] + 2 * per_era["mmc_dynjax"])
    assert metrics["payout"]["dynjax"]["mean"] == pytest.approx(per_era["payout_dynjax"].mean())
    assert abs(metrics["payout"]["dynjax"]["stake_mean"]) <= 0.05 and metrics["payout"]["mmc_multiplier"] == 2.0
    assert metrics["embargo"] == {"eras": 4, "target": "target", "why": "target resolves 20 trading days (4 eras) after its era"}
    assert "payout score (0.5 x corr + 2 x MMC" in printed and "embargo: 4 eras (target resolves" in printed
    for name in ("config.json", "predictions.parquet", "selection.parquet", "metrics_per_era.csv",
                 "metrics.jsonl", "submission.csv", "cumulative_corr.png", "importance_heatmap.png", "selected_count.png"):
        assert (out / name).is_file(), name
    preds = pl.read_parquet(out / "predictions.parquet")
    assert preds.columns == ["id", "era", "prediction"] and preds["era"].n_unique() == 5 + 1  # validation + live
    sub = pl.read_csv(out / "submission.csv")
    assert sub.columns == ["id", "prediction"] and sub["prediction"].is_between(0, 1).all()
    sel = pl.read_parquet(out / "selection.parquet")
    assert set(sel.columns) == {"era", "feature", "importance", "selected"}


def test_predict_and_evaluate_commands(finished_run, tmp_path, capsys, monkeypatch):
    from dynjax.eval import report

    out = shutil.copytree(finished_run, tmp_path / "run")
    assert main(["predict", "--run", str(out), "--data", str(out / "data" / "live.parquet"), "--out", str(tmp_path / "s.csv")]) == 0
    sub = pl.read_csv(tmp_path / "s.csv")
    assert sub.height == pl.read_parquet(out / "data" / "live.parquet").height and sub["prediction"].is_between(0, 1).all()
    (out / "metrics.json").unlink()
    ridge, skipped = report.ridge_walk_forward, []
    monkeypatch.setattr(report, "ridge_walk_forward", lambda *a, skip, **kw: skipped.append(skip) or ridge(*a, skip=skip, **kw))
    assert main(["evaluate", "--run", str(out)]) == 0
    assert (out / "metrics.json").is_file() and "ridge" in capsys.readouterr().out
    assert len(skipped[0]) == 5  # the ridge predictions of every validation era are reused; only live is fitted


def test_walk_forward_refuses_existing_run_and_resumes(finished_run, tmp_path, capsys):
    out = shutil.copytree(finished_run, tmp_path / "run")
    before = (out / "predictions.parquet").read_bytes()
    assert main(["walk-forward", "--out", str(out), *TINY_ARGS]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "predictions.parquet").read_bytes() == before  # nothing overwritten
    assert main(["walk-forward", "--out", str(out), "--resume"]) == 0


def test_bad_data_dir_and_bad_override_give_clear_errors(tmp_path, capsys):
    assert main(["walk-forward", "--out", str(tmp_path / "a"), "--data", str(tmp_path / "missing")]) == 2
    assert "data directory not found" in capsys.readouterr().err
    assert not (tmp_path / "a" / "config.json").exists()  # a corrected rerun is not refused
    assert main(["walk-forward", "--out", str(tmp_path / "b"), "data.embargo=-2"]) == 2
    assert "embargo must be >= 0" in capsys.readouterr().err


def test_bad_reference_models_and_neutralisers_fail_before_training(finished_run, tmp_path, capsys):
    data = finished_run / "data"
    assert main(["walk-forward", "--out", str(tmp_path / "a"), "--data", str(data), "--benchmarks",
                 str(tmp_path / "none.parquet"), *TINY_ARGS]) == 2
    assert "no such reference-model file" in capsys.readouterr().err and not (tmp_path / "a" / "config.json").exists()
    assert main(["walk-forward", "--out", str(tmp_path / "b"), "--data", str(data), "eval.benchmark=v52_lgbm", *TINY_ARGS]) == 2
    assert "eval.benchmark='v52_lgbm' is not a column" in capsys.readouterr().err
    assert main(["walk-forward", "--out", str(tmp_path / "c"), "--data", str(data), "eval.neutralize=0.5",
                 "eval.neutralize_features=nope", *TINY_ARGS]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "c" / "config.json").exists()


def test_neutralised_submission_and_predict_agree(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["walk-forward", "--out", str(out), *TINY_ARGS, "eval.neutralize=1.0", "eval.neutralize_features=small"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["neutral"]["proportion"] == 1.0 and "neutralised (1 of small features; submitted)" in capsys.readouterr().out
    assert metrics["neutral"]["max_exposure_mean"] < metrics["dynjax"]["max_exposure_mean"]
    assert "bmc_neutral" in pl.read_csv(out / "metrics_per_era.csv").columns
    assert main(["predict", "--run", str(out), "--data", str(out / "data" / "live.parquet"), "--out", str(tmp_path / "s.csv")]) == 0
    written, predicted = pl.read_csv(out / "submission.csv"), pl.read_csv(tmp_path / "s.csv")
    assert written.equals(predicted)


def test_a_diverging_run_stops_with_a_clear_error(tmp_path, capsys, monkeypatch):
    from dynjax.train import outputs

    def diverge(self, **record):
        raise FloatingPointError("non-finite training loss at pretrain step/era 1: nan")

    monkeypatch.setattr(outputs.MetricsLog, "write", diverge)
    assert main(["walk-forward", "--out", str(tmp_path / "run"), *TINY_ARGS]) == 2
    assert "error: non-finite training loss" in capsys.readouterr().err
