"""Shared fixtures: a tiny synthetic data set and a writer for hand-made broken files."""

import atexit
import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import jax
import numpy as np
import polars as pl
import pytest

from dynjax.config import SynthConfig
from dynjax.data.synth import write_synthetic

# Tests run tiny programs once or twice each, so XLA's optimisation passes cost more than they save
# (behaviour is compared within one process, never against figures from an optimised build). The
# CPU backend's fusion emitters (MLIR codegen of each fusion) are most of a tiny step's compile
# time: off, a tiny walk-forward's programs compile in about half the time.
_TEST_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_TEST_XLA_FLAGS}".strip()

# Tests build the same tiny programs many times (every walk-forward makes fresh jitted closures):
# a session-wide persistent compilation cache compiles each one once. The process that imports
# this first (pytest's controller) makes it and removes it at exit; the xdist workers it starts,
# and the CLI and multi-device runs the tests start in subprocesses, inherit it through the
# environment, so they share every compiled program.
_JIT_CACHE = os.environ.get("DYNJAX_TEST_JIT_CACHE")
if _JIT_CACHE is None:
    _JIT_CACHE = tempfile.mkdtemp(prefix="dynjax_jit_")
    atexit.register(shutil.rmtree, _JIT_CACHE, ignore_errors=True)
os.environ |= {"DYNJAX_TEST_JIT_CACHE": _JIT_CACHE, "JAX_COMPILATION_CACHE_DIR": _JIT_CACHE,
               "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
jax.config.update("jax_compilation_cache_dir", _JIT_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def xla_flags_with_devices(n: int) -> str:
    """The tests' XLA flags for a subprocess with `n` CPU devices."""
    return f"--xla_force_host_platform_device_count={n} {_TEST_XLA_FLAGS}"

TINY = SynthConfig(
    n_train_eras=12, n_val_eras=6, rows_per_era=40, n_features=16, n_factors=4,
    n_regimes=2, active_per_regime=3, regime_eras=4, noise=1.0, nan_rate=0.05, seed=3,
)


# A walk-forward small enough for tests: two-era windows, one pretraining epoch, tiny model. Its
# dozen steps would leave the default 0.99 parameter average at the init (constant predictions), so
# the params predict themselves; the average has its own tests (test_run, test_ensemble).
TINY_RUN = ["optim.ema_decay=0", 
    "synth.n_train_eras=14", "synth.n_val_eras=5", "synth.rows_per_era=30", "synth.n_features=12",
    "synth.active_per_regime=3", "synth.n_factors=3", "synth.noise=1.0",
    "data.window_eras=2", "data.rows_per_era=16", "train.holdout_eras=2", "train.pretrain_epochs=1",
    "train.steps_per_update=2", "train.predict_chunk=32", "model.d_model=8", "model.n_heads=2",
    "selection.mode=topk", "selection.k=4",
]


# The arguments of `finished_run`: a feature set, so that the flag is exercised too.
FINISHED_ARGS = ["--feature-set", "medium", *TINY_RUN]


def off_zero_init(state):
    """`state` (one member's or stacked members') with its additive table moved off zero, the same for every
    member. At the zero init every prediction is 0.5 against targets in quarters, so some cells' gradients
    cancel to zero exactly, and Adam's first step (g / (|g| + eps)) turns rounding either side of zero into
    a step of the learning rate: tests that compare two compiled forms of one step start here instead."""
    beta = state.params["params"]["additive"]["beta"]
    beta = beta + 0.05 * jax.random.normal(jax.random.key(99), beta.shape[-2:])
    params = {**state.params, "params": {**state.params["params"], "additive": {"beta": beta}}}
    return state.replace(params=params, ema_params=jax.tree.map(lambda a: a.copy(), params))  # two buffers: steps donate both


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished `dynjax walk-forward` of FINISHED_ARGS on its embedded data (copy it before
    changing it); what it printed is in `stdout.txt` next to it."""
    from dynjax.cli import main

    out = tmp_path_factory.mktemp("cli") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["walk-forward", "--out", str(out), *FINISHED_ARGS]) == 0
    (out.parent / "stdout.txt").write_text(printed.getvalue())
    return out


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A tiny synthetic Numerai directory (read-only for tests)."""
    return write_synthetic(TINY, tmp_path_factory.mktemp("synth"))


def write_split(path: Path, n_eras: int = 3, rows: int = 5, n_features: int = 4, **overrides) -> Path:
    """A small hand-made Numerai-layout parquet file; `overrides` replace or add columns."""
    rng = np.random.default_rng(0)
    n = n_eras * rows
    cols = {
        "id": [f"id{i}" for i in range(n)],
        "era": [f"{e + 1:04d}" for e in range(n_eras) for _ in range(rows)],
        "data_type": ["train"] * n,
        **{f"feature_{j}": pl.Series(rng.integers(0, 5, n), dtype=pl.Int8) for j in range(n_features)},
        "target": rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n),
    }
    cols.update(overrides)
    pl.DataFrame(cols).write_parquet(path)
    return path


def write_features_json(path: Path, n_features: int = 4) -> Path:
    names = [f"feature_{j}" for j in range(n_features)]
    path.write_text(json.dumps({"feature_sets": {"small": names[:2], "all": names}, "targets": ["target"]}))
    return path

