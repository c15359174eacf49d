"""Covers dynjax.tune: purged walk-forward folds, the search space, `dynjax tune` (resume, shared
storage, best config into `dynjax walk-forward`, the bmc metric); population sweeps are in
test_population."""

import json
import os
import subprocess
import sys

import numpy as np
import optuna
import polars as pl
import pytest

from dynjax.cli import main
from dynjax.config import RunConfig, load_config, override
from dynjax.data import EraData, NumeraiData
from dynjax.data.eras import build_era_index
from dynjax.data.synth import write_synthetic
from dynjax.data.timeline import make_timeline
from dynjax.tune import apply_params, check_space, fold_data, make_folds
from dynjax.tune.study import storage_url
from tests.conftest import TINY_RUN

# The walk-forward of the CLI tests on 30 training eras: 2 folds of 3 scored eras each.
TUNE_RUN = [*[a for a in TINY_RUN if not a.startswith("selection.")], "synth.n_train_eras=30",
            "tune.folds=2", "tune.fold_eras=3", "tune.startup_trials=1"]
TUNED = [*TUNE_RUN, "tune.startup_trials=2"]  # two trials before the median pruner may prune
SPACE = {"optim.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
         "loss.sparsity_lambda": {"low": 1e-3, "high": 0.1, "log": True},
         "data.window_eras": {"choices": [2, 3]}}


def test_folds_never_score_an_era_within_the_embargo_of_one_they_train_on():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_eras, n_folds, fold_eras, embargo = int(rng.integers(8, 80)), int(rng.integers(1, 4)), int(rng.integers(2, 8)), int(rng.integers(0, 6))
        numbers = np.cumsum(rng.integers(1, 3, n_eras))  # era numbers with gaps, as in Numerai's files
        try:
            folds = make_folds(n_eras, n_folds, fold_eras)
        except ValueError:
            assert n_eras - n_folds * fold_eras < 1
            continue
        data = fold_data(NumeraiData(_split(numbers), None, None, None), folds)
        timeline = make_timeline(data.train, data.validation)  # what the fold's walk-forward runs on
        scored = np.arange(data.train.index.n_eras, timeline.n_eras)
        assert folds.scored_QxE.shape == (n_folds, fold_eras) and (np.diff(folds.scored_QxE.ravel()) == 1).all()
        assert folds.scored_QxE[-1, -1] == n_eras - 1  # the last training eras, nothing beyond
        np.testing.assert_array_equal(timeline.numbers_E[scored], numbers[folds.scored_QxE.ravel()])
        for e in scored:  # pretraining trains on eras resolved at scored[0], updates at e on those resolved at e
            trained = timeline.resolved(int(e), embargo)
            assert (timeline.numbers_E[trained] < timeline.numbers_E[e] - embargo).all()
            assert not np.isin(trained, [e]).any()


def _split(numbers: np.ndarray) -> EraData:
    n = len(numbers)
    index = build_era_index([f"{x:04d}" for x in numbers], numbers, np.ones(n, bool))
    return EraData(np.zeros((n, 2), np.int8), np.zeros((n, 1), np.float32), pl.Series([f"id{i}" for i in range(n)]),
                   index, ("feature_a", "feature_b"), ("target",), "test")


def test_too_few_eras_for_the_folds_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot hold 3 folds of 12"):
        make_folds(40, 3, 12, min_pretrain=5)


def test_the_space_keeps_only_what_the_training_eras_can_hold():
    """40 training eras, 3 folds of 8 scored eras: 16 to pretrain on, which hold a window of 8 past the
    4-era embargo but not one of 16 or 24; with early stopping the 16-era holdout holds none."""
    from dynjax.tune.objective import config_folds, folds_fit
    from dynjax.tune.space import DEFAULT_SPACE, fit_space

    data = NumeraiData(_split(np.arange(1, 41)), None, None, None)
    base = override(RunConfig(), ["tune.fold_eras=8", "data.window_eras=8"])
    space, removed = fit_space(DEFAULT_SPACE, base, lambda c: folds_fit(c, data))
    assert space["data.window_eras"] == {"choices": [8]} and removed == ["data.window_eras=16", "data.window_eras=24"]
    assert {k: v for k, v in space.items() if k != "data.window_eras"} == {k: v for k, v in DEFAULT_SPACE.items()
                                                                           if k != "data.window_eras"}
    narrow = override(base, ["data.window_eras=4"])  # the base fits: window 8 does not past an embargo of 8 eras
    with pytest.raises(ValueError, match="search space data.window_eras: no value the training eras can hold"):
        fit_space({"data.window_eras": {"choices": [8, 16]}}, override(narrow, ["data.embargo=8"]), lambda c: folds_fit(c, data))
    with pytest.raises(ValueError, match="cannot hold 3 folds of 8 scored eras and 33 eras"):  # early stopping's holdout
        config_folds(override(base, ["train.patience=2"]), data)
    steps, removed = fit_space({"data.window_eras": {"low": 4, "high": 12, "step": 4}}, base, lambda c: folds_fit(c, data))
    assert steps == {"data.window_eras": {"low": 4, "high": 8, "step": 4}} and removed == ["data.window_eras=12"]


def test_search_space_checks_paths_and_ranges():
    base = RunConfig()
    check_space(SPACE, base)
    with pytest.raises(ValueError, match="unknown config path 'optim.lr'"):
        check_space({"optim.lr": {"low": 1, "high": 2}}, base)
    with pytest.raises(ValueError, match="needs choices"):
        check_space({"model.normalizer": {"low": 1, "high": 2}}, base)
    with pytest.raises(ValueError, match="bad range"):
        check_space({"optim.learning_rate": {"low": 1e-2, "high": 1e-3}}, base)
    cfg = apply_params(base, {"optim.learning_rate": 0.005, "data.window_eras": 8})
    assert cfg.optim.learning_rate == 0.005 and cfg.data.window_eras == 8


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A 2-trial study on tiny data, then resumed to 3 trials."""
    out = tmp_path_factory.mktemp("tune")
    space = out / "space.json"
    space.write_text(json.dumps(SPACE))
    args = ["tune", "--out", str(out), "--space", str(space), *TUNED]
    assert main([*args[:5], "--n-trials", "2", *args[5:]]) == 0
    first = [t.number for t in optuna.load_study(study_name="dynjax", storage=storage_url(out, None)).trials]
    assert main([*args[:5], "--n-trials", "3", *args[5:]]) == 0
    return out, first


def test_tune_runs_resumes_and_writes_its_outputs(tuned):
    out, first_numbers = tuned
    assert first_numbers == [0, 1]
    study = optuna.load_study(study_name="dynjax", storage=storage_url(out, None))
    assert [t.number for t in study.trials] == [0, 1, 2]  # resumed: one more trial, none repeated
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)
    assert study.trials[0].user_attrs["baseline"]  # trial 0 is the base config
    table = pl.read_parquet(out / "trials.parquet")
    assert table["number"].to_list() == [0, 1, 2] and "params/optim.learning_rate" in table.columns
    assert "fold/0" in table.columns
    assert all(len(t.intermediate_values) >= 1 for t in study.trials)  # every trial reported its folds (pruning: below)
    for name in ("best_config.json", "tune_summary.json", "optimization_history.png", "param_importances.png"):
        assert (out / name).is_file(), name
    # A trial's walk-forward scored the last training eras only: the folds, never validation.
    preds = pl.read_parquet(out / "trials" / "0000" / "predictions.parquet")
    assert sorted(preds["era"].unique().to_list()) == [f"{e:04d}" for e in range(25, 31)]


def test_best_config_round_trips_into_walk_forward(tuned, tmp_path):
    out, _ = tuned
    summary = json.loads((out / "tune_summary.json").read_text())
    best = load_config(out / "best_config.json")
    assert best == apply_params(override(RunConfig(), TUNED), summary["best"]["params"])
    run = tmp_path / "run"
    assert main(["walk-forward", "--config", str(out / "best_config.json"), "--out", str(run), "--stop-after", "1"]) == 0
    assert load_config(run / "config.json") == best


def test_resuming_with_another_base_config_is_refused(tuned, capsys):
    out, _ = tuned
    assert main(["tune", "--out", str(out), "--space", str(out / "space.json"), "--n-trials", "4", *TUNED,
                 "optim.clip_norm=2.0"]) == 2
    assert "another base config" in capsys.readouterr().err


def test_two_workers_share_one_sqlite_study(tmp_path, synth_dir):
    data = write_synthetic(override(RunConfig(), TUNE_RUN).synth, tmp_path / "data")
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    out = tmp_path / "tune"
    env = dict(os.environ)  # the session's compile cache travels in it (conftest)
    cmd = [sys.executable, "-m", "dynjax.cli", "tune", "--data", str(data), "--out", str(out), "--space", str(space),
           "--n-trials", "2", *TUNE_RUN]
    workers = [subprocess.Popen([*cmd, "--worker", str(w)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for w in (0, 1)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    study = optuna.load_study(study_name="dynjax", storage=storage_url(out, None))
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers))) and 2 <= len(numbers) <= 3  # MaxTrials may let one more start
    assert all(t.state.is_finished() for t in study.trials)
    for t in study.trials:  # each trial evaluated once, by one worker, in its own directory
        assert sum(f"trial {t.number}:" in log for log in logs) == 1
        assert (out / "trials" / f"{t.number:04d}" / "config.json").is_file()


@pytest.mark.parametrize("metric", ["bmc", "payout"])
def test_tune_metric_bmc_is_the_mean_contribution_beyond_the_training_benchmark_and_payout_adds_corr(tmp_path, capsys,
                                                                                                    metric):
    """bmc: the mean BMC; payout: the mean of 0.5 x corr + 2 x that BMC (standing in for MMC)."""
    from dynjax.eval.contribution import era_contribution
    from dynjax.eval.jax_corr import era_corr

    data = write_synthetic(override(RunConfig(), TUNE_RUN).synth, tmp_path / "data")
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"optim.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}}))
    out = tmp_path / "tune"
    args = ["tune", "--data", str(data), "--space", str(space), "--n-trials", "1", *TUNE_RUN, f"tune.metric={metric}"]
    assert main([*args, "--out", str(out)]) == 0
    assert "contribution beyond synthetic_ridge" in capsys.readouterr().out
    trial = optuna.load_study(study_name="dynjax", storage=storage_url(out, None)).trials[0]
    preds = pl.read_parquet(out / "trials" / "0000" / "predictions.parquet")
    train = pl.read_parquet(data / "train.parquet", columns=["id", "era", "target"])
    bench = pl.read_parquet(data / "train_benchmark_models.parquet").select("id", "synthetic_ridge")
    scored = preds.join(train.drop("era"), on="id").join(bench, on="id")
    bmc = [era_contribution(p["prediction"].to_numpy(), p["synthetic_ridge"].to_numpy(), p["target"].to_numpy())
           for _, p in scored.sort("era").group_by("era", maintain_order=True)]
    corr = [float(era_corr(p["prediction"].to_numpy(), p["target"].to_numpy()))
            for _, p in scored.sort("era").group_by("era", maintain_order=True)]
    want = np.mean(bmc) if metric == "bmc" else np.mean(0.5 * np.array(corr) + 2 * np.array(bmc))
    assert len(bmc) == 6 and trial.value == pytest.approx(want, abs=1e-6)
    (data / "train_benchmark_models.parquet").unlink()
    assert main([*args, "--out", str(tmp_path / "again")]) == 2
    assert "no such reference-model file" in capsys.readouterr().err
