"""The main job: pretrain on resolved eras, then walk forward era by era.

One walk-forward era t is two steps, each a pure function of the run state:
  `advance`             score Hedge's mixtures on the eras that have just resolved (before any
                        member trains on them: out of sample), then update each member on eras
                        from its memory of those resolved by t - 1 - embargo;
  `predict_and_select`  predict era t as the members' ranks mixed by Hedge's weights, and
                        refresh the selection state from era t's attention.
`walk_forward` drives them: it resumes from the latest checkpoint or pretrains, writes each
era's outputs and log, checkpoints, honours stop signals and the tuner's hooks, and after the
last era takes one more update, whose state (`out/next/`) predicts the live eras now and in
`dynjax predict`. A run killed anywhere resumes and writes the same predictions as an
uninterrupted run: every random draw is a function of (seed, phase, era, step). Given newer
data (more validation eras, a new live file) the same call continues the run over the eras it
has not predicted yet, and predicts what a fresh run over those data would.
"""

import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
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
from dynjax.train.hedge import init_hedge, update_hedge
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
from dynjax.train.policy import chosen, chosen_mixtures, settled
from dynjax.train.processes import is_writer
from dynjax.train.run import (
    PRETRAIN,
    WALK,
    RunContext,
    batch_for,
    frozen_share,
    make_run_context,
    predict_era,
    pretrain_plan,
    resolved_corr,
    sampling_rng,
    score_resolved,
    train_step,
    update_batch,
    walk_rows,
)
from dynjax.train.state import RunState
from dynjax.train.timing import new_timings, timed

__all__ = ["Interrupted", "MetricsLog", "walk_forward"]


@dataclass(frozen=True)
class Update:
    """What an update did, for the log: the eras Hedge scored and the last train step's metrics."""

    scored: list[tuple[str, list[float], list[float]]]  # (era name, corr per mixture, corr per frozen share), in era order
    metrics: dict | None  # device values; None when this era trained no step (`train.update_every`)


@dataclass(frozen=True)
class Prediction:
    """One predicted era: timeline position, each trial's prediction `[G, R]`, importances, features used."""

    e: int
    pred_GxR: np.ndarray
    importance_F: np.ndarray
    used_F: np.ndarray


def advance(run: RunContext, state: RunState, k: int, t: int, key: jax.Array) -> tuple[RunState, Update]:
    """The update before the k-th walk-forward era (era number `t`): score what resolved by then, then
    train every `update_every` eras, `steps_per_update` steps on each member's memory of resolved eras."""
    cfg = run.cfg
    resolved = run.schedule.timeline.resolved_at(t, cfg.data.embargo_eras)
    state, scored = score_resolved(run, state, resolved)
    metrics = None
    if k % cfg.train.update_every == 0:
        for s in range(cfg.train.steps_per_update):
            state, metrics = train_step(run, state, update_batch(run, resolved, sampling_rng(run, WALK, k, s)), key,
                                        update=True)
    return state, Update(scored, metrics)


def predict_and_select(run: RunContext, state: RunState, e: int) -> tuple[RunState, Prediction]:
    """Predict the era at timeline position `e`, then fold its importances into the selection state."""
    pred_GxR, importance_F, used_F = predict_era(run, state, e)
    selection = update_selection(state.selection, jnp.asarray(importance_F), run.cfg.selection)
    return state.replace(selection=selection), Prediction(e, pred_GxR, importance_F, used_F)


def walk_forward(cfg: RunConfig, data: NumeraiData, out: str | Path, *, stop_after: int | None = None,
                 progress: Callable = lambda it, **kw: it, checkpoints: bool = True,
                 on_era: Callable[[int, int, np.ndarray], None] = lambda k, e, pred_GxR: None,
                 hyper_G: dict | None = None, on_start: Callable[[int], None] = lambda cursor: None) -> dict:
    """Run, resume or update the walk-forward; writes predictions, selection and checkpoints to `out`.

    A run directory with checkpoints continues from the latest readable one, after checking
    that `data` hold the eras it has used unchanged (`ChangedHistory` otherwise): a killed
    run resumes, and a run given newer data (more validation eras, a new live file) walks
    forward over the eras it has not predicted yet (`dynjax update`). Live eras are then
    predicted by the model as it stands for the era after the history (`out/next/`).
    `stop_after` ends the run after that many walk-forward eras (to test kill-and-resume).
    SIGINT/SIGTERM end it cleanly after the current era's checkpoint (`Interrupted`).
    `checkpoints=False` (a hyperparameter trial) saves nothing to resume from, writes no
    frozen-model comparison and no next-era state, and ignores stop signals.
    `on_era(k, e, pred_GxR)` sees each walk-forward prediction as it is made (k-th predicted
    era, timeline position e); an exception it raises ends the run there. `hyper_G` runs a
    population sweep of G trials (see `make_run_context`); its files hold trial 0's predictions,
    `on_era` sees every trial's. `on_start(cursor)` runs once the data are accepted (as the
    history of the checkpoint restored, or with none to check), before any training. Returns timings.
    """
    # Setup
    out = Path(out)
    run = make_run_context(cfg, data, hyper_G)
    history, timings, log = run.schedule.predicted, new_timings(), MetricsLog(out / "metrics.jsonl")
    store = Checkpointed(out, run, cfg) if checkpoints else Unsaved()
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    if run.cfg.model.pairs and is_writer():
        write_pairs(out, run.cfg.model.pair_index, data.train.features)

    with stop_requests(enabled=checkpoints) as stop, store:
        # Resume (or update) from the latest readable checkpoint, or pretrain
        cursor, state = store.resume(run)
        # A killed run walks the eras since its checkpoint again, and a pretraining anew all of it.
        log.rewind(None if state is None else {*map(run.schedule.timeline.name, map(int, history[cursor:])), "next"})
        on_start(cursor)
        if state is None:
            with timed(timings, "train_s", compiles="compile_s"):
                state, holdout_corr = pretrain(run, run.fresh_state(), log, progress, stop)
            store.save(0, state, lambda: holdout_corr)

        # Walk forward
        walk_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), WALK)
        scores = ResolvedScores(out, run.schedule.timeline, run.cfg.data.embargo_eras, run.corr_rows)
        for k in progress(range(cursor, len(history)), initial=cursor, total=len(history), desc="walk-forward"):
            e = int(history[k])
            with timed(timings, "train_s", compiles="compile_s"):
                state, update = advance(run, state, k, int(run.schedule.timeline.numbers_E[e]), walk_key)
                log_era(log, run, state, run.schedule.timeline.name(e), update)  # reads the metrics: the update's time
            with timed(timings, "predict_s"):
                state, prediction = predict_and_select(run, state, e)
            write_part(out, run.schedule.timeline, e, prediction.pred_GxR[0], prediction.importance_F, prediction.used_F)
            scores.add(e, prediction.pred_GxR[0])
            on_era(k, e, prediction.pred_GxR)

            # Checkpoint (every few eras: a killed run walks the eras since its latest checkpoint again)
            done, signalled = k + 1, stop.signal is not None  # a signal from here on is seen after the next era
            due = done % run.cfg.train.checkpoint_every == 0 or done == len(history) or signalled
            with timed(timings, "checkpoint_s"):
                store.save(done, state, lambda e=e, done=done: scores.mean_until(e, history[:done]), due=due)
            if signalled:
                raise Interrupted(f"stopped by {stop.signal} after era {run.schedule.timeline.name(e)} (walk-forward era "
                                  f"{k + 1} of {len(history)}, checkpointed)", stop.signum)
            if stop_after is not None and k + 1 - cursor >= stop_after:
                return timings

        # The era after the history: one more update, then the live eras and the frozen model's view
        if checkpoints:
            with timed(timings, "train_s", compiles="compile_s"):
                state, update = advance(run, state, len(history), run.schedule.next_number, walk_key)
                log_era(log, run, state, "next", update)
            with timed(timings, "checkpoint_s"):
                write_next(run, data, state, out)
            with timed(timings, "predict_s"):
                write_live(run, state, out)
                write_frozen(run, store.checkpoints, store.abstract, out)
    collect_parts(out, [run.schedule.timeline.name(int(e)) for e in history])
    return timings


# Pretraining


def pretrain(run: RunContext, state: RunState, log: MetricsLog, progress, stop: StopRequest | None = None
             ) -> tuple[RunState, float]:
    """Epochs of windows over the eras resolved before the first prediction; then Hedge's and the
    selection's starting states. Returns the state and its mean holdout corr (0 without early stopping).

    `train.patience` > 0 is early stopping (an option at this one place): the last `holdout_eras`
    resolved eras are held out of the fit, each trial keeps its best epoch on them, and Hedge's
    scores start from the members' corr on them. A stop request (SIGINT/SIGTERM) drops
    pretraining: nothing is checkpointed before it ends.
    """
    cfg, timeline = run.cfg, run.schedule.timeline
    resolved, fit, holdout, windows = pretrain_plan(cfg, timeline, int(run.schedule.predicted[0]))
    epochs = pretrain_epochs(run, state, fit, len(windows), log, progress, stop)
    holdout_corr = 0.0
    if cfg.train.patience:
        state, holdout_corr = early_stopped(run, state, epochs, holdout, log)
    else:
        for _, state in epochs:
            pass
    # The safe expert: the members as pretraining leaves them (copies: the step donates the train state).
    state = state.replace(frozen=jax.tree.map(jnp.copy, state.train.ema_params))
    # Hedge scores eras from the first one pretraining has not fitted (with early stopping: the holdout).
    hedge = init_hedge(run.groups * len(run.members.mixtures_XxM), len(resolved))
    if cfg.train.patience and cfg.train.hedge_eta and len(run.members.mixtures_XxM) > 1:
        corr_ExGX = np.stack([resolved_corr(run, state, int(e))[0] for e in holdout])
        hedge = update_hedge(hedge, corr_ExGX, cfg.train.hedge_decay)
    state = state.replace(hedge=hedge, policy=settled(state.policy, hedge))  # the holdout resolved before any prediction
    # The selection state starts from the pretrained model's importances over the latest resolved eras.
    for e in holdout:
        state, _ = predict_and_select(run, state, int(e))
    return state, holdout_corr


def pretrain_epochs(run: RunContext, state: RunState, eras: np.ndarray, steps: int, log: MetricsLog, progress,
                    stop: StopRequest | None):
    """Yields `(epoch, state)` after each epoch of `steps` windows over `eras` (sliding windows,
    or W eras drawn at random per step: `train.pretrain_windows`)."""
    cfg = run.cfg
    key = jax.random.fold_in(run.root_key, PRETRAIN)
    windows = sliding_windows(eras, cfg.data.window_eras, cfg.train.window_stride)
    n_steps = 0  # counted on the host: reading state.train.step would sync every step
    for epoch in range(cfg.train.pretrain_epochs):
        order = sampling_rng(run, PRETRAIN, epoch).permutation(len(windows))[:steps]
        for i in progress(order, desc=f"pretrain epoch {epoch + 1}/{cfg.train.pretrain_epochs}"):
            rng = sampling_rng(run, PRETRAIN, epoch, int(i))
            window = (windows[i] if cfg.train.pretrain_windows == "sliding"
                      else np.sort(rng.choice(eras, cfg.data.window_eras, replace=False)))
            state, metrics = train_step(run, state, batch_for(run, window, rng), key)
            n_steps += 1
            if stop is not None and stop.signal:
                raise Interrupted(f"stopped by {stop.signal} during pretraining (epoch {epoch + 1}, step {n_steps}); "
                                  "pretraining starts again on resume", stop.signum)
            if n_steps % cfg.train.log_every == 0:
                log.write(phase="pretrain", epoch=epoch, step=n_steps, **{f"train/{m}": v for m, v in metrics.items()})
        yield epoch, state


def early_stopped(run: RunContext, state: RunState, epochs, holdout: np.ndarray, log: MetricsLog) -> tuple[RunState, float]:
    """Each trial's best state over `epochs` by its mean corr on the holdout eras (the initial state
    counts: a constant prediction has no corr and any trained epoch beats it); a trial stops after
    `train.patience` epochs without a better one, the run once every trial has."""
    patience = run.cfg.train.patience
    # Copies, not references: the train step donates (frees) the state it is given.
    best, best_G = jax.tree.map(jnp.copy, state), np.nan_to_num(holdout_corr(run, state, holdout), nan=-np.inf)
    since_G = np.zeros(run.groups, int)
    for epoch, trained in epochs:
        corr_G = np.nan_to_num(holdout_corr(run, trained, holdout), nan=-np.inf)
        log.write(phase="pretrain", epoch=epoch, **{"eval/holdout_corr": float(corr_G.mean())})
        better_G = (corr_G > best_G) & (since_G < patience)  # a stopped trial stays stopped
        best = keep_better(best, trained, np.repeat(better_G, run.members.n))
        best_G, since_G = np.where(better_G, corr_G, best_G), np.where(better_G, 0, since_G + 1)
        if (since_G >= patience).all():
            break
    return best, float(np.nan_to_num(best_G, neginf=0.0).mean())


def keep_better(best: RunState, state: RunState, better_GM: np.ndarray) -> RunState:
    """`best` with the members flagged in `better_GM` replaced by copies of `state`'s."""
    if better_GM.all():
        return jax.tree.map(jnp.copy, state)
    if not better_GM.any():
        return best
    pick = lambda new, old: jnp.where(better_GM.reshape(-1, *[1] * (new.ndim - 1)), new, old)
    return best.replace(train=jax.tree.map(pick, state.train, best.train))


def holdout_corr(run: RunContext, state: RunState, holdout: np.ndarray) -> np.ndarray:
    """Mean Numerai corr of the state's predictions over the holdout eras, per trial: [G]."""
    corrs = []
    for e in holdout:
        split, local = run.schedule.timeline.era(int(e))
        rows = split.index.labeled_rows(local)
        pred_GxR = walk_rows(run, state, split, local, run.features.of(int(e)))  # the frozen members are not set yet
        corrs.append([era_corr(p[: rows.stop - rows.start], split.y_NxT[rows, 0], run.corr_rows) for p in pred_GxR])
    return np.mean(corrs, axis=0)


# Checkpoints


class Checkpointed:
    """A run's checkpoints (Orbax, `dynjax.train.checkpoint`) with what each records: the cursor, the
    config and the history of the data it has used (`History`, checked on resume).

    Resume order: open the manager -> restore the latest readable checkpoint into the abstract
    state (`jax.eval_shape`) -> check the data against its history -> continue at its cursor."""

    def __init__(self, out: Path, run: RunContext, cfg: RunConfig):
        self.run, self.config = run, to_dict(cfg)
        self.abstract = run.abstract_state()
        check_writable(out, _need_bytes(run, self.abstract))
        self.checkpoints = RunCheckpoints(out / "checkpoints", keep=cfg.train.keep_checkpoints)
        self.record: History | None = None  # set by `resume`, or started by the first save

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.checkpoints.close()  # lets the last background write finish, also on an error

    def resume(self, run: RunContext) -> tuple[int, RunState | None]:
        """`(cursor, state)` of the latest readable checkpoint, or `(0, None)` for a new run."""
        restored = self.checkpoints.restore_latest(self.abstract)
        if restored is None:
            return 0, None
        _, state, saved = restored
        self.record = _saved_history(saved, run.schedule.timeline, run.schedule.predicted)
        self.record.check(run.schedule.timeline, run.schedule.predicted)
        return int(saved["cursor"]), state

    def save(self, cursor: int, state: RunState, metric: Callable[[], float], *, due: bool = True) -> None:
        """Record `cursor` walk-forward eras done (0: pretrained) in the history; when `due`, checkpoint
        them, with `metric()`, the figure the best checkpoint is kept by."""
        schedule = self.run.schedule
        if self.record is None:
            self.record = History.start(schedule.timeline)
        if cursor:
            self.record.add(schedule.timeline, schedule.predicted, cursor - 1, self.run.cfg.data.embargo_eras)
        if due:
            meta = {"cursor": cursor, "config": self.config, "history": self.record.to_json()}
            self.checkpoints.save(cursor, self.run.place(state), meta, metric())


class Unsaved:
    """No checkpoints (a hyperparameter trial): nothing to resume from, nothing saved."""

    checkpoints = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def resume(self, run: RunContext) -> tuple[int, None]:
        return 0, None

    def save(self, cursor: int, state: RunState, metric: Callable[[], float], *, due: bool = True) -> None:
        pass


# Outputs


def log_era(log: MetricsLog, run: RunContext, state: RunState, name: str, update: Update) -> None:
    """Hedge's inputs (each scored era's mixtures' and frozen shares' corr) and, after a trained update,
    its metrics and weights."""
    finite = lambda v: v if np.isfinite(v) else None
    for era, corr_X, corr_A in update.scored:
        log.write(phase="hedge", era=era, walked=name, **{f"hedge/corr_{x}": finite(v) for x, v in enumerate(corr_X)},
                  **{f"floor/corr_{a}": finite(v) for a, v in enumerate(corr_A)})
    if update.metrics is None:
        return
    members = run.members
    pi_GxX = chosen_mixtures(state.hedge, state.policy, members.policies, len(members.mixtures_XxM))
    log.write(phase="walk", era=name, walked=name, **{f"train/{m}": v for m, v in update.metrics.items()},
              **{"select/n_features": int(state.selection.mask_F.sum())},
              **{f"hedge/weight_{m}": float(w) for m, w in enumerate((pi_GxX @ members.mixtures_XxM).reshape(-1))},
              **{f"hedge/mixture_{x}": float(p) for x, p in enumerate(pi_GxX.reshape(-1))},
              **{f"hedge/policy_{g}": int(p) for g, p in enumerate(chosen(state.policy, members.policies))},
              **{f"floor/frozen_share_{g}": float(a) for g, a in enumerate(frozen_share(run, state))})


def write_pairs(out: Path, pair_index: tuple[int, ...], features: tuple[str, ...]) -> None:
    """`out/pairs.json`: the feature pairs the screen kept (`model.pairs`), strongest first."""
    pairs = [[features[f], features[g]] for f, g in zip(pair_index[0::2], pair_index[1::2])]
    write_json(out / "pairs.json", {"n_pairs": len(pairs), "pairs": pairs})


def write_next(run: RunContext, data: NumeraiData, state: RunState, out: Path) -> None:
    """`out/next/`: the state for the era after the history and what predicting it needs."""
    train_file = Path(data.train.source)
    columns = tuple(feature_columns(train_file)) if train_file.is_file() else None
    predicted = run.schedule.predicted
    after = run.schedule.timeline.name(int(predicted[-1]) if len(predicted) else data.train.index.n_eras - 1)
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
