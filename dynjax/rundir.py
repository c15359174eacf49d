"""Run directories: creation without clobbering, `config.json`, and the embedded default data."""

import fcntl
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from dynjax.config import RunConfig, SynthConfig, from_dict, save_config
from dynjax.data.synth import write_synthetic


class RunDirError(RuntimeError):
    """A run directory that cannot be used as asked (nothing in it is changed)."""


def open_run_dir(out: str | Path, cfg: RunConfig, resume: bool) -> RunConfig:
    """The config of the run in `out`: `cfg` for a new run, the saved one with `resume`.

    A new run refuses a directory that already holds a run, so no earlier result is lost;
    nothing is written here, so a run that fails on bad input leaves no half-started run.
    """
    config_path = Path(out) / "config.json"
    if resume:
        if not config_path.is_file():
            raise RunDirError(f"{out}: nothing to resume (no config.json)")
        return from_dict(RunConfig, json.loads(config_path.read_text()))
    if config_path.exists():
        raise RunDirError(f"{out}: already holds a run; pass --resume to continue it or choose another --out")
    return cfg


def start_run_dir(out: str | Path, cfg: RunConfig) -> None:
    """Create `out` and record the run's config."""
    Path(out).mkdir(parents=True, exist_ok=True)
    save_config(cfg, Path(out) / "config.json")


def check_writable(out: str | Path, need_bytes: int = 0) -> None:
    """RunDirError unless `out` can be created and written and its disk has `need_bytes` free."""
    out = Path(out)
    probe = out / f".dynjax-write-probe-{os.getpid()}"  # processes of one run probe the same directory
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"dynjax")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"{out}: not writable ({err.strerror or err}); choose another --out") from None
    free = shutil.disk_usage(out).free
    if free < need_bytes:
        raise RunDirError(f"{out}: {free / 2**20:.0f} MiB free on its disk, but the run writes about "
                          f"{need_bytes / 2**20:.0f} MiB (checkpoints, predictions); free some space or choose another --out")


def default_data(out: str | Path, synth: SynthConfig) -> Path:
    """The embedded default: synthetic data in `out/data`, generated once per config."""
    data_dir = Path(out) / "data"
    stamp = data_dir / "truth" / "synth.json"
    Path(out).mkdir(parents=True, exist_ok=True)
    # Several tune workers may share `out`: one writes the data, the others wait for it.
    with (Path(out) / ".data.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and json.loads(stamp.read_text()).get("config") == asdict(synth):
            return data_dir
        return write_synthetic(synth, data_dir)


def write_json(path: str | Path, payload: dict) -> None:
    Path(path).write_text(json.dumps(payload, indent=2, default=float) + "\n")


__all__ = ["RunDirError", "check_writable", "default_data", "open_run_dir", "start_run_dir", "write_json"]
