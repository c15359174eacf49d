"""Covers dynjax.config: frozen configs, validation, JSON round trip and key=value overrides."""

import dataclasses

import pytest

from dynjax.config import (
    DataConfig,
    RunConfig,
    from_dict,
    load_config,
    override,
    save_config,
    to_dict,
)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig().data.embargo = 3


def test_round_trip(tmp_path):
    cfg = override(RunConfig(), ["data.embargo=6", "synth.noise=2", "data.targets=target,target_ender_60",
                                 "model.evidence_eras=3,9", "train.ensemble=2"])
    assert cfg.model.evidence_eras == (3, 9)
    save_config(cfg, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == cfg
    assert from_dict(RunConfig, to_dict(cfg)) == cfg


def test_override_types():
    cfg = override(RunConfig(), ["data.feature_set=small", "synth.noise=2", "seed=5", "data.data_dir=/x"])
    assert cfg.data.feature_set == "small" and cfg.seed == 5 and cfg.data.data_dir == "/x"
    assert isinstance(cfg.synth.noise, float) and cfg.synth.noise == 2.0
    assert override(cfg, ["data.data_dir=null"]).data.data_dir is None


@pytest.mark.parametrize(
    "item, message",
    [
        ("data.embargo", "not of the form key=value"),
        ("data.nope=1", "unknown config key 'nope'"),
        ("data.embargo=1.5", "expected int"),
        ("data.embargo=-1", "embargo must be >= 0"),
        ("data.missing=knn", "missing must be one of"),
        ("seed.x=1", "has no sub-keys"),
        ("model.evidence_eras=4,x", "expected a list of int"),
        ("model.evidence_eras=0", "evidence_eras must be positive"),
        ("model.gates=dense", "unknown gates"),
        ("train.ensemble=0", "ensemble must be >= 1"),
        ("train.checkpoint_every=0", "checkpoint_every must be >= 1"),
        ("optim.ema_decay=1.0", "ema_decay must be in"),
        ("selection.warmup_eras=-1", "warmup_eras must be >= 0"),
        ("loss.additive_smooth=-1", "loss.pair_l2 and loss.prior_rows must be >= 0"),
        ("model.gate_thresholds=", "gate_thresholds must be one or more"),
        ("model.backbone=tabm", "unknown config key 'backbone'"),  # the MLP heads are gone (the research log)
        ("loss.prior_members=1,-0.5", "prior_members must be scales >= 0"),
        ("loss.prior_members=", "prior_members must be scales >= 0"),
    ],
)
def test_bad_overrides(item, message):
    with pytest.raises(ValueError, match=message):
        override(RunConfig(), [item])


def test_the_embargo_follows_the_main_target_and_is_never_shorter():
    assert RunConfig().data.embargo is None and RunConfig().data.embargo_eras == 4
    assert override(RunConfig(), ["data.targets=target_ender_60,target"]).data.embargo_eras == 12
    assert override(RunConfig(), ["data.targets=target_ender_60", "data.embargo=13"]).data.embargo_eras == 13
    assert override(RunConfig(), ["data.targets=target_cyrus_v4_20"]).data.embargo_eras == 4
    with pytest.raises(ValueError, match="data.embargo=4 is shorter than the main target target_ender_60's horizon of 12"):
        override(RunConfig(), ["data.embargo=4", "data.targets=target_ender_60"])
    with pytest.raises(ValueError, match="data.embargo=3 is shorter than the main target target's horizon of 4"):
        override(RunConfig(), ["data.embargo=3"])


def test_fields_that_constrain_each_other_change_together_in_any_order():
    a = override(RunConfig(), ["data.targets=target_ender_60", "data.embargo=12"])
    b = override(RunConfig(), ["data.embargo=12", "data.targets=target_ender_60"])
    assert a == b and a.data.embargo_eras == 12


def test_partial_dict_and_unknown_keys():
    assert from_dict(RunConfig, {"data": {"embargo": 5}}).data == DataConfig(embargo=5)
    with pytest.raises(ValueError, match="unknown DataConfig keys: window"):
        from_dict(RunConfig, {"data": {"window": 5}})


def test_a_config_saved_before_a_key_left_loads_where_it_held_what_the_code_now_does():
    saved = {"model": {"d_model": 16, "context": False, "context_eras": 8}}  # a run directory's config.json of before
    assert from_dict(RunConfig, saved).model.d_model == 16
    with pytest.raises(ValueError, match="ModelConfig.context=True left dynjax .* at commit 77e63c7"):
        from_dict(RunConfig, {"model": {"context": True}})
    with pytest.raises(ValueError, match="unknown config key 'context'"):
        override(RunConfig(), ["model.context=true"])
