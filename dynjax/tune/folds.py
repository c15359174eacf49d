"""Walk-forward folds over the training eras, for hyperparameter search.

The last `n_folds * fold_eras` eras of a split are scored, era by era, by the walk-forward
procedure itself: it pretrains on the eras before them and, for each scored era t, trains
only on eras whose targets are resolved at t (numbers <= t - 1 - embargo, the one rule in
`dynjax.data.eras`). The scored eras form `n_folds` consecutive blocks, one pruning report
each. Validation and live eras are never part of a fold.
"""

from dataclasses import dataclass

import numpy as np

from dynjax.data.numerai import EraData, NumeraiData, take_eras


@dataclass(frozen=True)
class Folds:
    n_pretrain: int  # eras [0, n_pretrain) of the split pretrain (the walk-forward purges the embargo)
    scored_QxE: np.ndarray  # split positions of each fold's scored eras


def make_folds(n_eras: int, n_folds: int, fold_eras: int, min_pretrain: int = 1) -> Folds:
    """Fold `k` scores eras `n_pretrain + k*fold_eras ... + fold_eras - 1` of a split of `n_eras`."""
    n_scored = n_folds * fold_eras
    if n_eras - n_scored < min_pretrain:
        raise ValueError(f"{n_eras} training eras cannot hold {n_folds} folds of {fold_eras} scored eras and "
                         f"{min_pretrain} eras to pretrain on; lower tune.folds or tune.fold_eras")
    start = n_eras - n_scored
    return Folds(start, start + np.arange(n_scored).reshape(n_folds, fold_eras))


def min_pretrain_eras(window_eras: int, embargo: int, holdout_eras: int = 0) -> int:
    """Eras a fold's walk-forward needs before its first scored era: one window past the embargo
    (and with early stopping the holdout past a second embargo)."""
    return window_eras + embargo + 1 + (holdout_eras + embargo if holdout_eras else 0)


def fold_data(data: NumeraiData, folds: Folds) -> NumeraiData:
    """The walk-forward's data for the folds: pretraining eras as `train`, scored eras as `validation`."""
    train: EraData = data.train
    end = int(folds.scored_QxE[-1, -1]) + 1
    return NumeraiData(take_eras(train, 0, folds.n_pretrain), take_eras(train, folds.n_pretrain, end), None,
                       data.metadata)
