"""Covers dynjax.ensembles and dynjax.eval.ensemble: target members and their embargo, per-era rank
averaging against a hand computation, and `dynjax ensemble` end to end."""

import json

import numpy as np
import polars as pl
import pytest

from dynjax.cli import main
from dynjax.config import RunConfig, load_config, override
from dynjax.ensembles import target_members
from dynjax.eval.ensemble import rank_average, score_members
from tests.conftest import TINY_RUN


def test_rank_average_matches_a_hand_computation():
    ids = ["a", "b", "c", "d", "e"]
    eras = ["0001", "0001", "0001", "0002", "0002"]
    one = pl.DataFrame({"id": ids, "era": eras, "prediction": [0.1, 0.5, 0.5, 3.0, -1.0]})
    two = pl.DataFrame({"id": ids[::-1], "era": eras[::-1], "prediction": [9.0, 8.0, 1.0, 2.0, 3.0]})  # other row order
    got = rank_average({"one": one, "two": two}).sort("id")
    # Era 0001 (n=3): one ranks a=1, b=c=2.5 -> (r-0.5)/3 = 1/6, 2/3, 2/3; two holds c=1, b=2, a=3 -> 1/6, 1/2, 5/6.
    # Era 0002 (n=2): one ranks e=1, d=2 -> 1/4, 3/4; two holds e=9 > d=8 -> 3/4, 1/4.
    expected = {"a": (1 / 6 + 5 / 6) / 2, "b": (2 / 3 + 1 / 2) / 2, "c": (2 / 3 + 1 / 6) / 2, "d": 0.5, "e": 0.5}
    np.testing.assert_allclose(got["prediction"].to_numpy(), [expected[i] for i in got["id"]])
    assert got["era"].to_list() == ["0001", "0001", "0001", "0002", "0002"]


def test_members_must_predict_the_same_rows():
    one = pl.DataFrame({"id": ["a", "b"], "era": ["1", "1"], "prediction": [0.1, 0.2]})
    with pytest.raises(ValueError, match="'two' predicts other rows"):
        rank_average({"one": one, "two": one.head(1)})


def test_target_members_get_the_embargo_of_their_horizon():
    members = target_members(RunConfig(), ["target", "target_ender_60", "target_jasper_20"])
    assert members["target_ender_60"].data.targets == ("target_ender_60",)
    assert [m.data.embargo_eras for m in members.values()] == [4, 12, 4]
    longer = target_members(override(RunConfig(), ["data.embargo=6"]), ["target", "target_jasper_20"])
    assert [m.data.embargo_eras for m in longer.values()] == [6, 6]
    with pytest.raises(ValueError, match="data.embargo=6 is shorter than the main target target_ender_60's horizon of 12"):
        target_members(override(RunConfig(), ["data.embargo=6"]), ["target_ender_60"])


def test_target_ensemble_command(tmp_path, capsys):
    out = tmp_path / "ens"
    args = ["ensemble", "--out", str(out), "--targets", "target,target_jasper_20", *TINY_RUN, "train.ensemble=1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "target_jasper_20" in printed and "ensemble" in printed
    report = json.loads((out / "ensemble.json").read_text())
    assert set(report["scores"]) == {"target", "target_jasper_20", "ensemble"}
    # The embedded data's benchmark and meta model: every member's and the ensemble's BMC and MMC.
    assert report["references"] == {"bmc": "synthetic_ridge", "mmc": "numerai_meta_model"}
    assert all(np.isfinite(m["bmc_mean"]) and np.isfinite(m["mmc_mean"]) for m in report["scores"].values())
    assert "BMC: contribution beyond synthetic_ridge" in printed
    members = {n: pl.read_parquet(out / "members" / n / "predictions.parquet") for n in ("target", "target_jasper_20")}
    ensemble = pl.read_parquet(out / "predictions.parquet")
    np.testing.assert_allclose(ensemble.sort("id")["prediction"].to_numpy(),
                               rank_average(members).sort("id")["prediction"].to_numpy())
    cfg = load_config(out / "members" / "target_jasper_20" / "config.json")
    assert cfg.data.targets == ("target_jasper_20",) and cfg == override(RunConfig(), [
        *TINY_RUN, "train.ensemble=1", "data.targets=target_jasper_20", f"data.data_dir={out.resolve() / 'data'}"])
    truth = pl.read_parquet(out / "data" / "validation.parquet", columns=["id", "era", "target"])
    summary, _ = score_members(truth, {"ensemble": ensemble})
    assert summary["ensemble"]["corr_mean"] == pytest.approx(report["scores"]["ensemble"]["corr_mean"])
    # Finished members are reused, not retrained.
    stamp = (out / "members" / "target" / "metrics.json").stat().st_mtime_ns
    assert main(args) == 0 and (out / "members" / "target" / "metrics.json").stat().st_mtime_ns == stamp


def test_ensemble_needs_exactly_one_kind_of_member(tmp_path, capsys):
    assert main(["ensemble", "--out", str(tmp_path), "--targets", "target", "--seeds", "0,1"]) == 2
    assert "exactly one of" in capsys.readouterr().err
