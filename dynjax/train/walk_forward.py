"""The main job: pretrain on resolved eras, then walk forward era by era.

For each predicted era t (validation eras in order, then live): offer the eras that have
resolved to the replay buffer, update the model on the window of resolved eras ending at
t - 1 - embargo (warm start, plus replayed eras), predict era t with the current selection
mask and era context, refresh the selection state from era t's attention, checkpoint.
A run killed anywhere resumes from its latest checkpoint and writes the same predictions
as an uninterrupted run: every random draw is a function of (seed, phase, era, step).
"""

import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from dynjax.config import RunConfig, to_dict
from dynjax.data.eras import resolved_eras, sliding_windows
from dynjax.data.numerai import NumeraiData
from dynjax.eval.jax_corr import era_corr
from dynjax.model.selection import update_selection
from dynjax.train.checkpoint import RunCheckpoints
from dynjax.train.outputs import (
    PARTS,
    MetricsLog,
    ResolvedScores,
    collect_parts,
    era_ids,
    prediction_frame,
    write_part,
)
from dynjax.train.replay import offer
from dynjax.train.run import (
    PRETRAIN,
    WALK,
    RunContext,
    batch_for,
    make_run_context,
    predict_era,
    raw_outputs,
    sampling_rng,
    train_step,
    update_batch,
)
from dynjax.train.state import RunState

__all__ = ["MetricsLog", "walk_forward"]


def walk_forward(cfg: RunConfig, data: NumeraiData, out: str | Path, *, stop_after: int | None = None,
                 progress: Callable = lambda it, **kw: it, trial: bool = False,
                 on_era: Callable[[int, int, np.ndarray], None] | None = None, hyper_G: dict | None = None) -> dict:
    """Run (or resume) the walk-forward; writes predictions, selection and checkpoints to `out`.

    `stop_after` ends the run after that many walk-forward eras (to test kill-and-resume).
    `trial=True` (a hyperparameter trial) saves no checkpoints (the run cannot resume) and no
    frozen-model comparison.
    `on_era(k, e, pred_GxR)` sees each walk-forward prediction as it is made (k-th predicted
    era, timeline position e); an exception it raises ends the run there. `hyper_G` runs a
    population sweep of G trials (see `make_run_context`); its files hold trial 0's predictions,
    `on_era` sees every trial's. Returns timings.
    """
    # Setup
    out = Path(out)
    run = make_run_context(cfg, data, hyper_G)
    timeline, predicted, timings = run.timeline, run.predicted, run.timings
    log = MetricsLog(out / "metrics.jsonl")
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    ckpt = RunCheckpoints(out / "checkpoints", keep=cfg.train.keep_checkpoints) if not trial else _NoCheckpoints()
    meta = lambda cursor: {"cursor": cursor, "config": to_dict(cfg)}

    # Resume or pretrain
    latest = ckpt.latest_step()
    if latest is not None:
        state = ckpt.restore_state(latest, jax.eval_shape(run.fresh_state))
        cursor = int(ckpt.restore_meta(latest)["cursor"])
    else:
        with _timed(timings, "train_s"):
            state, holdout_value = pretrain(run, run.fresh_state(), log, progress)
        if not trial:
            write_frozen(run, state, out)
        cursor = 0
        ckpt.save(0, state, meta(0), holdout_value)

    # Walk forward
    walk_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), WALK)
    scores = ResolvedScores(out, timeline, cfg.data.embargo)
    for k in progress(range(cursor, len(predicted)), initial=cursor, total=len(predicted), desc="walk-forward"):
        e = int(predicted[k])
        resolved = timeline.resolved(e, cfg.data.embargo)
        with _timed(timings, "train_s"):
            state = offer_resolved(run, state, resolved)
            if k % cfg.train.update_every == 0 and cfg.train.steps_per_update:
                window = resolved[-cfg.data.window_eras:]
                for s in range(cfg.train.steps_per_update):
                    batch = update_batch(run, window, state.replay, sampling_rng(run, WALK, k, s))
                    state, metrics = train_step(run, state, batch, walk_key)
                log.write(phase="walk", era=timeline.name(e), **{f"train/{m}": v for m, v in metrics.items()},
                          **{"select/n_features": int(state.selection.mask_F.sum())})

        # Predict, then refresh the selection from this era's attention
        with _timed(timings, "predict_s"):
            pred_GxR, importance_F, used_F = predict_era(run, state, e)
            write_part(out, timeline, e, pred_GxR[0], importance_F, used_F)
            state = state.replace(selection=update_selection(state.selection, jnp.asarray(importance_F), cfg.selection))
        if on_era is not None:
            on_era(k, e, pred_GxR)

        # Checkpoint
        if not trial:
            with _timed(timings, "checkpoint_s"):
                ckpt.save(k + 1, state, meta(k + 1), scores.mean_until(e, predicted[: k + 1]))
        if stop_after is not None and k + 1 - cursor >= stop_after:
            ckpt.close()
            return timings
    ckpt.close()
    collect_parts(out)
    return timings


def pretrain(run: RunContext, state: RunState, log: MetricsLog, progress) -> tuple[RunState, float]:
    """Epochs of sliding windows over eras resolved before the first prediction; early stopping."""
    cfg, timeline = run.cfg, run.timeline
    resolved = timeline.resolved(int(run.predicted[0]), cfg.data.embargo)
    holdout = resolved[-cfg.train.holdout_eras:]
    # The fitting eras end `embargo` eras before the holdout, so holdout targets never leak.
    fit = resolved[resolved_eras(timeline.numbers_E[resolved], int(timeline.numbers_E[holdout[0]]), cfg.data.embargo)]
    windows = sliding_windows(fit, cfg.data.window_eras, cfg.train.window_stride)
    if len(windows) == 0:
        raise ValueError(f"too few resolved eras to pretrain: {len(fit)} fit eras for windows of {cfg.data.window_eras}")
    key = jax.random.fold_in(run.root_key, PRETRAIN)
    # Copies, not references: the train step donates (frees) the state it is given. Early
    # stopping is per trial (G = 1 but in a population sweep): each keeps its own best epoch.
    best, best_G, since_G = jax.tree.map(jnp.copy, state), holdout_corr(run, state, holdout), np.zeros(run.groups, int)
    n_steps = 0  # counted on the host: reading state.train.step would sync every step
    for epoch in range(cfg.train.pretrain_epochs):
        order = sampling_rng(run, PRETRAIN, epoch).permutation(len(windows))
        for i in progress(order, desc=f"pretrain epoch {epoch + 1}/{cfg.train.pretrain_epochs}"):
            batch = batch_for(run, windows[i], sampling_rng(run, PRETRAIN, epoch, int(i)))
            state, metrics = train_step(run, state, batch, key)
            n_steps += 1
            if n_steps % cfg.train.log_every == 0:
                log.write(phase="pretrain", epoch=epoch, step=n_steps, **{f"train/{m}": v for m, v in metrics.items()})
        corr_G = holdout_corr(run, state, holdout)
        log.write(phase="pretrain", epoch=epoch, step=n_steps, **{"eval/corr_mean": float(corr_G.mean())})
        better_G = (corr_G > best_G) & (since_G < cfg.train.patience)  # a stopped trial stays stopped
        best = keep_better(best, state, np.repeat(better_G, cfg.train.ensemble))
        best_G, since_G = np.where(better_G, corr_G, best_G), np.where(better_G, 0, since_G + 1)
        if (since_G >= cfg.train.patience).all():
            break
    # The selection state starts from the best model's importances over the holdout eras.
    for e in holdout:
        _, importance_F, _ = predict_era(run, best, int(e))
        best = best.replace(selection=update_selection(best.selection, jnp.asarray(importance_F), cfg.selection))
    return best, float(best_G.mean())


def keep_better(best: RunState, state: RunState, better_N: np.ndarray) -> RunState:
    """`best` with the members flagged in `better_N` replaced by copies of `state`'s."""
    if better_N.all():
        return jax.tree.map(jnp.copy, state)
    if not better_N.any():
        return best
    pick = lambda new, old: jnp.where(better_N.reshape(-1, *[1] * (new.ndim - 1)), new, old)
    return best.replace(train=jax.tree.map(pick, state.train, best.train))


def holdout_corr(run: RunContext, state: RunState, holdout: np.ndarray) -> np.ndarray:
    """Mean Numerai corr of the state's predictions over the holdout eras, per trial: [G]."""
    corrs = []
    for e in holdout:
        split, local = run.timeline.era(int(e))
        rows = split.index.labeled_rows(local)
        pred_GxR, _, _ = predict_era(run, state, int(e))
        corrs.append([era_corr(p[: rows.stop - rows.start], split.y_NxT[rows, 0]) for p in pred_GxR])
    return np.mean(corrs, axis=0)


def offer_resolved(run: RunContext, state: RunState, resolved: np.ndarray) -> RunState:
    """Offer the eras that resolved since the last offer to the replay buffer (if there is one)."""
    if state.replay is None:
        return state
    new = resolved[int(state.replay.n_seen):]
    return state.replace(replay=offer(state.replay, new, lambda eras: raw_outputs(run, state, eras), run.cfg.seed))


def write_frozen(run: RunContext, state: RunState, out: Path) -> None:
    """Predictions of the model frozen after pretraining, for the report's comparison."""
    frames = [prediction_frame(era_ids(run.timeline, int(e)), run.timeline.name(int(e)), predict_era(run, state, int(e))[0][0])
              for e in run.predicted]
    pl.concat(frames).write_parquet(out / "predictions_frozen.parquet")


class _NoCheckpoints:
    """Stands in for `RunCheckpoints` in a run that keeps none."""

    def latest_step(self) -> None:
        return None

    def save(self, *args) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def _timed(timings: dict, key: str):
    """Adds the wall time of a `with` block to `timings[key]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] += time.perf_counter() - start
