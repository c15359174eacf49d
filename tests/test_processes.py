"""Multi-process runs (dynjax.train.processes): joining from flags or the environment, and two
processes on localhost (four CPU devices each, CPU collectives: a mesh of 8 devices) writing the
predictions and the per-era report of one process on one device."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import polars as pl
import pytest

from dynjax.train.processes import initialize, is_writer
from tests.conftest import FINISHED_ARGS, xla_flags_with_devices

_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def test_one_process_when_nothing_asks_for_more(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    assert initialize() is False and is_writer()


def test_incomplete_or_bad_settings_are_refused(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="coordinator address, the number of processes and this process's id"):
        initialize("localhost:1234", num_processes=2)
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES='two'"):
        initialize()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not hasattr(jax.config, "jax_cpu_collectives_implementation"),
                    reason="this jaxlib has no CPU collectives (jax_cpu_collectives_implementation)")
def test_two_processes_of_four_devices_write_the_predictions_of_one_device(tmp_path, finished_run):
    """The finished run's command on the default mesh (every device on data: windows of 2 eras over
    8 devices, so rows split) against the same run on one device."""
    out, port = tmp_path / "two", _free_port()
    env = os.environ | {"XLA_FLAGS": xla_flags_with_devices(4),
                        "JAX_PLATFORMS": "cpu", "TQDM_DISABLE": "1"}
    env.pop("JAX_COORDINATOR_ADDRESS", None)
    procs = [subprocess.Popen([sys.executable, "-m", "dynjax.cli", "walk-forward", "--out", str(out),
                               "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i),
                               *FINISHED_ARGS], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert "dynjax" in results[0][0] and "run directory" not in results[1][0]  # process 0 reports, 1 does not
    for name in ("predictions.parquet", "predictions_frozen.parquet"):
        one, two = pl.read_parquet(finished_run / name), pl.read_parquet(out / name)
        assert one["id"].to_list() == two["id"].to_list()
        np.testing.assert_allclose(two["prediction"].to_numpy(), one["prediction"].to_numpy(), atol=1e-5)
    one, two = (pl.read_csv(d / "metrics_per_era.csv") for d in (finished_run, out))
    assert one["era"].to_list() == two["era"].to_list() and len(one) == 5
    for column in ("corr_dynjax", "corr_frozen"):
        assert np.abs(one[column].to_numpy() - two[column].to_numpy()).max() < 1e-4, column
    assert one["n_selected"].to_list() == two["n_selected"].to_list()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(p.name for p in (finished_run / "checkpoints").iterdir())
