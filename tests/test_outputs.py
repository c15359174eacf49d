"""Covers dynjax.train.outputs: the prediction frame, per-era parts, the metrics log."""

import numpy as np
import polars as pl
import pytest

from dynjax.data import load_numerai
from dynjax.data.timeline import make_timeline
from dynjax.train.outputs import (
    LIVE,
    PARTS,
    MetricsLog,
    collect_parts,
    prediction_frame,
    write_part,
)


def test_prediction_frame_layout():
    frame = prediction_frame(pl.Series(["a", "b"]), "0007", np.array([0.25, 0.75], np.float32))
    assert frame.columns == ["id", "era", "prediction"] and frame["era"].to_list() == ["0007", "0007"]
    assert frame.schema["prediction"] == pl.Float64
    assert prediction_frame(["a", "b"], ["1", "2"], [0.0, 1.0])["era"].to_list() == ["1", "2"]


def test_parts_collect_into_predictions_and_selection(synth_dir, tmp_path):
    data = load_numerai(synth_dir)
    timeline = make_timeline(data.train, data.validation, data.live)
    (tmp_path / PARTS / LIVE).mkdir(parents=True)
    n_feat = len(data.train.features)
    last = timeline.n_eras - 1  # the live era
    for e, live in ((last - 3, False), (last - 2, False), (last - 1, False), (last, True)):
        split, local = timeline.era(e)
        n = int(split.index.sizes[local])
        write_part(tmp_path, timeline, e, np.linspace(0, 1, n), np.full(n_feat, 1 / n_feat), np.arange(n_feat) < 3, live=live)
    # The era before last is a left-over part (say, of a run that fell back to an older checkpoint): not collected.
    collect_parts(tmp_path, [timeline.name(last - 3), timeline.name(last - 2)])
    preds = pl.read_parquet(tmp_path / "predictions.parquet")
    sel = pl.read_parquet(tmp_path / "selection.parquet")
    assert preds["era"].unique().sort().to_list() == sorted([timeline.name(last - 3), timeline.name(last - 2), "X"])
    assert preds["id"].is_unique().all() and sel.height == 3 * n_feat and sel["selected"].sum() == 9


def test_metrics_log_writes_json_lines_and_raises_on_non_finite_loss(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    log.write(phase="walk", era="0003", **{"train/loss": np.float32(0.5), "select/n_features": 7})
    assert '"train/loss": 0.5' in (tmp_path / "m.jsonl").read_text()
    with pytest.raises(FloatingPointError, match="non-finite training loss at walk step/era 0004"):
        log.write(phase="walk", era="0004", **{"train/loss": np.float32("nan")})
