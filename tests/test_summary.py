"""Covers dynjax.data.summary: split descriptions and the walk-forward embargo schedule."""

from dynjax.data import load_numerai
from dynjax.data.summary import describe
from tests.conftest import TINY


def test_describe_counts_and_schedule(synth_dir):
    data = load_numerai(synth_dir)
    summary = describe(data, embargo=4)
    assert summary["train"]["rows"] == data.train.n_rows and summary["train"]["eras"] == TINY.n_train_eras
    assert 0.03 < summary["train"]["missing_rate"] < 0.07
    sched = summary["schedule"]
    assert sched["predicted_eras"] == TINY.n_val_eras
    # First validation era = 12 + 4 + 1 = 17: targets up to era 12 are known, all of train.
    assert sched["last_resolved_at_first"] == 12 and sched["resolved_eras_at_first"] == TINY.n_train_eras
    assert sched["resolved_eras_at_last"] == TINY.n_train_eras + TINY.n_val_eras - 5
