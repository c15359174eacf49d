"""Hyperparameter search (`dynjax tune`): Optuna over purged walk-forward folds of the training eras."""

from dynjax.config import POPULATION_PATHS
from dynjax.tune.folds import Folds, fold_data, make_folds
from dynjax.tune.objective import evaluate
from dynjax.tune.space import DEFAULT_SPACE, apply_params, check_space, load_space
from dynjax.tune.study import open_study, run_tune, write_outputs

__all__ = [
    "DEFAULT_SPACE",
    "POPULATION_PATHS",
    "Folds",
    "apply_params",
    "check_space",
    "evaluate",
    "fold_data",
    "load_space",
    "make_folds",
    "open_study",
    "run_tune",
    "write_outputs",
]
