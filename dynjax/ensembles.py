"""`dynjax ensemble`: members that are whole walk-forward runs, rank-averaged per era.

Members differ in what one vmapped population cannot share: the training target (Numerai's
target ensembling: one member per `target_*` column, all scored against the main target),
the config (the top-k trials of a `dynjax tune` study) or the seed. Seed ensembles inside one
run are `train.ensemble`; this is the ensemble across runs. Each member is an ordinary run
directory under `members/`, so a killed ensemble resumes member by member.
"""

import dataclasses
from collections.abc import Callable
from pathlib import Path

import polars as pl

from dynjax.config import RunConfig, load_config, save_config
from dynjax.rundir import default_data


def target_members(cfg: RunConfig, targets: list[str]) -> dict[str, RunConfig]:
    """One member per target, each trained on that target alone; its embargo follows its horizon
    (`DataConfig.embargo_eras`: a 60-day target's member embargoes 12 eras)."""
    return {t: dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, targets=(t,))) for t in targets}


def seed_members(cfg: RunConfig, seeds: list[int]) -> dict[str, RunConfig]:
    return {f"seed{s}": dataclasses.replace(cfg, seed=s) for s in seeds}


def tuned_members(tune_dir: str | Path, top_k: int, study_name: str = "dynjax") -> dict[str, RunConfig]:
    """The `top_k` completed trials of a study, each as `best_config.json` with that trial's parameters."""
    import optuna

    from dynjax.tune.space import apply_params
    from dynjax.tune.study import storage_url

    tune_dir = Path(tune_dir)
    if not (tune_dir / "best_config.json").is_file():
        raise ValueError(f"{tune_dir}: no best_config.json (run dynjax tune there first)")
    base = load_config(tune_dir / "best_config.json")
    study = optuna.load_study(study_name=study_name, storage=storage_url(tune_dir, None))
    done = sorted(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: -t.value)
    return {f"trial{t.number:04d}": apply_params(base, t.params) for t in done[:top_k]}


def run_members(members: dict[str, RunConfig], out: str | Path, walk_forward: Callable[[list[str]], int]) -> dict[str, Path]:
    """Run (or resume, or reuse) each member's walk-forward in `out/members/NAME`; all share one data directory."""
    out = Path(out)
    dirs = {}
    for name, cfg in members.items():
        if cfg.data.data_dir is None:  # the embedded default: generated once for every member
            data_dir = default_data(out, cfg.synth).resolve()
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_dir=str(data_dir)))
        run_dir = out / "members" / name
        cfg_path = out / "members" / f"{name}.json"
        cfg_path.parent.mkdir(parents=True, exist_ok=True)
        save_config(cfg, cfg_path)
        if not (run_dir / "metrics.json").is_file():
            resume = ["--resume"] if (run_dir / "config.json").is_file() else []
            if walk_forward(["walk-forward", "--config", str(cfg_path), "--out", str(run_dir), *resume]) != 0:
                raise ValueError(f"ensemble member {name!r} failed (its run directory: {run_dir})")
        dirs[name] = run_dir
    return dirs


def member_predictions(dirs: dict[str, Path]) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(d / "predictions.parquet") for name, d in dirs.items()}
