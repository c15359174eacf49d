"""Covers dynjax.train.walk_forward: kill-and-resume identity, no target leakage, checkpoints,
each with top-k selection alone, and with every mechanism of the default on (context gates, EMA,
two members with their own memories mixed by Hedge, device rows)."""

import dataclasses
import json

import numpy as np
import polars as pl
import pytest

from dynjax.config import RunConfig, override
from dynjax.data import load_numerai
from dynjax.data.eras import last_resolved_era
from dynjax.data.synth import write_synthetic
from dynjax.train.checkpoint import CheckpointError
from dynjax.train.walk_forward import walk_forward
from tests.conftest import TINY_RUN
from tests.test_run import MECHANISMS

# A top-k selection mask and none of the continual-learning mechanisms ...
CFG = override(RunConfig(), [*TINY_RUN, "model.gates=none", "loss.sparsity=none", "train.ensemble=1"])
# ... and every mechanism on, the two members of two kinds (all resolved history / the latest eras)
# mixed by Hedge weights that resolved eras move; both gated (tests/test_hedge.py opens one's gates).
EVERY_ERA = override(CFG, ["train.checkpoint_every=1"])  # a checkpoint after every walk-forward era
ALL = override(CFG, [*MECHANISMS, "selection.mode=none", "train.horizons=0,2", "model.gate_thresholds=5",
                     "train.hedge_eta=10", "data.placement=device",
                     "data.rows_per_era=40"])  # more than an era holds: padded windows


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_synthetic(CFG.synth, tmp_path_factory.mktemp("wf_data"))


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    walk_forward(CFG, load_numerai(data_dir), out)
    return out


@pytest.fixture(scope="module")
def full_run_all(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("full_all")
    walk_forward(ALL, load_numerai(data_dir), out)
    return out


def test_outputs_cover_every_predicted_era(full_run, data_dir):
    preds = pl.read_parquet(full_run / "predictions.parquet")
    val = pl.read_parquet(data_dir / "validation.parquet")
    assert set(val["id"]) <= set(preds["id"]) and preds["prediction"].is_finite().all()
    sel = pl.read_parquet(full_run / "selection.parquet")
    counts = sel.group_by("era").agg(pl.col("selected").sum())["selected"]
    assert (counts == CFG.selection.k).all()  # the top-k mask from the start


# Every mechanism on; tests/test_update.py stops (SIGTERM) and resumes the default config through the CLI.
@pytest.mark.parametrize("stop_after, which", [(1, "topk"), (2, "all")])
def test_killed_and_resumed_run_predicts_identically(request, data_dir, tmp_path, stop_after, which):
    cfg, full_run = (CFG, request.getfixturevalue("full_run")) if which == "topk" else (ALL, request.getfixturevalue("full_run_all"))
    out = tmp_path / "run"
    walk_forward(cfg, load_numerai(data_dir), out, stop_after=stop_after)  # "killed" here, as by kill -9
    assert not (out / "predictions.parquet").exists()
    # Between checkpoints (train.checkpoint_every=4): the resume walks the eras since step 0 again.
    assert sorted(int(p.name) for p in (out / "checkpoints").iterdir()) == [0]
    walk_forward(cfg, load_numerai(data_dir), out)  # resumes from the latest checkpoint (EMA params, members, Hedge, selection)
    a = pl.read_parquet(full_run / "predictions.parquet").sort("id")
    b = pl.read_parquet(out / "predictions.parquet").sort("id")
    np.testing.assert_array_equal(a["prediction"].to_numpy(), b["prediction"].to_numpy())
    sa, sb = (pl.read_parquet(p / "selection.parquet").sort("era", "feature") for p in (full_run, out))
    assert sa.equals(sb)
    # The log holds each record once, as the run never killed wrote it (the eras walked again rewound).
    logs = [[{k: v for k, v in json.loads(line).items() if k != "time"} for line in (p / "metrics.jsonl").read_text().splitlines()]
            for p in (full_run, out)]
    tag = lambda r: (r["phase"], r.get("era"), r.get("walked"), r.get("epoch"), r.get("step"))
    assert [tag(r) for r in logs[1]] == [tag(r) for r in logs[0]] and any(r["phase"] == "hedge" for r in logs[0])
    for a, b in zip(*logs):
        assert a.keys() == b.keys() and np.allclose([a[k] for k in a if isinstance(a[k], float)],
                                                    [b[k] for k in b if isinstance(b[k], float)], rtol=1e-6), tag(a)


def test_device_resident_and_host_rows_give_the_same_runs(full_run_all, data_dir, tmp_path):
    """Every mechanism on (per-member windows, context gates, Hedge): row numbers gathered on the
    device feed the model what host rows do. Predictions
    (ranks) are equal; importances and losses to float32 rounding, as the tests' codegen
    (`conftest.py`) may order a reduction over gathered rows differently."""
    out = tmp_path / "host"
    walk_forward(dataclasses.replace(ALL, data=dataclasses.replace(ALL.data, placement="host")), load_numerai(data_dir), out)
    for name in ("predictions.parquet", "predictions_frozen.parquet"):
        a, b = (pl.read_parquet(p / name).sort("id") for p in (full_run_all, out))
        assert a.equals(b), name
    sa, sb = (pl.read_parquet(p / "selection.parquet").sort("era", "feature") for p in (full_run_all, out))
    assert sa.drop("importance").equals(sb.drop("importance"))
    np.testing.assert_allclose(sa["importance"].to_numpy(), sb["importance"].to_numpy(), rtol=1e-5, atol=1e-7)
    # The train states and Hedge's scores: the whole next-era state.
    losses = [[r["train/loss"] for r in map(json.loads, (p / "metrics.jsonl").read_text().splitlines()) if "train/loss" in r]
              for p in (full_run_all, out)]
    assert len(losses[0]) > 3
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)


def test_every_mechanism_writes_a_sparse_selection(full_run_all):
    sel = pl.read_parquet(full_run_all / "selection.parquet")
    kept = sel.group_by("era").agg(pl.col("selected").sum())["selected"]
    assert (kept < ALL.synth.n_features).all()  # the context gates drop features
    assert (sel.filter(~pl.col("selected"))["importance"] == 0).all()  # exactly
    assert pl.read_parquet(full_run_all / "predictions.parquet")["prediction"].is_finite().all()


def test_unresolved_targets_cannot_change_a_prediction(tmp_path):
    # Every mechanism that reads past targets (gate evidence, Hedge's scores, the safe expert's) is on.
    # Eight validation eras, so the last ones train on resolved validation targets.
    cfg = override(ALL, ["synth.n_val_eras=8"])
    data_dir = write_synthetic(cfg.synth, tmp_path / "data")
    data = load_numerai(data_dir)
    val = data.validation
    target_era = 2  # the third validation era
    t = int(val.index.numbers[target_era])
    unresolved = np.repeat(val.index.numbers > last_resolved_era(t, cfg.data.embargo_eras), val.index.sizes)
    y = val.y_NxT.copy()
    y[unresolved] = np.random.default_rng(1).permutation(y[unresolved])  # scramble every unresolved target
    perturbed = dataclasses.replace(data, validation=dataclasses.replace(val, y_NxT=y))
    walk_forward(cfg, data, tmp_path / "clean")
    walk_forward(cfg, perturbed, tmp_path / "scrambled")

    def era_preds(run, era):
        frame = pl.read_parquet(tmp_path / run / "predictions.parquet").filter(pl.col("era") == era).sort("id")
        return frame["prediction"].to_numpy()

    for era in val.index.names[: target_era + 1]:
        np.testing.assert_array_equal(era_preds("clean", era), era_preds("scrambled", era))
    # The scramble does reach the last era, which trains on resolved validation eras: the test can fail.
    assert not np.array_equal(era_preds("clean", val.index.names[-1]), era_preds("scrambled", val.index.names[-1]))


def test_a_60_day_target_embargoes_12_eras_and_its_targets_reach_no_prediction_before_they_resolve(tmp_path, capsys):
    """`--target target_ender_60`: the run embargoes its 12-era horizon (it says so), and flipping every
    validation era's 60-day targets leaves the predictions of the 13 eras after each unchanged."""
    from dynjax.cli import main

    args = [*TINY_RUN, "synth.n_train_eras=30", "synth.n_val_eras=17"]
    assert main(["walk-forward", "--out", str(tmp_path / "clean"), "--target", "target_ender_60", *args]) == 0
    printed = capsys.readouterr().out
    assert "embargo 12 (target_ender_60 resolves 60 trading days (12 eras) after its era" in printed, printed
    cfg = override(RunConfig(), [*args, "data.targets=target_ender_60"])
    data = load_numerai(tmp_path / "clean" / "data", targets=cfg.data.targets)
    val = data.validation
    labelled = np.flatnonzero(np.isfinite(val.y_NxT[:, 0]))
    assert cfg.data.embargo_eras == 12 and len(labelled) and len(labelled) < len(val.y_NxT)  # the last 12 eras unresolved
    y = val.y_NxT.copy()
    y[labelled, 0] = 1.0 - y[labelled, 0]
    walk_forward(cfg, dataclasses.replace(data, validation=dataclasses.replace(val, y_NxT=y)), tmp_path / "flipped")

    def era_preds(run, era):
        frame = pl.read_parquet(tmp_path / run / "predictions.parquet").filter(pl.col("era") == era).sort("id")
        return frame["prediction"].to_numpy()

    first = int(val.index.numbers[0])  # its targets resolve for era first + 13: none of the 13 eras before sees them
    for era, number in zip(val.index.names, val.index.numbers):
        same = np.array_equal(era_preds("clean", era), era_preds("flipped", era))
        assert same or number > first + 12, era
    assert not same  # the last era reads the flipped eras (gate evidence, updates): the test can fail


def _garble(step_dir):
    for f in (step_dir / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(b"\x00garbage")


def test_no_readable_checkpoint_gives_a_clear_error(data_dir, tmp_path):
    out = tmp_path / "run"
    walk_forward(EVERY_ERA, load_numerai(data_dir), out, stop_after=1)
    for step in ("0", "1"):
        _garble(out / "checkpoints" / step)
    with pytest.raises(CheckpointError, match="checkpoints: no readable checkpoint .*checkpoints/1: checkpoint state unreadable"):
        walk_forward(EVERY_ERA, load_numerai(data_dir), out)
    assert (out / "checkpoints" / "1").is_dir() and any((out / "predictions_parts").iterdir())  # nothing moved or lost


def test_a_non_finite_loss_keeps_the_checkpoints_before_it_and_a_corrupt_one_falls_back(full_run, data_dir, tmp_path,
                                                                                         monkeypatch):
    from dynjax.train import outputs

    data = load_numerai(data_dir)
    bad_era = data.validation.index.names[2]
    write = outputs.MetricsLog.write

    def diverge_at(self, **record):
        if record.get("era") == bad_era:
            record["train/loss"] = float("nan")
        return write(self, **record)

    monkeypatch.setattr(outputs.MetricsLog, "write", diverge_at)
    # A run that is not resumed scores its eras in memory: prediction parts are never read back.
    monkeypatch.setattr(outputs.ResolvedScores, "read", lambda self, e: pytest.fail("read a prediction part"))
    out = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=f"non-finite training loss at walk step/era {bad_era}: nan"):
        walk_forward(EVERY_ERA, data, out)
    assert max(int(p.name) for p in (out / "checkpoints").iterdir()) == 2  # the eras before it
    monkeypatch.undo()
    # The latest kept checkpoint turns out corrupt (a half-written copy, a bad disk): the one before it resumes.
    _garble(out / "checkpoints" / "2")
    with pytest.warns(UserWarning, match="checkpoints/2: checkpoint state unreadable.*restored checkpoint 1 instead"):
        walk_forward(EVERY_ERA, load_numerai(data_dir), out)
    assert (out / "checkpoints.corrupt" / "2").is_dir()  # set aside, not deleted
    a, b = (pl.read_parquet(p / "predictions.parquet").sort("id") for p in (full_run, out))
    np.testing.assert_array_equal(a["prediction"].to_numpy(), b["prediction"].to_numpy())


def test_sliding_pretraining_windows_and_an_update_every_other_era(data_dir, tmp_path):
    """`train.pretrain_windows=sliding` (consecutive eras) and `train.update_every=2`: the walk-forward
    trains before every other era only (and before the era after the history when its turn comes)."""
    cfg = override(CFG, ["train.pretrain_windows=sliding", "train.update_every=2"])
    data = load_numerai(data_dir)
    walk_forward(cfg, data, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    names = list(data.validation.index.names)
    assert [r["era"] for r in rows if r["phase"] == "walk"] == names[0::2] + (["next"] if len(names) % 2 == 0 else [])
    assert pl.read_parquet(tmp_path / "run" / "predictions.parquet")["prediction"].is_finite().all()


def test_the_safe_expert_at_a_full_share_predicts_what_the_frozen_model_does(data_dir, tmp_path):
    """`train.frozen_shares=1`: the prediction is the members frozen after pretraining, whatever the
    updates did: the walk-forward's predictions equal the frozen model's to the bit."""
    cfg = override(ALL, ["train.frozen_shares=1"])
    walk_forward(cfg, load_numerai(data_dir), tmp_path)
    walk, frozen = (pl.read_parquet(tmp_path / n).sort("id") for n in ("predictions.parquet", "predictions_frozen.parquet"))
    np.testing.assert_array_equal(walk["prediction"].to_numpy(), frozen["prediction"].to_numpy())
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["floor/frozen_share_0"] for r in log if r["phase"] == "walk"} == {1.0}


def test_nothing_compiles_after_the_first_walk_forward_era(tmp_path):
    """Every mechanism on: the eras scored after the embargo, the next era's update and the live and
    frozen predictions reuse what the first era compiled (host values go to the device as they are).
    Eras on both sides of 32 rows, as Numerai's eras are of a power of two: every era's corr
    (`era_corr`) is padded to the run's one length."""
    from benchmarks.common import CompileCounter

    cfg = override(ALL, ["synth.rows_per_era=28"])
    data = load_numerai(write_synthetic(cfg.synth, tmp_path / "data"))
    sizes = [data.validation.index.labeled_rows(i).stop - data.validation.index.labeled_rows(i).start
             for i in range(data.validation.index.n_eras)]
    assert min(sizes) <= 32 < max(sizes), sizes

    def on_era(k, _e, _pred):
        if k == 0:
            compiles.count = 0

    with CompileCounter() as compiles:
        walk_forward(cfg, data, tmp_path / "run", on_era=on_era)
    assert compiles.count == 0
