"""The main job: pretrain on resolved eras, then walk forward era by era.

For each walk-forward era t (the validation eras, in order): offer the eras that have
resolved to the replay buffer, update the model on the window of resolved eras ending at
t - 1 - embargo (warm start, plus replayed eras), predict era t with the current selection
mask and era context, refresh the selection state from era t's attention, checkpoint.
Then the same update for the era after the last, whose state (`out/next/`) predicts the
live eras, now and in `dynjax predict`.
A run killed anywhere resumes from its latest checkpoint and writes the same predictions
as an uninterrupted run: every random draw is a function of (seed, phase, era, step). Given
newer data (more validation eras, a new live file) the same call continues the run over
the eras it has not predicted yet, and predicts what a fresh run over those data would.
"""

import shutil
import warnings
from collections.abc import Callable
from contextlib import closing, nullcontext
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

from dynjax.config import RunConfig, to_dict
from dynjax.data.eras import sliding_windows
from dynjax.data.numerai import NumeraiData, feature_columns
from dynjax.eval.jax_corr import era_corr
from dynjax.model.selection import update_selection
from dynjax.rundir import check_writable, write_json
from dynjax.train.checkpoint import RunCheckpoints
from dynjax.train.hedge import mixture_weights, update_hedge
from dynjax.train.history import ChangedHistory, History
from dynjax.train.interrupt import Interrupted, StopRequest, stop_requests
from dynjax.train.next_era import save_next
from dynjax.train.outputs import (
    LIVE,
    PARTS,
    MetricsLog,
    ResolvedScores,
    collect_parts,
    era_ids,
    prediction_frame,
    write_part,
)
from dynjax.train.processes import is_writer
from dynjax.train.replay import offer
from dynjax.train.run import (
    PRETRAIN,
    REFIT,
    WALK,
    WARM,
    RunContext,
    batch_for,
    make_run_context,
    mixture_corr,
    predict_era,
    pretrain_plan,
    raw_outputs,
    sampling_rng,
    score_resolved,
    train_step,
    update_batch,
)
from dynjax.train.state import (
    RunState,
    expert_mixtures,
    hedge_learns,
    hedge_start,
    per_member,
    set_anchor,
)
from dynjax.train.timing import new_timings, timed

__all__ = ["Interrupted", "MetricsLog", "walk_forward"]


def walk_forward(cfg: RunConfig, data: NumeraiData, out: str | Path, *, stop_after: int | None = None,
                 progress: Callable = lambda it, **kw: it, checkpoints: bool = True,
                 on_era: Callable[[int, int, np.ndarray], None] | None = None, hyper_G: dict | None = None,
                 on_start: Callable[[int], None] | None = None) -> dict:
    """Run, resume or update the walk-forward; writes predictions, selection and checkpoints to `out`.

    A run directory with checkpoints continues from the latest readable one, after checking
    that `data` hold the eras it has used unchanged (`ChangedHistory` otherwise): a killed
    run resumes, and a run given newer data (more validation eras, a new live file) walks
    forward over the eras it has not predicted yet (`dynjax update`). Live eras are then
    predicted by the model as it stands for the era after the history (`next_era`).
    `stop_after` ends the run after that many walk-forward eras (to test kill-and-resume).
    SIGINT/SIGTERM end it cleanly after the current era's checkpoint (`Interrupted`).
    `checkpoints=False` (a hyperparameter trial) runs with no checkpointer: it saves nothing to
    resume from, no frozen-model comparison and no next-era state, and ignores stop signals.
    `on_era(k, e, pred_GxR)` sees each walk-forward prediction as it is made (k-th predicted
    era, timeline position e); an exception it raises ends the run there. `hyper_G` runs a
    population sweep of G trials (see `make_run_context`); its files hold trial 0's predictions,
    `on_era` sees every trial's. `on_start(cursor)` runs once the data are accepted (as the
    history of the checkpoint restored, or with none to check), before any training. Returns timings.
    """
    # Setup
    out = Path(out)
    run = make_run_context(cfg, data, hyper_G)
    timeline, history, timings = run.schedule.timeline, run.schedule.predicted, new_timings()
    log = MetricsLog(out / "metrics.jsonl")
    abstract = run.abstract_state()
    ckpt = None
    if checkpoints:
        check_writable(out, _need_bytes(run, abstract))
        ckpt = RunCheckpoints(out / "checkpoints", keep=cfg.train.keep_checkpoints)
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    if run.cfg.model.pairs and is_writer():
        write_pairs(out, run.cfg.model.pair_index, data.train.features)
    meta = lambda cursor, record: {"cursor": cursor, "config": to_dict(cfg)} | ({"history": record.to_json()} if record else {})

    # Closing the manager, also on an error, lets the last background checkpoint write finish.
    with stop_requests(enabled=ckpt is not None) as stop, closing(ckpt) if ckpt is not None else nullcontext():
        # Resume (or update) from the latest readable checkpoint, or pretrain
        restored = ckpt.restore_latest(abstract) if ckpt is not None else None
        if restored is not None:
            _, state, saved = restored
            cursor, record = int(saved["cursor"]), _saved_history(saved, timeline, history)
            record.check(timeline, history)
        else:
            cursor, record = 0, History.start(timeline) if ckpt is not None else None
        if on_start is not None:
            on_start(cursor)
        if restored is None:
            with timed(timings, "train_s", compiles="compile_s"):
                state, holdout_value = pretrain(run, run.fresh_state(), log, progress, stop)
            if ckpt is not None:
                ckpt.save(0, run.place(state), meta(0, record), holdout_value)

        # Walk forward
        walk_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), WALK)
        scores = ResolvedScores(out, timeline, cfg.data.embargo_eras)
        for k in progress(range(cursor, len(history)), initial=cursor, total=len(history), desc="walk-forward"):
            e = int(history[k])
            with timed(timings, "train_s", compiles="compile_s"):
                state = advance(run, state, k, int(timeline.numbers_E[e]), walk_key, log, timeline.name(e))

            # Predict, then refresh the selection from this era's attention
            with timed(timings, "predict_s"):
                pred_GxR, importance_F, used_F = predict_era(run, state, e)
                write_part(out, timeline, e, pred_GxR[0], importance_F, used_F)
                scores.add(e, pred_GxR[0])
                state = state.replace(selection=update_selection(state.selection, jnp.asarray(importance_F), cfg.selection))
            if on_era is not None:
                on_era(k, e, pred_GxR)

            # Checkpoint
            if ckpt is not None:
                with timed(timings, "checkpoint_s"):
                    record.add(timeline, history, k, cfg.data.embargo_eras)
                    ckpt.save(k + 1, run.place(state), meta(k + 1, record), scores.mean_until(e, history[: k + 1]))
            if stop.signal:
                raise Interrupted(f"stopped by {stop.signal} after era {timeline.name(e)} (walk-forward era {k + 1} of "
                                  f"{len(history)}, checkpointed)", stop.signum)
            if stop_after is not None and k + 1 - cursor >= stop_after:
                return timings

        # The era after the history: one more update, then the live eras
        if ckpt is not None:
            with timed(timings, "train_s", compiles="compile_s"):
                state = advance(run, state, len(history), run.schedule.next_number, walk_key, log, "next")
            with timed(timings, "checkpoint_s"):
                write_next(run, data, state, out)
            with timed(timings, "predict_s"):
                write_live(run, state, out)
                write_frozen(run, ckpt, abstract, out)
    collect_parts(out, [timeline.name(int(e)) for e in history])
    return timings


def advance(run: RunContext, state: RunState, k: int, t: int, walk_key: jax.Array, log: MetricsLog, name: str,
            phase: int = WALK) -> RunState:
    """The walk-forward's update before its k-th era (era number `t`): offer the eras resolved
    by then to the replay buffer, and every `update_every` eras train on the latest resolved window
    (`phase` WARM: the same over the pretraining holdout, from its own sampling streams)."""
    cfg = run.cfg
    resolved = run.schedule.timeline.resolved_at(t, cfg.data.embargo_eras)
    state = score_resolved(run, state, resolved, log)  # before any training on them: out-of-sample scores
    state = offer_resolved(run, state, resolved)
    if k % cfg.train.update_every == 0 and cfg.train.steps_per_update:
        for s in range(cfg.train.steps_per_update):
            batch = update_batch(run, resolved, state.replay, sampling_rng(run, phase, k, s))
            state, metrics = train_step(run, state, batch, walk_key, update=True)
        mix_XxN = expert_mixtures(cfg)
        pi_GxX = mixture_weights(state.hedge, cfg.train.hedge_eta, len(mix_XxN))
        log.write(phase="walk" if phase == WALK else "warm", era=name, **{f"train/{m}": v for m, v in metrics.items()},
                  **{"select/n_features": int(state.selection.mask_F.sum())},
                  **{f"hedge/weight_{m}": float(w) for m, w in enumerate((pi_GxX @ mix_XxN).reshape(-1))},
                  **{f"hedge/mixture_{c}": float(p) for c, p in enumerate(pi_GxX.reshape(-1))})
    return state


def pretrain(run: RunContext, state: RunState, log: MetricsLog, progress, stop: StopRequest | None = None) -> tuple[RunState, float]:
    """Epochs of windows over eras resolved before the first prediction, early stopping on the
    holdout; then (`train.refit`) the same training again from the same init on every resolved
    era, holdout included, for the epochs early stopping chose. Without early stopping
    (`train.warm_walk`) the epochs fit the eras before the holdout, and the walk-forward's own
    updates then walk over the holdout: Hedge enters validation with weights learned out of sample.

    A stop request (SIGINT/SIGTERM) drops pretraining: nothing is checkpointed before it ends.
    """
    cfg, timeline = run.cfg, run.schedule.timeline
    resolved, fit, holdout, windows = pretrain_plan(cfg, timeline, int(run.schedule.predicted[0]))
    fresh = jax.tree.map(jnp.copy, state) if cfg.train.refit and cfg.train.patience else None
    # Copies, not references: the train step donates (frees) the state it is given. Early
    # stopping is per trial (G = 1 but in a population sweep): each keeps its own best epoch.
    # A constant initial prediction has no corr (NaN): any trained epoch beats it.
    best_G = np.nan_to_num(holdout_corr(run, state, holdout), nan=-np.inf)
    best, since_G = jax.tree.map(jnp.copy, state), np.zeros(run.groups, int)
    epoch_G = np.full(run.groups, -1)  # each trial's best epoch (-1: the initial state)
    for epoch, trained in pretrain_epochs(run, state, fit, len(windows), PRETRAIN, log, progress, stop):
        corr_G = np.nan_to_num(holdout_corr(run, trained, holdout), nan=-np.inf)
        log.write(phase="pretrain", epoch=epoch, **{"eval/corr_mean": float(corr_G.mean())})
        better_G = (corr_G > best_G) & (since_G < cfg.train.patience)  # a stopped trial stays stopped
        if not cfg.train.patience:  # no early stopping: the last epoch, whatever the holdout says
            better_G = np.ones(run.groups, bool)
        best = keep_better(best, trained, np.repeat(better_G, cfg.train.ensemble))
        best_G, since_G = np.where(better_G, corr_G, best_G), np.where(better_G, 0, since_G + 1)
        epoch_G = np.where(better_G, epoch, epoch_G)
        if cfg.train.patience and (since_G >= cfg.train.patience).all():
            break
    # Hedge's scores start from the members' holdout corr (eras they had not trained on); online, it
    # scores eras from the first the pretrained model has not seen. The warm walk instead scores the
    # eras after the fit ones as it walks over them, as the walk-forward does.
    warm = cfg.train.warm_walk and not cfg.train.patience
    best = keep_pretrained(best)
    hedge = hedge_start(cfg, run.groups, len(fit) if warm else len(resolved))
    if hedge_learns(cfg) and cfg.train.patience:
        hedge = update_hedge(hedge, mixture_corr(run, best, holdout, log), cfg.train.hedge_decay)
    if cfg.train.refit and cfg.train.patience:
        best = keep_pretrained(refit(run, fresh, resolved, epoch_G, log, progress, stop))
    # `optim.anchor`: from here on the updates pull toward the model as pretraining leaves it.
    pull_N = per_member(cfg.optim.anchor_members, cfg.train.ensemble) * run.groups
    best = best.replace(hedge=hedge, train=set_anchor(best.train, pull_N))
    if warm:
        best = warm_walk(run, best, holdout, log)
    # The selection state starts from the best model's importances over the holdout eras.
    for e in holdout:
        _, importance_F, _ = predict_era(run, best, int(e))
        best = best.replace(selection=update_selection(best.selection, jnp.asarray(importance_F), cfg.selection))
    return best, float(np.nan_to_num(best_G, neginf=0.0).mean())


def warm_walk(run: RunContext, state: RunState, holdout: np.ndarray, log: MetricsLog) -> RunState:
    """The walk-forward's updates over the pretraining holdout, predicting nothing: each era's
    update first scores the eras resolved by then for Hedge (out of sample), then trains on them."""
    timeline, key = run.schedule.timeline, jax.random.fold_in(jax.random.wrap_key_data(state.rng), WARM)
    for k, e in enumerate(holdout):
        state = advance(run, state, k, int(timeline.numbers_E[e]), key, log, timeline.name(int(e)), phase=WARM)
    return state


def keep_pretrained(state: RunState) -> RunState:
    """The members' EMA params as they stand, kept as their pretrained copies (where the run keeps them)."""
    if state.pretrained is None:
        return state
    return state.replace(pretrained=jax.tree.map(jnp.copy, state.train.ema_params))


def refit(run: RunContext, state: RunState, resolved: np.ndarray, epoch_G: np.ndarray, log: MetricsLog, progress,
          stop: StopRequest | None) -> RunState:
    """Pretraining again from `state` (the same init) on every resolved era, each trial for its
    early-stopped number of epochs, so that the model after pretraining has seen the holdout: the
    latest resolved eras, the ones most like the eras it predicts next."""
    cfg = run.cfg
    n_steps = len(sliding_windows(resolved, cfg.data.window_eras, cfg.train.window_stride))
    best = jax.tree.map(jnp.copy, state)  # trials whose initial state was best (epoch -1)
    if (epoch_G < 0).all():
        return best
    epochs = pretrain_epochs(run, state, resolved, n_steps, REFIT, log, progress, stop, int(epoch_G.max()) + 1)
    for epoch, trained in epochs:
        best = keep_better(best, trained, np.repeat(epoch_G == epoch, cfg.train.ensemble))
    return best


def pretrain_epochs(run: RunContext, state: RunState, eras: np.ndarray, steps: int, phase: int, log: MetricsLog,
                    progress, stop: StopRequest | None, n_epochs: int | None = None):
    """Yields `(epoch, state)` after each epoch of `steps` windows over `eras` (sliding windows,
    or W eras drawn at random per step: `train.pretrain_windows`), from the stream of `phase`."""
    cfg = run.cfg
    key = jax.random.fold_in(run.root_key, PRETRAIN)
    windows = sliding_windows(eras, cfg.data.window_eras, cfg.train.window_stride)
    n_steps = 0  # counted on the host: reading state.train.step would sync every step
    n_epochs = cfg.train.pretrain_epochs if n_epochs is None else n_epochs
    for epoch in range(n_epochs):
        order = sampling_rng(run, phase, epoch).permutation(len(windows))[:steps]
        for i in progress(order, desc=f"pretrain epoch {epoch + 1}/{n_epochs}" + (" (refit)" if phase == REFIT else "")):
            rng = sampling_rng(run, phase, epoch, int(i))
            window = (windows[i] if cfg.train.pretrain_windows == "sliding"
                      else np.sort(rng.choice(eras, cfg.data.window_eras, replace=False)))
            state, metrics = train_step(run, state, batch_for(run, window, rng), key)
            n_steps += 1
            if stop is not None and stop.signal:
                raise Interrupted(f"stopped by {stop.signal} during pretraining (epoch {epoch + 1}, step {n_steps}); "
                                  "pretraining starts again on resume", stop.signum)
            if n_steps % cfg.train.log_every == 0:
                log.write(phase="pretrain" if phase == PRETRAIN else "refit", epoch=epoch, step=n_steps,
                          **{f"train/{m}": v for m, v in metrics.items()})
        yield epoch, state


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
        split, local = run.schedule.timeline.era(int(e))
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


def write_pairs(out: Path, pair_index: tuple[int, ...], features: tuple[str, ...]) -> None:
    """`out/pairs.json`: the feature pairs the screen kept (`model.pairs`), strongest first."""
    pairs = [[features[f], features[g]] for f, g in zip(pair_index[0::2], pair_index[1::2])]
    write_json(out / "pairs.json", {"n_pairs": len(pairs), "pairs": pairs})


def write_next(run: RunContext, data: NumeraiData, state: RunState, out: Path) -> None:
    """`out/next/`: the state for the era after the history and what predicting it needs."""
    train_file = Path(data.train.source)
    columns = tuple(feature_columns(train_file)) if train_file.is_file() else None
    after = run.schedule.timeline.name(int(run.schedule.predicted[-1])) if len(run.schedule.predicted) else run.schedule.timeline.name(data.train.index.n_eras - 1)
    save_next(out, run.cfg, run.place(state), number=run.schedule.next_number, after=after, features=data.train.features,
              feature_columns=columns, context=run.features.next_context, imputer=data.imputer)


def write_live(run: RunContext, state: RunState, out: Path) -> None:
    """Predictions and importances of the live eras (replacing an earlier round's)."""
    live_parts = out / PARTS / LIVE
    if is_writer():
        shutil.rmtree(live_parts, ignore_errors=True)
        live_parts.mkdir(parents=True)
    for e in run.schedule.live:
        pred_GxR, importance_F, used_F = predict_era(run, state, int(e))
        write_part(out, run.schedule.timeline, int(e), pred_GxR[0], importance_F, used_F, live=True)


def write_frozen(run: RunContext, ckpt: RunCheckpoints, abstract: RunState, out: Path) -> None:
    """Predictions of the model frozen after pretraining (checkpoint 0), for the report's
    comparison: eras the file lacks (all of them in a new run, the added ones in an update)."""
    path, timeline = out / "predictions_frozen.parquet", run.schedule.timeline
    names = [timeline.name(int(e)) for e in run.schedule.predicted]
    have = pl.read_parquet(path).filter(pl.col("era").is_in(names)) if path.is_file() else None
    done = set() if have is None else set(have["era"].unique())
    todo = [int(e) for e, name in zip(run.schedule.predicted, names) if name not in done] + [int(e) for e in run.schedule.live]
    if 0 not in ckpt.manager.all_steps():
        warnings.warn(f"{out}: checkpoint 0 (the model after pretraining) is gone; frozen-model predictions not extended",
                      stacklevel=2)
        return
    frozen = ckpt.restore_state(0, abstract)
    frames = [prediction_frame(era_ids(timeline, e), timeline.name(e), predict_era(run, frozen, e)[0][0]) for e in todo]
    if is_writer():
        pl.concat(([have] if have is not None else []) + frames).write_parquet(path)


def _saved_history(saved: dict, timeline, history: np.ndarray) -> History:
    """The checkpoint's history record (one written before records existed starts afresh, with a warning)."""
    if "history" in saved:
        return History.from_json(saved["history"])
    if int(saved["cursor"]) > len(history):
        raise ChangedHistory(f"the checkpoint has walked forward over {saved['cursor']} eras, but the data hold "
                             f"{len(history)} after the training eras: older data, or a run of an earlier dynjax that "
                             "counted the live era among them (start a new run)")
    warnings.warn("the checkpoint records no history, so the data cannot be checked against it", stacklevel=2)
    return History.start(timeline)


def _need_bytes(run: RunContext, abstract: RunState) -> int:
    """About what a run writes: its kept checkpoints plus the next-era state, and prediction files."""
    state_bytes = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(abstract))
    n_rows = sum(s.n_rows for s in run.schedule.timeline.splits[1:])
    return (run.cfg.train.keep_checkpoints + 3) * state_bytes + 200 * n_rows
