"""Covers dynjax.data.eras: era order, the era index, the embargo rule, sliding windows."""

import numpy as np
import polars as pl
import pytest

from dynjax.data import DataError, last_resolved_era, resolved_eras, sliding_windows
from dynjax.data.eras import build_era_index, era_numbers


def test_era_numbers_sort_numerically_not_lexically():
    numbers = era_numbers(pl.Series(["era9", "era10", "0002"]), "f")
    assert numbers.tolist() == [9, 10, 2]


def test_integer_era_column_is_accepted():
    assert era_numbers(pl.Series([3, 1]), "f").tolist() == [3, 1]


@pytest.mark.parametrize("values, message", [(["0001", None], "empty or null"), (["0001", ""], "empty or null"),
                                             (["0001", "X"], "without a trailing era number: X")])
def test_bad_era_labels(values, message):
    with pytest.raises(DataError, match=message):
        era_numbers(pl.Series(values), "train.parquet")


@pytest.mark.parametrize("label", ["X", "eraX"])
def test_a_live_era_without_a_number_is_placed_after_the_last_era(label):
    assert era_numbers(pl.Series([label, label]), "live.parquet", live_after=57).tolist() == [58, 58]
    assert era_numbers(pl.Series(["0060", label]), "live.parquet", live_after=57).tolist() == [60, 61]
    with pytest.raises(DataError, match="one era without a number, got 2: X, Y"):
        era_numbers(pl.Series(["X", "Y"]), "live.parquet", live_after=57)


def test_index_offsets_and_labeled_counts():
    numbers = np.array([1, 1, 1, 4, 4, 7])
    labeled = np.array([True, True, False, True, False, True])
    idx = build_era_index(["0001"] * 3 + ["0004"] * 2 + ["0007"], numbers, labeled)
    assert idx.names == ("0001", "0004", "0007")
    assert idx.offsets.tolist() == [0, 3, 5, 6]
    assert idx.n_labeled.tolist() == [2, 1, 1]
    assert idx.rows(1) == slice(3, 5) and idx.labeled_rows(1) == slice(3, 4)
    assert idx.position("0004") == 1 and idx.position(7) == 2
    with pytest.raises(KeyError):
        idx.position(5)


def test_embargo_rule():
    # Era 10 with the default embargo of 4 may use targets of eras <= 5 only.
    assert last_resolved_era(10, 4) == 5
    mask = resolved_eras(np.arange(1, 11), 10, 4)
    assert mask.tolist() == [True] * 5 + [False] * 5
    assert resolved_eras(np.arange(1, 11), 10, 0).sum() == 9  # never the predicted era itself
    with pytest.raises(ValueError, match="embargo"):
        last_resolved_era(10, -1)


def test_sliding_windows():
    w = sliding_windows(np.arange(10, 16), window=3, stride=2)
    assert w.tolist() == [[10, 11, 12], [12, 13, 14]]
    assert sliding_windows(np.arange(2), window=3).shape == (0, 3)
    with pytest.raises(ValueError):
        sliding_windows(np.arange(5), window=0)
