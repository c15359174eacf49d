"""Sharding (dynjax.train.sharding): mesh specs, batch layouts, and on 8 CPU devices (in a
subprocess) the sharded step equal to one device's. A walk-forward on 8 devices (two processes
of four) against one device's is in test_processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from dynjax.config import RunConfig, override, parse_mesh
from dynjax.train.sharding import make_layout, make_mesh
from tests.conftest import xla_flags_with_devices

CHECK = Path(__file__).with_name("sharded_check.py")


def run_on_8_devices(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = os.environ | {"XLA_FLAGS": xla_flags_with_devices(8),
                        "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(CHECK.parents[1])}
    done = subprocess.run([sys.executable, str(CHECK), *args], check=False, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_parse_mesh():
    assert parse_mesh("") == {}
    assert parse_mesh("data=4, model=2") == {"data": 4, "model": 2}
    for bad in ("data", "data=0", "rows=2", "data=2,data=2", "data=x"):
        with pytest.raises(ValueError, match="train.mesh"):
            parse_mesh(bad)
    with pytest.raises(ValueError, match="train.mesh"):
        override(RunConfig(), ["train.mesh=gpus=2"])


def test_default_mesh_spans_every_device_on_data():
    mesh = make_mesh("")
    assert mesh.shape["data"] == jax.device_count() and mesh.shape["model"] == mesh.shape["members"] == 1


def test_mesh_larger_than_the_devices_is_refused():
    with pytest.raises(ValueError, match=f"needs {jax.device_count() + 1} devices"):
        make_mesh(f"data={jax.device_count() + 1}")


def test_batch_split_over_eras_else_rows():
    """The data axis splits the eras when every window size divides, else the rows; neither is refused.
    A one-device mesh divides everything, so the other branches run on virtual devices (below)."""
    layout = make_layout("", 4)
    n = layout.n_devices
    assert layout.window_axis((3 * n, 5 * n), 8) == 1
    shardings = layout.batch_shardings(1)
    assert tuple(shardings.x_WxRxF.spec) == ("data", None, None) and tuple(shardings.y_WxR.spec) == ("data", None)
    rows = layout.batch_shardings(2, lead=1)
    assert tuple(rows.rows_WxR.spec) == (None, None, "data") and tuple(rows.x_WxRxF.spec) == (None, None, "data", None)
    assert rows.context == layout.replicated


def test_windows_split_over_eras_else_rows_else_refused_on_8_devices():
    out = json.loads(run_on_8_devices("--axes").stdout.strip().splitlines()[-1])
    assert out == {"8x16": 1, "6x16": 2, "8x16,6x16": 2, "6x12": "refused"}


def test_sharded_step_equals_one_device():
    """Eras split (W=8), rows split (W=6), feature tables on "model", members on "members"."""
    out = json.loads(run_on_8_devices().stdout.strip().splitlines()[-1])
    assert out["devices"] == 8
    for w, meshes in ((8, ("data=8", "data=2,members=2,model=2")), (6, ("data=8",))):
        assert out[f"moved W={w}"] > 1e-3  # the steps did move the params
        for mesh in meshes:
            got = out[f"{mesh} W={w}"]
            assert got["loss"] < 1e-5 and got["params"] < 1e-5, (mesh, w, got)
            assert ("'model'" in got["emb"]) == ("model" in mesh) and ("'members'" in got["emb"]) == ("members" in mesh)
