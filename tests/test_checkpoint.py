"""Covers dynjax.train.checkpoint: Orbax round trip, latest-N plus best, clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.train.checkpoint import CheckpointError, RunCheckpoints


def _state(v):
    return {"w": jnp.full((3,), v, jnp.float32), "step": jnp.asarray(int(v), jnp.int32)}


def test_round_trip_and_retention(tmp_path):
    ckpt = RunCheckpoints(tmp_path / "ck", keep=2)
    for step, metric in enumerate([0.5, 0.1, 0.2, 0.3]):
        ckpt.save(step, _state(step), {"cursor": step}, metric)
    assert ckpt.latest_step() == 3
    assert sorted(ckpt.manager.all_steps()) == [0, 2, 3]  # the latest 2 plus the best (step 0)
    restored = ckpt.restore_state(3, jax.eval_shape(lambda: _state(0.0)))
    np.testing.assert_array_equal(restored["w"], [3.0, 3.0, 3.0])
    assert ckpt.restore_meta(3) == {"cursor": 3}
    ckpt.close()


def test_missing_or_corrupt_checkpoint_is_named(tmp_path):
    ckpt = RunCheckpoints(tmp_path / "ck")
    ckpt.save(0, _state(1.0), {"cursor": 0}, 0.0)
    with pytest.raises(CheckpointError, match="ck/5: checkpoint metadata unreadable"):
        ckpt.restore_meta(5)
    # a state of another structure (another version of dynjax wrote it) names the parts that differ
    with pytest.raises(CheckpointError, match=r"ck/0: checkpoint state: its run state has other parts than this dynjax's \(other") as err:
        ckpt.restore_state(0, jax.eval_shape(lambda: {"other": jnp.zeros(2)}))
    assert "another version wrote it" in str(err.value) and "User-provided" not in str(err.value)
    ckpt.close()
