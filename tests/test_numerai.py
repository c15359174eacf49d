"""Covers dynjax.data.numerai: loading splits as int8 by era, and every bad-input error."""

import numpy as np
import polars as pl
import pytest

from dynjax.data import MISSING, DataError, load_numerai, load_split
from dynjax.data.features import read_feature_metadata, resolve_features
from tests.conftest import write_features_json, write_split

FEATS = [f"feature_{j}" for j in range(4)]


def test_synthetic_loads_as_int8_sorted_by_era(synth_dir):
    data = load_numerai(synth_dir, "all", ("target", "target_ender_60"))
    train = data.train
    assert train.x_NxF.dtype == np.int8 and train.x_NxF.flags.c_contiguous
    assert train.y_NxT.dtype == np.float32 and train.y_NxT.shape == (train.n_rows, 2)
    assert np.all(np.diff(train.index.numbers) > 0)
    assert train.index.offsets[-1] == train.n_rows == len(train.ids)
    assert set(np.unique(train.x_NxF)) <= set(range(MISSING + 1))
    assert data.validation.index.numbers[0] == train.index.numbers[-1] + 5  # 4-era gap
    assert data.live.index.n_eras == 1 and np.isnan(data.live.y_NxT).all()


def test_values_match_plain_polars_with_nulls_as_missing(synth_dir):
    data = load_numerai(synth_dir, "small")
    raw = pl.read_parquet(synth_dir / "train.parquet")
    order = {id_: i for i, id_ in enumerate(raw["id"])}
    rows = np.array([order[i] for i in data.train.ids])
    expected = raw.select(pl.col(list(data.train.features)).fill_null(MISSING)).to_numpy()[rows]
    np.testing.assert_array_equal(data.train.x_NxF, expected)
    np.testing.assert_array_equal(data.train.era_column(), raw["era"].to_numpy()[rows])


def test_nan_target_rows_are_kept_last_in_their_era_and_not_labeled(tmp_path):
    target = [0.5, None, 0.25, 1.0, 0.0, 0.75, None, 0.5, 0.25, 0.0]
    path = write_split(tmp_path / "train.parquet", n_eras=2, rows=5, target=target)
    split = load_split(path, FEATS)
    assert split.n_rows == 10 and split.index.n_labeled.tolist() == [4, 4]
    for e in range(2):
        y = split.y_NxT[split.index.rows(e), 0]
        assert np.isfinite(y[:4]).all() and np.isnan(y[4])


def test_data_type_filter(tmp_path):
    kinds = ["validation"] * 10 + ["test"] * 5
    path = write_split(tmp_path / "validation.parquet", data_type=kinds)
    split = load_split(path, FEATS, data_type="validation")
    assert split.n_rows == 10 and split.index.names == ("0001", "0002")


def test_unsorted_file_is_sorted_and_aligned(tmp_path):
    path = write_split(tmp_path / "train.parquet")
    raw = pl.read_parquet(path).reverse()
    raw.write_parquet(path)
    split = load_split(path, FEATS)
    by_id = dict(zip(raw["id"], raw["feature_2"]))
    assert [by_id[i] for i in split.ids] == split.x_NxF[:, 2].tolist()
    assert list(split.era_column()) == sorted(raw["era"])


def test_only_requested_columns(tmp_path):
    path = write_split(tmp_path / "train.parquet")
    split = load_split(path, ["feature_3", "feature_0"])
    raw = pl.read_parquet(path)
    assert split.x_NxF.shape == (15, 2)
    assert split.x_NxF[:, 0].tolist() == raw["feature_3"].to_list()


# Bad input: every error names the file and the problem.
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"feature_1": [0.5] * 15}, r"integer bins 0..4; got feature_1 \(Float64\)"),
        ({"feature_2": pl.Series([7] + [1] * 14, dtype=pl.Int8)}, r"outside bins 0..4: feature_2 \[1..7\]"),
        ({"feature_0": pl.Series([None] * 15, dtype=pl.Int8)}, "no values at all.*feature_0"),
        ({"era": ["0001"] * 14 + ["0002"]}, "fewer than 2 rows: 0002"),
        ({"era": ["0001"] * 14 + [None]}, "empty or null"),
        ({"target": [None] * 5 + [0.5] * 10}, "fewer than 2 rows with a main target: 0001"),
        ({"target": ["a"] * 15}, r"target columns must be numeric; got target \(String\)"),
        ({"id": ["same"] * 15}, "duplicate ids: same"),
    ],
)
def test_bad_values(tmp_path, overrides, message):
    path = write_split(tmp_path / "train.parquet", **overrides)
    with pytest.raises(DataError, match=message) as err:
        load_split(path, FEATS)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("column", ["era", "id", "target"])
def test_missing_required_column(tmp_path, column):
    path = write_split(tmp_path / "train.parquet")
    pl.read_parquet(path).drop(column).write_parquet(path)
    with pytest.raises(DataError, match=f"missing required columns: {column}"):
        load_split(path, FEATS)


def test_missing_feature_column(tmp_path):
    path = write_split(tmp_path / "train.parquet", n_features=3)
    with pytest.raises(DataError, match="missing 1 requested feature columns: feature_3"):
        load_split(path, FEATS)


def test_missing_file_and_corrupt_file(tmp_path):
    with pytest.raises(DataError, match="train.parquet: file not found"):
        load_split(tmp_path / "train.parquet", FEATS)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="bad.parquet: not a readable parquet file"):
        load_split(bad, FEATS)


def test_live_without_targets_loads(tmp_path):
    path = write_split(tmp_path / "live.parquet", n_eras=1)
    pl.read_parquet(path).drop("target").write_parquet(path)
    live = load_split(path, FEATS, require_targets=False, min_era_rows=1)
    assert np.isnan(live.y_NxT).all() and live.index.n_labeled.tolist() == [0]


@pytest.mark.parametrize("label", ["X", "eraX"])
def test_numerai_live_era_label_loads_after_validation(tmp_path, label):
    data_dir = _data_dir(tmp_path)
    pl.read_parquet(data_dir / "live.parquet").with_columns(pl.lit(label).alias("era")).write_parquet(data_dir / "live.parquet")
    data = load_numerai(data_dir)
    assert data.live.index.names == (label,) and data.live.index.numbers.tolist() == [data.validation.index.numbers[-1] + 1]
    pl.read_parquet(data_dir / "validation.parquet").with_columns(pl.lit(label).alias("era")).write_parquet(
        data_dir / "validation.parquet")
    with pytest.raises(DataError, match=f"validation.parquet: era labels without a trailing era number: {label}"):
        load_numerai(data_dir)


def _data_dir(tmp_path, live_features: int = 4):
    write_features_json(tmp_path / "features.json")
    write_split(tmp_path / "train.parquet")
    write_split(tmp_path / "validation.parquet", data_type=["validation"] * 15)
    write_split(tmp_path / "live.parquet", n_eras=1, n_features=live_features, data_type=["live"] * 5)
    return tmp_path


def test_load_numerai_directory(tmp_path):
    data = load_numerai(_data_dir(tmp_path), "small")
    assert data.train.features == ("feature_0", "feature_1")
    assert data.validation.n_rows == 15 and data.live.n_rows == 5


def test_live_feature_mismatch(tmp_path):
    with pytest.raises(DataError, match=r"live.parquet: feature columns differ from train.parquet: missing feature_3"):
        load_numerai(_data_dir(tmp_path, live_features=3), "small")


def test_unknown_feature_set_and_missing_directory(tmp_path):
    with pytest.raises(DataError, match="unknown feature set 'medium'"):
        load_numerai(_data_dir(tmp_path), "medium")
    with pytest.raises(DataError, match="data directory not found"):
        load_numerai(tmp_path / "nowhere")


def test_resolve_then_load_reads_features_in_set_order(synth_dir):
    meta = read_feature_metadata(synth_dir / "features.json")
    feats = resolve_features(meta, "medium")
    split = load_split(synth_dir / "train.parquet", feats)
    assert split.features == feats and split.x_NxF.shape[1] == len(feats)
