"""Covers the weekly round: `dynjax update` (continue a run on newer data), changed history,
fast `dynjax predict` from the next-era state, and the faults a long run meets (signals,
an unwritable or full output directory), all through the CLI."""

import json
import os
import shutil
import signal

import polars as pl
import pytest

from dynjax.cli import main
from dynjax.data.rounds import earlier_round
from tests.conftest import FINISHED_ARGS

N_VAL = 5  # the validation eras of `finished_run`; the first round has 3 of them and the 4th as its live era


@pytest.fixture(scope="module")
def rounds(finished_run, tmp_path_factory):
    """The newer round (the embedded data of `finished_run`, read only) and an earlier one."""
    full = finished_run / "data"
    return full, earlier_round(full, tmp_path_factory.mktemp("rounds") / "r1", 3)


@pytest.fixture(scope="module")
def fresh(finished_run):
    """A walk-forward over the newer round's data, from scratch."""
    return finished_run


@pytest.fixture(scope="module")
def first_round(rounds, tmp_path_factory):
    """A finished walk-forward over the earlier round (copy it before changing it)."""
    out = tmp_path_factory.mktemp("first") / "run"
    assert main(["walk-forward", "--data", str(rounds[1]), "--out", str(out), *FINISHED_ARGS]) == 0
    return out


def _frame(path, *cols):
    return pl.read_parquet(path).sort(*cols)


def _snapshot(run) -> dict:
    """Every file of a run directory with its bytes (to show that nothing was lost or changed)."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_update_continues_the_run_as_a_fresh_run_over_the_new_round(rounds, fresh, first_round, tmp_path, capsys):
    run = shutil.copytree(first_round, tmp_path / "run")
    before = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert _frame(run / "predictions.parquet", "id")["era"].unique().sort().to_list() == ["0019", "0020", "0021", "X"]

    assert main(["update", "--run", str(run), "--data", str(rounds[0])]) == 0
    printed = capsys.readouterr().out
    assert "dynjax" in printed and "2 new walk-forward eras (0022..0023) after 3 done before; live era X predicted" in printed
    # Nothing done before is redone: the log keeps every record but the next era's update (era 0022's
    # now) and gains the two new eras' updates and the next era's, and Hedge's scores of the eras
    # resolved since, none scored before; no pretraining. It is the log a fresh run writes.
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    kept = [r for r in before if r.get("walked") != "next"]
    assert len(kept) < len(before) and lines[:len(kept)] == kept
    added = lines[len(kept):]
    assert [r["era"] for r in added if r["phase"] == "walk"] == ["0022", "0023", "next"]
    assert {r["phase"] for r in added} == {"walk", "hedge"}
    tags = lambda rs: [(r["phase"], r.get("era"), r.get("walked"), r.get("step")) for r in rs]
    assert tags(lines) == tags(json.loads(x) for x in (fresh / "metrics.jsonl").read_text().splitlines())
    scored_before = {r["era"] for r in kept if r["phase"] == "hedge"}
    scored_now = [r["era"] for r in added if r["phase"] == "hedge"]
    assert scored_now and not scored_before & set(scored_now) and max(scored_now) < "0023"
    # ... and predicts what a fresh run over the newer data predicts, live era included.
    for name, cols in (("predictions.parquet", ("id",)), ("selection.parquet", ("era", "feature")),
                       ("predictions_frozen.parquet", ("id",)), ("predictions_ridge.parquet", ("id",))):
        a, b = _frame(fresh / name, *cols), _frame(run / name, *cols)
        assert a.equals(b), name
    assert (fresh / "submission.csv").read_text() == (run / "submission.csv").read_text()
    assert pl.read_csv(run / "metrics_per_era.csv").height == N_VAL  # the report covers the whole history
    assert json.loads((run / "config.json").read_text())["data"]["data_dir"] == str(rounds[0])
    assert json.loads((run / "updates.jsonl").read_text())["last_era"] == "0023"


def test_changed_or_older_history_is_refused_and_nothing_is_lost(rounds, first_round, tmp_path, capsys):
    run = shutil.copytree(first_round, tmp_path / "run")
    before = _snapshot(run)
    changed = shutil.copytree(rounds[0], tmp_path / "changed")
    val = pl.read_parquet(changed / "validation.parquet")
    feature = next(c for c in val.columns if c.startswith("feature"))
    flip = pl.col("id") == val.filter(pl.col("era") == "0020")["id"][0]
    val.with_columns(pl.when(flip).then((pl.col(feature).fill_null(0) + 1) % 5).otherwise(pl.col(feature))
                     .cast(pl.Int8).alias(feature)).write_parquet(changed / "validation.parquet")
    assert main(["update", "--run", str(run), "--data", str(changed)]) == 2
    assert "era 0020, already predicted, has different ids or features" in capsys.readouterr().err

    older = earlier_round(rounds[0], tmp_path / "older", 2)
    assert main(["update", "--run", str(run), "--data", str(older)]) == 2
    assert "already predicted 3 eras (up to 0021) but the data hold 2" in capsys.readouterr().err
    assert _snapshot(run) == before


def test_predict_reads_only_the_live_file_and_reproduces_the_submission(first_round, rounds, tmp_path, monkeypatch, capsys):
    from dynjax.data import numerai

    run = shutil.copytree(first_round, tmp_path / "run")
    scanned, scan = [], numerai._scan
    monkeypatch.setattr(numerai, "_scan", lambda path: scanned.append(path.name) or scan(path))
    live = rounds[1] / "live.parquet"
    assert main(["predict", "--run", str(run), "--data", str(live), "--out", str(tmp_path / "s.csv")]) == 0
    assert set(scanned) == {"live.parquet"}  # no training or validation data
    assert (tmp_path / "s.csv").read_text() == (run / "submission.csv").read_text()

    # A live file with other feature columns is refused, naming them; "eraX" is a live label too.
    frame = pl.read_parquet(live)
    frame.drop(frame.columns[3]).write_parquet(tmp_path / "narrow.parquet")
    assert main(["predict", "--run", str(run), "--data", str(tmp_path / "narrow.parquet"), "--out", str(tmp_path / "n.csv")]) == 2
    assert f"feature columns differ from the training file: missing {frame.columns[3]}" in capsys.readouterr().err
    frame.with_columns(pl.lit("eraX").alias("era")).write_parquet(tmp_path / "legacy.parquet")
    assert main(["predict", "--run", str(run), "--data", str(tmp_path / "legacy.parquet"), "--out", str(tmp_path / "l.csv")]) == 0
    assert pl.read_csv(tmp_path / "l.csv").equals(pl.read_csv(tmp_path / "s.csv"))
    assert not (tmp_path / "n.csv").exists()


def test_sigterm_stops_after_a_checkpoint_and_resume_is_identical(rounds, fresh, tmp_path, capsys, monkeypatch):
    from dynjax.train import walk_forward as wf

    predict, sent = wf.predict_era, []

    def predict_then_terminate(run, state, e):
        if e == run.schedule.predicted[1] and not sent:  # while predicting the second walk-forward era
            sent.append(os.kill(os.getpid(), signal.SIGTERM))
        return predict(run, state, e)

    out = tmp_path / "run"
    monkeypatch.setattr(wf, "predict_era", predict_then_terminate)
    args = ["walk-forward", "--data", str(rounds[0]), "--out", str(out), *FINISHED_ARGS]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM and "stopped by SIGTERM after era 0020" in err and "resume with --resume" in err
    # Step 1 was not due (train.checkpoint_every=4); the signal's era saves whenever it comes.
    assert sorted(int(p.name) for p in (out / "checkpoints").iterdir()) == [0, 2]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored
    monkeypatch.undo()
    assert main(["walk-forward", "--out", str(out), "--resume"]) == 0
    a, b = _frame(fresh / "predictions.parquet", "id"), _frame(out / "predictions.parquet", "id")
    assert a.equals(b)


def test_sigint_during_pretraining_stops_cleanly(rounds, tmp_path, capsys, monkeypatch):
    from dynjax.train import walk_forward as wf

    step = wf.train_step
    monkeypatch.setattr(wf, "train_step", lambda *a: os.kill(os.getpid(), signal.SIGINT) or step(*a))
    assert main(["walk-forward", "--data", str(rounds[0]), "--out", str(tmp_path / "run"), *FINISHED_ARGS]) == 130
    assert "stopped by SIGINT during pretraining" in capsys.readouterr().err
    assert not any((tmp_path / "run" / "checkpoints").iterdir())


def test_unwritable_or_full_output_is_refused_before_training(first_round, rounds, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("not a directory")
    assert main(["walk-forward", "--data", str(rounds[0]), "--out", str(tmp_path / "file" / "run"), *FINISHED_ARGS]) == 2
    assert "not writable" in capsys.readouterr().err

    run = shutil.copytree(first_round, tmp_path / "run")
    before = _snapshot(run)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 1 << 10))
    assert main(["update", "--run", str(run), "--data", str(rounds[0])]) == 2
    assert "0 MiB free on its disk, but the run writes about" in capsys.readouterr().err
    assert _snapshot(run) == before
