"""Covers dynjax.data.synth: Numerai's file layout, target shape, regimes and the ground truth."""

import json

import numpy as np
import polars as pl
import pytest
from numerai_tools.scoring import numerai_corr

from dynjax.config import SynthConfig
from dynjax.data.synth import generate, quantile_bins, regime_sequence
from dynjax.eval import to_pandas
from tests.conftest import TINY


def test_files_in_numerai_layout(synth_dir):
    for name in ("train.parquet", "validation.parquet", "live.parquet", "features.json",
                 "truth/active.parquet", "truth/signal.parquet", "truth/synth.json"):
        assert (synth_dir / name).is_file(), name
    train = pl.read_parquet(synth_dir / "train.parquet")
    feats = [c for c in train.columns if c.startswith("feature_")]
    assert len(feats) == TINY.n_features
    assert all(train.schema[f] == pl.Int8 for f in feats)
    assert train.schema["id"] == pl.String and train.schema["era"] == pl.String
    assert train["id"].n_unique() == train.height
    assert {"target", "target_ender_20", "target_ender_60", "target_jasper_20", "data_type"} <= set(train.columns)
    assert train["data_type"].unique().to_list() == ["train"]
    assert pl.read_parquet(synth_dir / "validation.parquet")["data_type"].unique().to_list() == ["validation"]
    meta = json.loads((synth_dir / "features.json").read_text())
    assert set(meta["feature_sets"]) == {"small", "medium", "all"}
    sets = {k: set(v) for k, v in meta["feature_sets"].items()}
    assert sets["small"] < sets["medium"] < sets["all"]  # nested, like Numerai's sets
    assert meta["feature_sets"]["all"] == feats


def test_features_are_quintiles_with_nulls(synth_dir):
    train = pl.read_parquet(synth_dir / "train.parquet")
    values = train["feature_0000"]
    assert 0.02 < values.null_count() / len(values) < 0.08
    counts = values.drop_nulls().value_counts().sort("feature_0000")["count"].to_numpy()
    assert counts.min() / counts.max() > 0.8


def test_target_has_numerai_bin_shape():
    y = quantile_bins(np.random.default_rng(0).standard_normal((10_000, 1)), (0.05, 0.25, 0.75, 0.95))[:, 0] / 4
    shares = [np.mean(y == v) for v in (0, 0.25, 0.5, 0.75, 1)]
    np.testing.assert_allclose(shares, [0.05, 0.2, 0.5, 0.2, 0.05], atol=1e-3)


def test_eras_gap_and_live(synth_dir):
    eras = {s: sorted(pl.read_parquet(synth_dir / f"{s}.parquet")["era"].unique().to_list())
            for s in ("train", "validation", "live")}
    assert eras["train"][0] == "0001" and len(eras["train"]) == TINY.n_train_eras
    assert int(eras["validation"][0]) - int(eras["train"][-1]) == TINY.gap_eras + 1
    assert eras["live"] == ["X"]  # as in Numerai's live files: placed after the last validation era


def test_ground_truth_signal_scores_with_numerai_tools(synth_dir):
    signal = pl.read_parquet(synth_dir / "truth" / "signal.parquet")
    rows = pl.read_parquet(synth_dir / "train.parquet", columns=["id", "era", "target"]).join(signal.drop("era"), on="id")
    frames = [to_pandas(part) for _, part in rows.group_by("era")]
    per_era = [numerai_corr(f[["signal"]], f["target"])["signal"] for f in frames]
    assert np.mean(per_era) > 0.3  # noise 1.0 in the tiny config


def test_active_sets_follow_the_regimes(synth_dir):
    active = pl.read_parquet(synth_dir / "truth" / "active.parquet")
    regimes = json.loads((synth_dir / "truth" / "synth.json").read_text())["regime_of_era"]
    per_era = active.group_by("era").agg(pl.col("feature").sort(), pl.col("regime").first())
    assert per_era.height == len(regimes)
    assert all(len(f) == TINY.active_per_regime for f in per_era["feature"])
    by_regime = {}
    for era, feats, regime in per_era.iter_rows():
        assert regimes[era] == regime
        assert by_regime.setdefault(regime, feats) == feats


def test_regimes_switch_and_persist():
    cfg = SynthConfig(n_regimes=3, regime_eras=10)
    seq = regime_sequence(2000, cfg, np.random.default_rng(0))
    switches = np.count_nonzero(np.diff(seq))
    assert set(seq) == {0, 1, 2} and 2000 / 10 * 0.7 < switches < 2000 / 10 * 1.3


def test_same_seed_same_data_other_seed_other_data():
    small = SynthConfig(n_train_eras=3, n_val_eras=2, rows_per_era=20, n_features=6, active_per_regime=2, n_factors=2)
    a, b = generate(small)[0]["train"], generate(small)[0]["train"]
    c = generate(SynthConfig(**{**small.__dict__, "seed": 1}))[0]["train"]
    np.testing.assert_array_equal(a.x_NxF, b.x_NxF)
    assert not np.array_equal(a.signal_N[:20], c.signal_N[:20])


def test_invalid_config():
    with pytest.raises(ValueError, match="active_per_regime"):
        SynthConfig(n_features=4, active_per_regime=5)


def test_written_in_chunks_equals_written_whole(synth_dir, tmp_path):
    """Chunks of a few eras (the way a v5-size set is written) give the same files as one chunk."""
    from dynjax.data.synth import write_synthetic

    chunked = write_synthetic(TINY, tmp_path, chunk_rows=50)
    for name in ("train.parquet", "validation.parquet", "live.parquet", "truth/signal.parquet", "truth/active.parquet"):
        assert pl.read_parquet(chunked / name).equals(pl.read_parquet(synth_dir / name)), name
    assert not (chunked / ".chunks").exists()
