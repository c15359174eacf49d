"""The main job: pretrain on resolved eras, then walk forward era by era.

For each predicted era t (validation eras in order, then live): update the model on the
window of resolved eras ending at t - 1 - embargo (warm start), predict era t with the
current selection mask, refresh the selection state from era t's attention, checkpoint.
A run killed anywhere resumes from its latest checkpoint and writes the same predictions
as an uninterrupted run: every random draw is a function of (seed, phase, era, step).
"""

import json
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
from flax import struct

from dynjax.config import RunConfig, to_dict
from dynjax.data.eras import resolved_eras, sliding_windows
from dynjax.data.numerai import NumeraiData
from dynjax.data.timeline import Timeline, make_timeline
from dynjax.data.windows import era_chunks, sample_eras, window_rng
from dynjax.eval.jax_corr import era_corr
from dynjax.model.context import context_window, era_summaries, window_context
from dynjax.model.selection import SelectionState, era_importance, init_selection, update_selection
from dynjax.model.tft import FeatureAttentionModel
from dynjax.train.checkpoint import RunCheckpoints
from dynjax.train.state import TrainState, create_train_state, make_optimizer
from dynjax.train.step import make_predict, make_train_step, window_batch

PRETRAIN, WALK = 1, 2  # phases in the sampling streams


@struct.dataclass
class RunState:
    """Everything a checkpoint holds besides the cursor and the config."""

    train: TrainState
    selection: SelectionState
    rng: jnp.ndarray  # key data of the root key


def initial_run_state(model: FeatureAttentionModel, optimizer, root_key: jax.Array) -> RunState:
    """Fresh params and optimiser state, all features selected; also the checkpoint's structure."""
    return RunState(create_train_state(model, optimizer, root_key), init_selection(model.n_features),
                    jax.random.key_data(root_key))


class MetricsLog:
    """Slash-named metrics as JSON lines in the run directory."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, **record) -> None:
        """Append one record; device values are pulled here, so call it every few steps only."""
        clean = {k: float(v) if hasattr(v, "__float__") and not isinstance(v, (int, str)) else v for k, v in record.items()}
        if not np.isfinite(clean.get("train/loss", 0.0)):
            raise FloatingPointError(f"non-finite training loss at {record.get('phase')} step/era "
                                     f"{record.get('step', record.get('era'))}: {clean['train/loss']}")
        with self.path.open("a") as f:
            f.write(json.dumps(clean) + "\n")


def walk_forward(cfg: RunConfig, data: NumeraiData, out: str | Path, *, stop_after: int | None = None,
                 progress: Callable = lambda it, **kw: it) -> dict:
    """Run (or resume) the walk-forward; writes predictions, selection and checkpoints to `out`.

    `stop_after` ends the run after that many walk-forward eras (to test kill-and-resume).
    Returns timings.
    """
    # Setup
    out = Path(out)
    timings = {"compile_s": 0.0, "train_s": 0.0, "predict_s": 0.0, "checkpoint_s": 0.0}
    splits = [s for s in (data.train, data.validation, data.live) if s is not None]
    timeline = make_timeline(*splits)
    predicted = np.arange(data.train.index.n_eras, timeline.n_eras)  # validation (+ live) eras
    n_features = data.train.x_NxF.shape[1]
    model = FeatureAttentionModel(cfg.model, n_features)
    optimizer = make_optimizer(cfg.optim)
    train_step = make_train_step(model, cfg.loss, optimizer)
    predict = make_predict(model)
    root_key = jax.random.key(cfg.seed)
    summary_ExF = np.concatenate([era_summaries(s) for s in splits])
    ctx_of = lambda e: context_window(summary_ExF, timeline.numbers_E, int(timeline.numbers_E[e]),
                                      cfg.data.embargo, cfg.model.context_eras)
    log = MetricsLog(out / "metrics.jsonl")
    parts = out / "predictions_parts"
    parts.mkdir(parents=True, exist_ok=True)
    ckpt = RunCheckpoints(out / "checkpoints", keep=cfg.train.keep_checkpoints)

    fresh_state = lambda: initial_run_state(model, optimizer, root_key)

    def batch_for(positions: np.ndarray, rng: np.random.Generator) -> dict:
        sampled = sample_eras([timeline.era(int(e)) for e in positions], cfg.data.rows_per_era, rng)
        if not cfg.model.context:
            return window_batch(sampled)
        return window_batch(sampled, window_context(summary_ExF, timeline.numbers_E, positions, cfg.data.embargo, cfg.model.context_eras))

    all_F = jnp.ones(n_features, bool)

    def predict_era(params, selection: SelectionState, e: int) -> tuple[np.ndarray, np.ndarray]:
        """Predictions with the selection mask; importances from attention over all features,
        so a feature dropped in one regime can win its place back in the next."""
        split, local = timeline.era(e)
        ctx = ctx_of(e) if cfg.model.context else (None, None)
        preds, imp_sum, n = [], np.zeros(n_features), 0
        for x_RxF, mask_R, _ in era_chunks(split, local, cfg.train.predict_chunk):
            pred_R, weight_RxF = predict(params, x_RxF, selection.mask_F, *ctx)
            if cfg.selection.mode != "none":  # with a mask, importances need the unmasked pass
                _, weight_RxF = predict(params, x_RxF, all_F, *ctx)
            preds.append(np.asarray(pred_R)[mask_R])
            imp_sum += np.asarray(era_importance(weight_RxF, jnp.asarray(mask_R))) * mask_R.sum()
            n += int(mask_R.sum())
        return np.concatenate(preds), imp_sum / max(n, 1)

    def step(state: RunState, batch: dict, phase_key) -> tuple[RunState, dict]:
        start = time.perf_counter()
        train, metrics = train_step(state.train, batch, state.selection.mask_F, phase_key)
        if not timings["compile_s"]:
            jax.block_until_ready(train)
            timings["compile_s"] = time.perf_counter() - start
        return state.replace(train=train), metrics

    # Resume or pretrain
    latest = ckpt.latest_step()
    if latest is not None:
        state = ckpt.restore_state(latest, jax.eval_shape(fresh_state))
        cursor = int(ckpt.restore_meta(latest)["cursor"])
    else:
        start = time.perf_counter()
        state, holdout_corr = _pretrain(cfg, timeline, int(predicted[0]), fresh_state(), step, batch_for,
                                        predict_era, root_key, log, progress)
        timings["train_s"] += time.perf_counter() - start
        _write_frozen(out, timeline, predicted, state, predict_era)
        cursor = 0
        ckpt.save(0, state, {"cursor": 0, "config": to_dict(cfg)}, holdout_corr)

    # Walk forward
    walk_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), WALK)
    scores = ResolvedScores(parts, timeline, cfg.data.embargo)
    for k in progress(range(cursor, len(predicted)), initial=cursor, total=len(predicted), desc="walk-forward"):
        e = int(predicted[k])
        start = time.perf_counter()
        if k % cfg.train.update_every == 0 and cfg.train.steps_per_update:
            window = timeline.resolved(e, cfg.data.embargo)[-cfg.data.window_eras:]
            for s in range(cfg.train.steps_per_update):
                state, metrics = step(state, batch_for(window, window_rng(cfg.seed, WALK, k, s)), walk_key)
            log.write(phase="walk", era=timeline.name(e), **{f"train/{m}": v for m, v in metrics.items()},
                      **{"select/n_features": int(state.selection.mask_F.sum())})
        timings["train_s"] += time.perf_counter() - start
        start = time.perf_counter()
        pred, importance_F = predict_era(state.train.params, state.selection, e)
        _write_part(parts, timeline, e, pred, importance_F, np.asarray(state.selection.mask_F))
        state = state.replace(selection=update_selection(state.selection, jnp.asarray(importance_F), cfg.selection))
        timings["predict_s"] += time.perf_counter() - start
        start = time.perf_counter()
        ckpt.save(k + 1, state, {"cursor": k + 1, "config": to_dict(cfg)}, scores.mean_until(e, predicted[: k + 1]))
        timings["checkpoint_s"] += time.perf_counter() - start
        if stop_after is not None and k + 1 - cursor >= stop_after:
            ckpt.close()
            return timings
    ckpt.close()
    _collect_parts(out, parts)
    return timings


def _pretrain(cfg, timeline: Timeline, first_predicted: int, state: RunState, step, batch_for, predict_era,
              root_key, log: MetricsLog, progress) -> tuple[RunState, float]:
    """Epochs of sliding windows over eras resolved before the first prediction; early stopping."""
    resolved = timeline.resolved(first_predicted, cfg.data.embargo)
    holdout = resolved[-cfg.train.holdout_eras:]
    # The fitting eras end `embargo` eras before the holdout, so holdout targets never leak.
    fit = resolved[resolved_eras(timeline.numbers_E[resolved], int(timeline.numbers_E[holdout[0]]), cfg.data.embargo)]
    windows = sliding_windows(fit, cfg.data.window_eras, cfg.train.window_stride)
    if len(windows) == 0:
        raise ValueError(f"too few resolved eras to pretrain: {len(fit)} fit eras for windows of {cfg.data.window_eras}")
    key = jax.random.fold_in(root_key, PRETRAIN)
    # Copies, not references: the train step donates (frees) the state it is given.
    best, best_corr, since_best = jax.tree.map(jnp.copy, state), _holdout_corr(timeline, holdout, state, predict_era), 0
    n_steps = 0  # counted on the host: reading state.train.step would sync every step
    for epoch in range(cfg.train.pretrain_epochs):
        order = np.random.default_rng([cfg.seed, PRETRAIN, epoch]).permutation(len(windows))
        for i in progress(order, desc=f"pretrain epoch {epoch + 1}/{cfg.train.pretrain_epochs}"):
            state, metrics = step(state, batch_for(windows[i], window_rng(cfg.seed, PRETRAIN, epoch, int(i))), key)
            n_steps += 1
            if n_steps % cfg.train.log_every == 0:
                log.write(phase="pretrain", epoch=epoch, step=n_steps, **{f"train/{m}": v for m, v in metrics.items()})
        corr = _holdout_corr(timeline, holdout, state, predict_era)
        log.write(phase="pretrain", epoch=epoch, step=n_steps, **{"eval/corr_mean": corr})
        if corr > best_corr:
            best, best_corr, since_best = jax.tree.map(jnp.copy, state), corr, 0
        else:
            since_best += 1
            if since_best >= cfg.train.patience:
                break
    # The selection state starts from the best model's importances over the holdout eras.
    selection = best.selection
    for e in holdout:
        _, importance_F = predict_era(best.train.params, selection, int(e))
        selection = update_selection(selection, jnp.asarray(importance_F), cfg.selection)
    return best.replace(selection=selection), float(best_corr)


def _holdout_corr(timeline: Timeline, holdout: np.ndarray, state: RunState, predict_era) -> float:
    corrs = []
    for e in holdout:
        split, local = timeline.era(int(e))
        rows = split.index.labeled_rows(local)
        pred, _ = predict_era(state.train.params, state.selection, int(e))
        n_labeled = rows.stop - rows.start
        corrs.append(era_corr(pred[:n_labeled], split.y_NxT[rows, 0]))
    return float(np.mean(corrs))


def _write_part(parts: Path, timeline: Timeline, e: int, pred: np.ndarray, importance_F: np.ndarray, mask_F: np.ndarray) -> None:
    split, local = timeline.era(e)
    rows = split.index.rows(local)
    name = timeline.name(e)
    pl.DataFrame({"id": split.ids[rows.start:rows.stop], "era": [name] * len(pred), "prediction": pred}).write_parquet(parts / f"{name}.parquet")
    pl.DataFrame({"era": [name] * len(importance_F), "feature": list(split.features),
                  "importance": importance_F, "selected": mask_F}).write_parquet(parts / f"{name}.selection.parquet")


def _write_frozen(out: Path, timeline: Timeline, predicted: np.ndarray, state: RunState, predict_era) -> None:
    """Predictions of the model frozen after pretraining, for the report's comparison."""
    frames = []
    for e in predicted:
        split, local = timeline.era(int(e))
        rows = split.index.rows(local)
        pred, _ = predict_era(state.train.params, state.selection, int(e))
        frames.append(pl.DataFrame({"id": split.ids[rows.start:rows.stop], "era": [timeline.name(int(e))] * len(pred), "prediction": pred}))
    pl.concat(frames).write_parquet(out / "predictions_frozen.parquet")


class ResolvedScores:
    """Per-era corr of walk-forward predictions whose targets have resolved (the checkpoint metric)."""

    def __init__(self, parts: Path, timeline: Timeline, embargo: int):
        self.parts, self.timeline, self.embargo, self.cache = parts, timeline, embargo, {}

    def mean_until(self, e: int, done: np.ndarray) -> float:
        """Mean corr over predicted eras `done` that are resolved when era position `e` is predicted."""
        done = np.asarray(done)
        known = done[resolved_eras(self.timeline.numbers_E[done], int(self.timeline.numbers_E[e]), self.embargo)]
        corrs = [self._corr(int(d)) for d in known]
        corrs = [c for c in corrs if np.isfinite(c)]
        return float(np.mean(corrs)) if corrs else 0.0

    def _corr(self, e: int) -> float:
        if e not in self.cache:
            split, local = self.timeline.era(e)
            rows = split.index.labeled_rows(local)
            n = rows.stop - rows.start
            pred = pl.read_parquet(self.parts / f"{self.timeline.name(e)}.parquet")["prediction"].to_numpy()[:n]
            self.cache[e] = era_corr(pred, split.y_NxT[rows, 0]) if n > 1 else float("nan")
        return self.cache[e]


def _collect_parts(out: Path, parts: Path) -> None:
    preds = sorted(p for p in parts.glob("*.parquet") if not p.name.endswith(".selection.parquet"))
    sels = sorted(parts.glob("*.selection.parquet"))
    pl.concat([pl.read_parquet(p) for p in preds]).write_parquet(out / "predictions.parquet")
    pl.concat([pl.read_parquet(p) for p in sels]).write_parquet(out / "selection.parquet")
