"""Covers dynjax.rundir: no clobbering of earlier runs, resume keeps the config, default data reuse."""

import pytest

from dynjax.config import RunConfig, load_config, override
from dynjax.rundir import RunDirError, default_data, open_run_dir, start_run_dir
from tests.conftest import TINY


def test_new_run_writes_config_and_refuses_to_clobber(tmp_path):
    cfg = override(RunConfig(), ["data.embargo=5"])
    assert open_run_dir(tmp_path / "run", cfg, resume=False) == cfg
    assert not (tmp_path / "run").exists()  # nothing written until the run starts
    start_run_dir(tmp_path / "run", cfg)
    assert load_config(tmp_path / "run" / "config.json") == cfg
    with pytest.raises(RunDirError, match="already holds a run"):
        open_run_dir(tmp_path / "run", RunConfig(), resume=False)
    assert load_config(tmp_path / "run" / "config.json") == cfg  # untouched


def test_resume_returns_the_original_config(tmp_path):
    cfg = override(RunConfig(), ["seed=9"])
    start_run_dir(tmp_path, cfg)
    assert open_run_dir(tmp_path, RunConfig(), resume=True) == cfg
    with pytest.raises(RunDirError, match="nothing to resume"):
        open_run_dir(tmp_path / "empty", RunConfig(), resume=True)


def test_default_data_is_generated_once_per_config(tmp_path):
    data_dir = default_data(tmp_path, TINY)
    stamp = (data_dir / "train.parquet").stat().st_mtime_ns
    assert default_data(tmp_path, TINY) == data_dir
    assert (data_dir / "train.parquet").stat().st_mtime_ns == stamp
    default_data(tmp_path, TINY.__class__(**{**TINY.__dict__, "seed": 4}))
    assert (data_dir / "train.parquet").stat().st_mtime_ns != stamp
