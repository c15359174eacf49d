"""A study's trials on disk and in the log: their directories, recorded results and one-line summaries."""

import shutil
from pathlib import Path

import optuna
from optuna.trial import TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def record_result(trial: optuna.Trial, result: dict, seconds: float) -> None:
    for key in ("corr_mean", "corr_std", "corr_sharpe", "max_drawdown"):
        trial.set_user_attr(key, result[key])
    trial.set_user_attr("train_s", seconds)


def trial_dir(out: Path, number: int) -> Path:
    return Path(out) / "trials" / f"{number:04d}"


def fresh_dir(path: Path) -> Path:
    """`path`, emptied: a trial number is never reused within a study, so what is there is stale."""
    shutil.rmtree(path, ignore_errors=True)
    return path


def trial_line(t: optuna.trial.FrozenTrial) -> str:
    value = "" if t.value is None or t.state != TrialState.COMPLETE else f" value {t.value:.4f}"
    folds = " ".join(f"{v:.4f}" for _, v in sorted(t.intermediate_values.items()))
    secs = t.user_attrs.get("train_s")
    took = f" in {secs:.0f}s" if secs is not None else ""
    base = " (base config)" if t.user_attrs.get("baseline") else ""
    return f"trial {t.number}: {t.state.name.lower()}{value} (folds {folds}){took}{base}"
