"""Covers dynjax.data.windows: era-window sampling, padding masks, determinism, prediction chunks."""

import numpy as np
import pytest

from dynjax.data import (
    era_chunks,
    load_numerai,
    load_split,
    sample_window,
    sliding_windows,
    window_rng,
)
from tests.conftest import write_split

FEATS = [f"feature_{j}" for j in range(4)]


@pytest.fixture(scope="module")
def train(synth_dir):
    return load_numerai(synth_dir).train


def test_shapes_and_dtypes(train):
    batch = sample_window(train, np.arange(5), 16, window_rng(0, 1))
    assert batch.x_WxRxF.shape == (5, 16, train.x_NxF.shape[1]) and batch.x_WxRxF.dtype == np.int8
    assert batch.y_WxR.shape == (5, 16) and batch.y_WxR.dtype == np.float32
    assert batch.mask_WxR.all() and np.isfinite(batch.y_WxR).all()
    assert batch.context is None and batch.rows_WxR is None  # optional fields stay empty


def test_rows_come_from_their_own_era_without_repeats(train):
    batch = sample_window(train, np.array([3, 7]), 16, window_rng(0, 2))
    for i, e in enumerate([3, 7]):
        era_x = train.x_NxF[train.index.labeled_rows(e)]
        matches = [np.flatnonzero((era_x == row).all(axis=1)) for row in batch.x_WxRxF[i]]
        assert all(len(m) == 1 for m in matches)  # each sampled row is one row of its era (they are distinct)
        assert len({int(m[0]) for m in matches}) == len(matches)  # and none is drawn twice


def test_small_eras_are_padded_and_masked(tmp_path):
    target = [0.5, 0.25, None, 1.0, 0.0] * 3
    split = load_split(write_split(tmp_path / "t.parquet", target=target), FEATS)
    batch = sample_window(split, np.arange(3), 8, window_rng(0, 0))
    assert batch.mask_WxR.sum(axis=1).tolist() == [4, 4, 4]  # only labeled rows are sampled
    assert (batch.y_WxR[~batch.mask_WxR] == 0).all()
    assert np.isfinite(batch.y_WxR).all()


def test_same_seed_and_step_resample_identically(train):
    windows = sliding_windows(np.arange(train.index.n_eras), 4)
    a = sample_window(train, windows[2], 8, window_rng(7, 2))
    b = sample_window(train, windows[2], 8, window_rng(7, 2))
    c = sample_window(train, windows[2], 8, window_rng(7, 3))
    np.testing.assert_array_equal(a.x_WxRxF, b.x_WxRxF)
    assert not np.array_equal(a.x_WxRxF, c.x_WxRxF)


def test_one_stream_per_era_draws_each_eras_rows_independently_of_the_window(train):
    """Replayed eras get their own stream, so the same era shows the same rows in any window."""
    from dynjax.data.windows import sample_eras

    a = sample_eras([(train, 3), (train, 5)], 8, [window_rng(0, 1), window_rng(9, 5)])
    b = sample_eras([(train, 4), (train, 5)], 8, [window_rng(0, 2), window_rng(9, 5)])
    np.testing.assert_array_equal(a.x_WxRxF[1], b.x_WxRxF[1])
    with pytest.raises(ValueError):
        sample_eras([(train, 3), (train, 5)], 8, [window_rng(0, 1)])  # one stream short


def test_era_chunks_cover_the_era_once_with_fixed_shape(train):
    seen = []
    for x_RxF, mask_R, rows in era_chunks(train, 2, 16):
        assert x_RxF.shape == (16, train.x_NxF.shape[1])
        np.testing.assert_array_equal(x_RxF[mask_R], train.x_NxF[rows])
        seen.extend(range(rows.start, rows.stop))
    era = train.index.rows(2)
    assert seen == list(range(era.start, era.stop))
