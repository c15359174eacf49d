"""Covers experiments.member_replay: the record of each era's members as predicted, and its rules."""

import numpy as np
import polars as pl
import pytest

from dynjax.eval.scores import fast_numerai_corr
from experiments.member_replay import grids, load, mix_corr, record, replay, t_hedge
from tests.conftest import TINY_RUN

# The tiny run without the importance mask: the frozen members then predict with the mask they had
# after pretraining, as the frozen model does.
RUN = [o for o in TINY_RUN if not o.startswith("selection.")]


def test_the_record_holds_every_walk_forward_era_as_the_run_predicted_it(synth_dir, tmp_path):
    out = record(tmp_path / "run", synth_dir, RUN).parent
    eras, lag = load(out)
    per_era = pl.read_csv(out / "metrics_per_era.csv")
    assert len(eras) == per_era.height and lag == 4
    _, every, frozen = grids(eras[0][0].shape[1] // 2)
    assert every.shape == (7, 4) and np.allclose(every.sum(1), 1)
    # The frozen members' equal mix is the frozen model (checkpoint 0, its Hedge untouched), era by era:
    # the record's rows, members and targets line up with the run's files (both rounded as `mix_corr`
    # rounds, so that the tiny data's tied ranks stay tied).
    truth = pl.read_parquet(synth_dir / "validation.parquet", columns=["id", "target"])
    frozen_model = pl.read_parquet(out / "predictions_frozen.parquet").join(truth, on="id").sort("era", maintain_order=True)
    want = [fast_numerai_corr(np.round(g["prediction"].to_numpy(), 12), g["target"].to_numpy())
            for _, g in frozen_model.group_by("era", maintain_order=True)]
    np.testing.assert_allclose([mix_corr(era, frozen)[0] for era in eras], want, atol=1e-9)
    np.testing.assert_allclose(want, per_era["corr_frozen"], atol=2e-3)  # the run's own scores, ties as they fell
    corr = replay(eras, lag)
    np.testing.assert_allclose(corr["frozen model"], want, atol=1e-9)
    assert all(len(c) == len(eras) and np.isfinite(c).all() for c in corr.values())
    assert "walk-forward member 1 alone" in corr and "frozen member 1 alone" in corr


def test_t_hedge_does_not_grow_with_the_signals_scale_and_is_even_before_two_eras():
    corr_ExX = np.random.default_rng(1).normal(0.02, 0.05, (40, 3)) + [0.0, 0.01, 0.0]
    np.testing.assert_allclose(t_hedge(corr_ExX, 1.0, 2), t_hedge(10 * corr_ExX, 1.0, 2))
    assert t_hedge(corr_ExX, 1.0, 2).argmax() == 1 and t_hedge(corr_ExX[:1], 1.0, 2) == pytest.approx(np.full(3, 1 / 3))
