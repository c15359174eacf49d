"""Covers dynjax.train.timing: timed blocks add their wall time, and the XLA compiles inside them."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from dynjax.train.timing import new_timings, timed


def test_timed_blocks_add_wall_time_and_the_compiles_inside_them_only():
    timings = new_timings()
    n = int(np.random.default_rng().integers(1000, 100_000))  # a shape no cache has seen
    with timed(timings, "train_s", compiles="compile_s"):
        time.sleep(0.05)
        jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(n)).block_until_ready()
    with timed(timings, "predict_s"):  # compiles outside a compile-counting block are not counted
        jax.jit(lambda x: jnp.cos(x) * 3)(jnp.ones(n + 1)).block_until_ready()
    assert timings["train_s"] >= 0.05 and timings["predict_s"] > 0
    assert 0 < timings["compile_s"] < timings["train_s"]
    compiled = timings["compile_s"]
    with timed(timings, "train_s", compiles="compile_s"):
        jax.jit(lambda x: jnp.sin(x) * 2)  # nothing compiled
    assert timings["compile_s"] == compiled
