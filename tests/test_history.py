"""Covers dynjax.train.history: digests of the data a run has used, and what a resume refuses."""

import json

import numpy as np
import pytest

from dynjax.data import load_numerai
from dynjax.data.timeline import make_timeline
from dynjax.train.history import ChangedHistory, History


def _recorded(synth_dir, n_done: int, embargo: int):
    """Freshly loaded data, their timeline and walk-forward eras, and the record of the first `n_done`."""
    data = load_numerai(synth_dir)
    timeline = make_timeline(data.train, data.validation)
    predicted = np.arange(data.train.index.n_eras, timeline.n_eras)
    record = History.start(timeline)
    for k in range(n_done):
        record.add(timeline, predicted, k, embargo)
    return data, timeline, predicted, record


def test_history_refuses_changed_targets_of_resolved_eras_only(synth_dir):
    data, timeline, predicted, record = _recorded(synth_dir, 3, embargo=1)  # at the third era the first has resolved
    record = History.from_json(json.loads(json.dumps(record.to_json())))
    first = data.validation.index.names[0]
    assert list(record.targets) == [first]
    record.check(timeline, predicted)
    y = data.validation.y_NxT
    rows = data.validation.index.rows(1)  # predicted but not resolved: its targets may still change
    y[rows, 0] = np.nan
    record.check(timeline, predicted)
    rows = data.validation.index.rows(0)
    y[rows.start, 0] = 2.0  # a revised target
    with pytest.raises(ChangedHistory, match=f"the targets of era {first}, which the run has already trained on"):
        record.check(timeline, predicted)


def test_history_refuses_changed_features_other_eras_and_changed_training_data(synth_dir):
    data, timeline, predicted, record = _recorded(synth_dir, 2, embargo=4)
    data.validation.x_NxF[data.validation.index.rows(1).start, 0] ^= 1
    with pytest.raises(ChangedHistory, match=f"era {data.validation.index.names[1]}, already predicted, has different"):
        record.check(timeline, predicted)
    data.validation.x_NxF[data.validation.index.rows(1).start, 0] ^= 1
    record.check(timeline, predicted)
    with pytest.raises(ChangedHistory, match="walk-forward era 1 is"):
        record.check(timeline, predicted[1:])
    data.train.y_NxT[0, 0] = 2.0
    with pytest.raises(ChangedHistory, match="the training data differ"):
        record.check(timeline, predicted)


def test_a_checkpoint_without_a_history_record_is_checked_by_its_cursor(synth_dir):
    from dynjax.train.walk_forward import _saved_history

    data = load_numerai(synth_dir)
    timeline = make_timeline(data.train, data.validation, data.live)
    history = np.arange(data.train.index.n_eras, data.train.index.n_eras + data.validation.index.n_eras)
    # Written before records existed, by a version that walked the live era too: one era past the history.
    with pytest.raises(ChangedHistory, match=f"walked forward over {len(history) + 1} eras, but the data hold {len(history)}"):
        _saved_history({"cursor": len(history) + 1}, timeline, history)
    with pytest.warns(UserWarning, match="records no history"):
        assert _saved_history({"cursor": 2}, timeline, history).eras == []
