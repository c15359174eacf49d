"""The search objective: a config's per-era corr over the walk-forward folds of the training eras."""

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from dynjax.config import RunConfig
from dynjax.data.numerai import NumeraiData
from dynjax.eval.contribution import era_contribution
from dynjax.eval.jax_corr import era_corr
from dynjax.eval.scores import payout, summarize
from dynjax.rundir import start_run_dir
from dynjax.tune.folds import Folds, fold_data, make_folds, min_pretrain_eras

# The per-era values are corr, BMC ("bmc") or Numerai's payout with BMC for MMC ("payout"); the metric their mean or Sharpe.
METRIC_KEYS = {"mean": "corr_mean", "sharpe": "corr_sharpe", "bmc": "corr_mean", "payout": "corr_mean"}
NEEDS_REFERENCE = ("bmc", "payout")


def config_folds(cfg: RunConfig, data: NumeraiData) -> Folds:
    """The folds of `data.train` for this config (ValueError if it has too few eras)."""
    need = min_pretrain_eras(cfg.data.window_eras, cfg.data.embargo_eras, cfg.train.holdout_eras if cfg.train.patience else 0)
    return make_folds(data.train.index.n_eras, cfg.tune.folds, cfg.tune.fold_eras, need)


def folds_fit(cfg: RunConfig, data: NumeraiData) -> bool:
    """Whether the training eras hold the config's folds and what each fold pretrains on."""
    try:
        config_folds(cfg, data)
    except ValueError:
        return False
    return True


def fold_metric(corr_E: list[float] | np.ndarray, metric: str) -> float:
    return summarize(np.asarray(corr_E))[METRIC_KEYS[metric]]


def evaluate(cfg: RunConfig, data: NumeraiData, out: str | Path, report: Callable[[int, float], None] | None = None,
             progress: Callable = lambda it, **kw: it, reference: Mapping[str, float] | None = None) -> dict:
    """Walk forward through the folds of `data.train` with `cfg`, the whole config a trial stands for.

    After each fold, `report(fold, metric over the eras scored so far)` (it may raise to stop the
    trial: Optuna's pruning). Writes the run to `out` (config, predictions, no checkpoints).
    Returns the metric over every scored era, per-fold values and the per-era corr (with
    `tune.metric=bmc`, the per-era BMC beyond `reference`, the benchmark's prediction per id;
    with `payout`, the per-era payout of the corr and that BMC: `era_score`).
    """
    keep_going = lambda g, fold, value: report is None or report(fold, value) or True
    return evaluate_population(cfg, None, data, out, keep_going, progress, reference)[0]


def era_score(cfg: RunConfig, pred_R: np.ndarray, y_R: np.ndarray, ref_R: np.ndarray | None) -> float:
    """One scored era's value under `tune.metric`: corr, BMC beyond `ref_R`, or the payout of both."""
    if cfg.tune.metric == "bmc":
        return era_contribution(pred_R, ref_R, y_R)
    corr = float(era_corr(pred_R, y_R))
    if cfg.tune.metric != "payout":
        return corr
    e = cfg.eval
    return float(payout(corr, era_contribution(pred_R, ref_R, y_R), e.payout_corr, e.payout_mmc))


class AllPruned(Exception):
    """Every trial of a population was pruned: the walk-forward stops."""


def evaluate_population(cfg: RunConfig, hyper_G: dict[str, list[float]] | None, data: NumeraiData, out: str | Path,
                        report: Callable[[int, int, float], bool], progress: Callable = lambda it, **kw: it,
                        reference: Mapping[str, float] | None = None) -> list[dict]:
    """`evaluate` for a population of G trials that differ only in the floats of `hyper_G`, trained as one.

    `report(g, fold, value)` returns False once trial g is pruned; its later folds are not
    reported, and the run stops when no trial is left. Results per trial, with `pruned_fold`.
    """
    from dynjax.train.walk_forward import walk_forward  # jax imports only when training

    if cfg.tune.metric in NEEDS_REFERENCE and reference is None:
        raise ValueError(f"tune.metric={cfg.tune.metric} needs the benchmark's predictions of the training eras "
                         "(train_benchmark_models.parquet in the data directory)")
    folds = config_folds(cfg, data)
    fdata = fold_data(data, folds)
    scored, fold_eras = fdata.validation, cfg.tune.fold_eras
    groups = 1 if hyper_G is None else len(next(iter(hyper_G.values())))
    corr_GxE, fold_GxQ = [[] for _ in range(groups)], [[] for _ in range(groups)]
    pruned = [None] * groups

    def on_era(k: int, e: int, pred_GxR: np.ndarray) -> None:
        rows = scored.index.labeled_rows(k)  # the k-th predicted era is the k-th scored era
        y_R = scored.y_NxT[rows, 0]
        ref_R = None
        if cfg.tune.metric in NEEDS_REFERENCE:
            ref_R = np.array([reference[i] for i in scored.ids[rows.start:rows.stop]])
        for g, pred_R in enumerate(pred_GxR):
            corr_GxE[g].append(era_score(cfg, pred_R[: rows.stop - rows.start], y_R, ref_R))
        if len(corr_GxE[0]) % fold_eras:
            return
        for g in range(groups):
            if pruned[g] is None:
                fold_GxQ[g].append(fold_metric(corr_GxE[g], cfg.tune.metric))
                if not report(g, len(fold_GxQ[g]) - 1, fold_GxQ[g][-1]):
                    pruned[g] = len(fold_GxQ[g]) - 1
        if all(p is not None for p in pruned):
            raise AllPruned

    start_run_dir(out, cfg)
    try:
        walk_forward(cfg, fdata, out, checkpoints=False, on_era=on_era, progress=progress, hyper_G=hyper_G)
    except AllPruned:
        pass
    return [{"value": fold_metric(corr_GxE[g], cfg.tune.metric), "fold_values": fold_GxQ[g], "pruned_fold": pruned[g],
             "corr_E": [float(c) for c in corr_GxE[g]], **summarize(np.asarray(corr_GxE[g]))} for g in range(groups)]
