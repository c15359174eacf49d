"""Covers dynjax.eval.truth: ground-truth active sets, oracle scores and selection recall."""

import numpy as np

from dynjax.eval.truth import active_features, has_truth, oracle_scores, selection_recall
from tests.conftest import TINY


def test_truth_is_found_and_read(synth_dir, tmp_path):
    assert has_truth(synth_dir) and not has_truth(tmp_path)
    active = active_features(synth_dir)
    assert len(active) == TINY.n_train_eras + TINY.gap_eras + TINY.n_val_eras + 1
    assert all(len(f) == TINY.active_per_regime for f in active.values())


def test_oracle_scores_are_high_with_little_noise(synth_dir):
    per_era, summary = oracle_scores(synth_dir, "validation")
    assert per_era.height == TINY.n_val_eras
    assert summary["corr_mean"] > 0.3 and summary["n_eras"] == TINY.n_val_eras


def test_selection_recall():
    truth = {"0001": {"a", "b"}, "0002": {"c"}}
    recall = selection_recall({"0001": {"a", "x"}, "0002": {"c", "d"}}, truth)
    np.testing.assert_allclose(recall, [0.5, 1.0])
