"""Covers experiments.policy_before_validation: the walk over the latest training eras, and the choice."""

import numpy as np
import polars as pl
import pytest

from dynjax.data.numerai import load_numerai
from experiments.policy_before_validation import choose, write_fold


def test_the_fold_scores_the_last_training_eras_and_trains_on_the_ones_before(synth_dir, tmp_path):
    fold = write_fold(synth_dir, tmp_path / "fold", 4)
    eras = pl.read_parquet(synth_dir / "train.parquet", columns=["era"])["era"].unique().sort().to_list()
    data = load_numerai(fold)
    assert list(data.validation.index.names) == eras[-4:] and list(data.train.index.names) == eras[:-4]
    assert data.validation.x_NxF.shape[0] + data.train.x_NxF.shape[0] == pl.read_parquet(synth_dir / "train.parquet").height
    with pytest.raises(ValueError, match="cannot hold a walk over"):
        write_fold(synth_dir, tmp_path / "too_long", len(eras))


def test_the_rule_carried_into_validation_is_the_one_with_the_best_sharpe_on_the_training_walk():
    noise = np.random.default_rng(0).normal(0, 1, 40)
    fold = {"steady": 0.05 + 0.01 * noise, "high but erratic": 0.10 + 0.2 * noise, "flat": np.zeros(40)}
    assert choose(fold) == "steady"
