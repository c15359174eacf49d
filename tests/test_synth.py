"""Covers dynjax.data.synth: Numerai's file layout, target shape, regimes, the diffuse signal, the ground truth."""

import json

import numpy as np
import polars as pl
import pytest
from numerai_tools.scoring import numerai_corr

from dynjax.config import SynthConfig
from dynjax.data.synth import (
    GROUP_NAMES,
    LAYOUTS,
    SETTINGS,
    Plan,
    _feature_json,
    feature_names,
    generate,
    quantile_bins,
    regime_sequence,
)
from dynjax.eval import to_pandas
from tests.conftest import TINY


@pytest.mark.parametrize("layout, sizes", [("v5.2", {"all": 2748, "medium": 780, "small": 42}),
                                           ("v5.3", {"all": 3555, "medium": 780, "small": 42, "quantum": 807})])
def test_numerai_layouts_have_their_feature_sets(layout, sizes):
    cfg = SynthConfig(**LAYOUTS[layout])
    names = feature_names(cfg.n_features, cfg.layout)
    sets = _feature_json(cfg, names, np.arange(len(names)) % cfg.n_groups)["feature_sets"]
    assert {k: len(sets[k]) for k in sizes} == sizes and len(set(names)) == len(names)


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
    groups = set(meta["feature_sets"]) - {"small", "medium", "all"}
    assert {"small", "medium", "all"} <= set(meta["feature_sets"]) and groups <= set(GROUP_NAMES)
    sets = {k: set(v) for k, v in meta["feature_sets"].items()}
    assert sets["small"] < sets["medium"] < sets["all"]  # nested, like Numerai's sets
    assert meta["feature_sets"]["all"] == feats
    # The named groups (Numerai's "intelligence", "charisma", ...) partition the features.
    assert sorted(f for g in groups for f in sets[g]) == sorted(feats)


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
    with pytest.raises(ValueError, match="unknown synthetic signal"):
        SynthConfig(signal="dense")


def test_written_in_chunks_equals_written_whole(synth_dir, tmp_path):
    """Chunks of a few eras (the way a v5-size set is written) give the same files as one chunk."""
    from dynjax.data.synth import write_synthetic

    chunked = write_synthetic(TINY, tmp_path, chunk_rows=50)
    for name in ("train.parquet", "validation.parquet", "live.parquet", "truth/signal.parquet", "truth/active.parquet"):
        assert pl.read_parquet(chunked / name).equals(pl.read_parquet(synth_dir / name)), name
    assert not (chunked / ".chunks").exists()


DIFFUSE = SynthConfig(signal="diffuse", n_train_eras=30, n_val_eras=6, rows_per_era=400, n_features=40, n_factors=8,
                      n_groups=4, noise=0.5, flip_eras=8, n_interactions=6, seed=5)


def test_diffuse_signal_is_spread_thinly_over_most_features():
    splits, _, _, flips = generate(DIFFUSE)
    train = splits["train"]
    plan = Plan.draw(DIFFUSE)
    weights_ExF = plan.diffuse.weight_ExF
    active_F = (weights_ExF != 0).any(axis=0)
    assert 0.7 < active_F.mean() < 1.0  # dense_frac 0.85 of the features carry weight
    # No feature dominates: the largest single-feature corr with the signal is small.
    x = np.where(train.x_NxF < 0, 2, train.x_NxF).astype(float)
    corr_F = np.array([abs(np.corrcoef(x[:, f], train.signal_N)[0, 1]) for f in range(DIFFUSE.n_features)])
    assert corr_F.max() < 0.35 and np.median(corr_F[active_F]) > 0.02
    # The flipping group's sign follows the hidden regime: its weights change sign exactly at the flips.
    group = plan.diffuse.flip_F & active_F
    assert group.any() and len(set(flips)) == 2
    sign_E = np.sign(weights_ExF[:, group] * np.sign(weights_ExF[0, group]))
    flipped_E = (sign_E < 0).mean(axis=1) > 0.5
    np.testing.assert_array_equal(flipped_E, flips != flips[0])


def test_diffuse_weights_drift_between_eras_and_are_the_truth(tmp_path):
    from dynjax.data.synth import write_synthetic

    out = write_synthetic(DIFFUSE, tmp_path)
    active = pl.read_parquet(out / "truth" / "active.parquet")
    first, later = (active.filter(pl.col("era") == e).sort("feature") for e in ("0001", "0002"))
    assert first["feature"].to_list() == later["feature"].to_list()  # the same features carry signal...
    assert not np.allclose(first["weight"].to_numpy(), later["weight"].to_numpy())  # ...with drifting weights
    meta = json.loads((out / "truth" / "synth.json").read_text())
    assert len(meta["interactions"]) == DIFFUSE.n_interactions and meta["flip_group"]
    # The noise-free signal is standardised within every era.
    signal = pl.read_parquet(out / "truth" / "signal.parquet").filter(pl.col("era") != "X")
    stats = signal.group_by("era").agg(pl.col("signal").mean().alias("m"), pl.col("signal").std().alias("s"))
    np.testing.assert_allclose(stats["m"].to_numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(stats["s"].to_numpy(), 1, atol=1e-2)


def test_named_settings_are_valid_configs():
    for name, fields in SETTINGS.items():
        cfg = SynthConfig(**fields)
        assert (cfg.signal == "diffuse") == (name in ("diffuse", "numerai")), name
