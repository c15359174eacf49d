"""`dynjax tune`: an Optuna study over a search space, objective on walk-forward folds.

The study lives in an Optuna RDB storage: SQLite in the output directory by default, or any
URL (`postgresql://...`) that many workers on many machines share. Running the command again
resumes the study; `n_trials` is the study's total of finished trials, so workers started on
one study split the work between them. A worker that dies leaves a stale trial, which the
heartbeat marks failed and retries once.
"""

import fcntl
import json
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import polars as pl
import sqlalchemy
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from dynjax.config import RunConfig, save_config, to_dict
from dynjax.data.numerai import NumeraiData
from dynjax.rundir import write_json
from dynjax.tune.objective import config_folds, evaluate, folds_fit
from dynjax.tune.population import optimize_population
from dynjax.tune.space import (
    apply_params,
    as_overrides,
    base_params,
    check_space,
    fit_space,
    suggest,
)
from dynjax.tune.trials import FINISHED, fresh_dir, record_result, trial_dir, trial_line

STUDY_FILE = "study.db"


def storage_url(out: str | Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(Path(out) / STUDY_FILE).resolve()}"


def open_study(cfg: RunConfig, space: dict, url: str, study_name: str, worker: int = 0) -> optuna.Study:
    """Create or load the study; a loaded one must have been started with the same base config and space."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    # Heartbeats (a dead worker's trial is failed and retried) work with `Study.optimize` only,
    # which population sweeps (ask and tell) do not use.
    heartbeat = ({"heartbeat_interval": 30, "grace_period": 180,
                  "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=1)}
                 if cfg.tune.population == 1 else {})
    with _creation_lock(url):
        storage = _rdb_storage(url, engine, heartbeat)
        # Workers of one study need different samplers, or their random start-up trials coincide.
        sampler = optuna.samplers.TPESampler(seed=cfg.seed + worker, n_startup_trials=cfg.tune.startup_trials)
        study = optuna.create_study(storage=storage, sampler=sampler, pruner=make_pruner(cfg), study_name=study_name,
                                    direction="maximize", load_if_exists=True)
        _check_same_base(study, cfg, space)
        baseline = base_params(space, cfg)
        if baseline is not None and not study.trials:
            # Trial 0 is the base config itself, scored on the same folds as every other trial.
            study.enqueue_trial(baseline, user_attrs={"baseline": True}, skip_if_exists=True)
    return study


@contextmanager
def _creation_lock(url: str):
    """Workers on one machine open a SQLite study one at a time: Optuna's table creation and
    version stamping race otherwise (a clean-clone CI run lost a worker to it). Other URLs
    are opened at once, with retries (`_rdb_storage`)."""
    if not url.startswith("sqlite:///"):
        yield
        return
    with open(url.removeprefix("sqlite:///") + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _rdb_storage(url: str, engine: dict, heartbeat: dict, attempts: int = 6) -> optuna.storages.RDBStorage:
    """The RDB storage; workers that start at once race to create its tables, and the loser retries."""
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat)
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):
            # "table ... already exists", a duplicate version stamp: another worker is creating them
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def make_pruner(cfg: RunConfig) -> optuna.pruners.BasePruner:
    """Pruning on the per-fold reports (`tune.pruner`)."""
    if cfg.tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.tune.startup_trials, n_warmup_steps=0)
    if cfg.tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cfg.tune.folds, reduction_factor=3)
    return optuna.pruners.NopPruner()


def run_tune(cfg: RunConfig, space: dict, data: NumeraiData, out: str | Path, *, n_trials: int,
             timeout: float | None = None, storage: str | None = None, study_name: str = "dynjax", worker: int = 0,
             log: Callable[[str], None] = print, progress: Callable = lambda it, **kw: it,
             reference: Mapping[str, float] | None = None) -> optuna.Study:
    """Run trials until the study holds `n_trials` finished ones (or `timeout` seconds pass);
    `reference`: the benchmark's prediction per training id (`tune.metric=bmc` or `payout`). Values
    of the space the training eras cannot hold are left out first, each named (`fit_space`)."""
    check_space(space, cfg)
    config_folds(cfg, data)  # the base config itself must fit: a clear error, not a failed trial
    space, removed = fit_space(space, cfg, lambda c: folds_fit(c, data))
    if removed:
        log(f"left out of the search, too large for {data.train.index.n_eras} training eras with "
            f"{cfg.tune.folds} folds of {cfg.tune.fold_eras}: {', '.join(removed)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(cfg, space, storage_url(out, storage), study_name, worker)
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    if done >= n_trials:
        log(f"study {study_name!r} already holds {done} finished trials (n_trials {n_trials})")
        return study
    if cfg.tune.population > 1:

        optimize_population(study, cfg, space, data, out, n_trials=n_trials, timeout=timeout, log=log, progress=progress,
                            reference=reference)
        return study
    study.optimize(make_objective(cfg, space, data, out, progress, reference), timeout=timeout, catch=(FloatingPointError, ValueError),
                   callbacks=[MaxTrialsCallback(n_trials, states=FINISHED), lambda s, t: log(trial_line(t))])
    return study


def make_objective(cfg: RunConfig, space: dict, data: NumeraiData, out: Path, progress: Callable,
                   reference: Mapping[str, float] | None = None) -> Callable:
    """The Optuna objective: sample a config, walk forward through the folds, report each fold."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space, cfg)
        trial.set_user_attr("overrides", as_overrides(params))
        start = time.perf_counter()

        def report(fold: int, value: float) -> None:
            trial.report(value, fold)
            if trial.should_prune():
                trial.set_user_attr("train_s", time.perf_counter() - start)
                raise optuna.TrialPruned(f"fold {fold}: {value:.4f}")

        result = evaluate(apply_params(cfg, params), data, fresh_dir(trial_dir(out, trial.number)),
                          report, progress, reference)
        record_result(trial, result, time.perf_counter() - start)
        return result["value"]

    return objective


def write_outputs(study: optuna.Study, cfg: RunConfig, out: str | Path) -> dict[str, Any]:
    """best_config.json, trials.parquet, tune_summary.json and the plots; returns the summary."""
    out = Path(out)
    trials = study.get_trials(deepcopy=False)
    trials_table(trials).write_parquet(out / "trials.parquet")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    summary = {"study": study.study_name, "n_trials": len(trials),
               **{f"n_{s.name.lower()}": sum(t.state == s for t in trials) for s in TrialState}}
    baseline = [t for t in complete if t.user_attrs.get("baseline")]
    if baseline:
        summary["baseline"] = {"trial": baseline[0].number, "value": baseline[0].value}
    if complete:
        best = study.best_trial
        save_config(apply_params(cfg, best.params), out / "best_config.json")
        summary["best"] = {"trial": best.number, "value": best.value, "params": best.params,
                           "overrides": as_overrides(best.params), **{k: v for k, v in best.user_attrs.items()}}
    summary["plots"] = write_plots(study, out)
    write_json(out / "tune_summary.json", summary)
    return summary


def trials_table(trials: list[optuna.trial.FrozenTrial]) -> pl.DataFrame:
    """One row per trial: number, state, value, each parameter, each fold's report, result attributes."""
    rows = []
    for t in trials:
        row = {"number": t.number, "state": t.state.name, "value": t.value,
               "duration_s": t.duration.total_seconds() if t.duration else None,
               "baseline": bool(t.user_attrs.get("baseline", False))}
        row.update({f"params/{k}": float(v) if isinstance(v, int | float) else str(v) for k, v in t.params.items()})
        row.update({f"fold/{k}": v for k, v in sorted(t.intermediate_values.items())})
        row.update({k: t.user_attrs.get(k) for k in ("corr_mean", "corr_sharpe", "max_drawdown", "train_s")})
        row["overrides"] = " ".join(t.user_attrs.get("overrides", []))
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame({"number": []})


def write_plots(study: optuna.Study, out: Path) -> list[str]:
    """Optimisation history and parameter importances as PNG (needs matplotlib; importances need 2+ trials)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as ovm
    except ImportError:
        return []
    written = []
    plots = {"optimization_history.png": ovm.plot_optimization_history,
             "param_importances.png": ovm.plot_param_importances}
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    for name, plot in plots.items():
        if n_complete < (2 if name == "param_importances.png" else 1):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = plot(study)
            except (RuntimeError, ValueError):  # e.g. importances when no parameter varied
                continue
        ax.figure.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        written.append(name)
    return written


def _check_same_base(study: optuna.Study, cfg: RunConfig, space: dict) -> None:
    """Record the base config and space on a new study; refuse to mix them in a loaded one."""
    base = _comparable(cfg)
    stored = study.user_attrs.get("base_config")
    if stored is None:
        study.set_user_attr("base_config", base)
        study.set_user_attr("space", json.loads(json.dumps(space)))
        return
    diff = sorted(k for k in set(stored) | set(base) if stored.get(k) != base.get(k))
    if diff:
        raise ValueError(f"study {study.study_name!r} was started with another base config (differs in "
                         f"{', '.join(diff[:6])}); use another --study-name or the original config")
    if study.user_attrs.get("space") != json.loads(json.dumps(space)):
        raise ValueError(f"study {study.study_name!r} was started with another search space; use another --study-name")


def _comparable(cfg: RunConfig) -> dict[str, Any]:
    """The config as flat JSON values, without the data path (each machine has its own)."""
    flat = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        else:
            flat[prefix[:-1]] = value

    walk("", json.loads(json.dumps(to_dict(cfg))))
    flat.pop("data.data_dir", None)
    return flat
