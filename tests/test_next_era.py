"""Covers dynjax.train.next_era: the next-era directory round trip, its atomic replacement, clear errors."""

import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.config import RunConfig
from dynjax.data.bins import Imputer
from dynjax.data.context import EraContext
from dynjax.train.checkpoint import CheckpointError
from dynjax.train.next_era import load_next, save_next


def test_next_era_round_trip_and_replacement(tmp_path):
    cfg = RunConfig()
    context = EraContext(np.ones((4, 3), np.float32))
    imputer = Imputer("global_mean", fill_F=np.arange(4.0))
    for v in (1.0, 2.0):  # the second save replaces the first
        save_next(tmp_path, cfg, {"w": jnp.full(2, v)}, number=42, after="0041", features=("a", "b", "c", "d"),
                  feature_columns=("a", "b", "c", "d", "e"), context=context, imputer=imputer)
    nxt = load_next(tmp_path)
    assert (nxt.cfg, nxt.number, nxt.after, nxt.features, nxt.feature_columns) == (cfg, 42, "0041", ("a", "b", "c", "d"),
                                                                                   ("a", "b", "c", "d", "e"))
    np.testing.assert_array_equal(nxt.context.evidence_FxV, context.evidence_FxV)
    assert nxt.imputer.strategy == "global_mean"
    np.testing.assert_array_equal(nxt.imputer.fill_F, np.arange(4.0))
    state = nxt.restore_state({"w": jnp.zeros(2)})
    np.testing.assert_array_equal(state["w"], [2.0, 2.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next"]  # no temporary or old copy left


def test_missing_or_unreadable_next_era_state_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="next: no next-era state .*resume it with dynjax walk-forward --resume"):
        load_next(tmp_path)
    save_next(tmp_path, RunConfig(), {"w": jnp.zeros(2)}, number=1, after="0000", features=("a",), feature_columns=None,
              context=None, imputer=None)
    (tmp_path / "next" / "arrays.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="next: next-era state unreadable"):
        load_next(tmp_path)
