"""Covers dynjax.data.features: reading features.json and resolving feature sets."""

import json

import pytest

from dynjax.data import DataError, read_feature_metadata, resolve_features
from tests.conftest import write_features_json


def test_reads_sets_and_targets(tmp_path):
    meta = read_feature_metadata(write_features_json(tmp_path / "features.json"))
    assert meta.feature_sets["small"] == ("feature_0", "feature_1")
    assert meta.targets == ("target",)


def test_resolves_set_name_and_explicit_list(tmp_path):
    meta = read_feature_metadata(write_features_json(tmp_path / "features.json"))
    assert resolve_features(meta, "all") == ("feature_0", "feature_1", "feature_2", "feature_3")
    assert resolve_features(meta, ["feature_3", "feature_1"]) == ("feature_3", "feature_1")


def test_unknown_set_names_the_set_and_the_known_ones(tmp_path):
    meta = read_feature_metadata(write_features_json(tmp_path / "features.json"))
    with pytest.raises(DataError, match=r"unknown feature set 'medium'; known sets: all, small"):
        resolve_features(meta, "medium")


def test_unknown_feature_name(tmp_path):
    meta = read_feature_metadata(write_features_json(tmp_path / "features.json"))
    with pytest.raises(DataError, match="unknown feature names: feature_9"):
        resolve_features(meta, ["feature_0", "feature_9"])


def test_duplicate_feature_name(tmp_path):
    meta = read_feature_metadata(write_features_json(tmp_path / "features.json"))
    with pytest.raises(DataError, match="listed twice: feature_0"):
        resolve_features(meta, ["feature_0", "feature_0"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"targets": []}), "feature_sets"),
        (json.dumps({"feature_sets": {"all": "feature_0"}}), "not lists of names: all"),
    ],
)
def test_malformed_file(tmp_path, content, message):
    path = tmp_path / "features.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        read_feature_metadata(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="features.json: file not found"):
        read_feature_metadata(tmp_path / "features.json")
