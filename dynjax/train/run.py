"""The walk-forward's run context: what a run reads but never changes, and the functions on it.

`RunContext` holds the config, the era timeline, the model and its compiled step and predict
(over the ensemble's members), and the host-side era context (summaries for the encoder,
evidence for the gates), all built once by `make_run_context`. The module-level functions
take it first: `batch_for` and `update_batch` build step inputs, `train_step` runs one step,
`predict_era` predicts one era. Every random draw comes from `(seed, phase, ...)` streams, so a
resumed run draws exactly what an uninterrupted one would.
"""

import dataclasses
import time
from dataclasses import dataclass, field
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from optax import GradientTransformation

from dynjax.config import POPULATION_PATHS, LossConfig, ModelConfig, OptimConfig, RunConfig
from dynjax.data.context import EraContext, context_window, era_summaries, window_context
from dynjax.data.eras import resolved_eras, sliding_windows
from dynjax.data.evidence import bin_stats, timeline_evidence
from dynjax.data.numerai import EraData, NumeraiData
from dynjax.data.timeline import Timeline, make_timeline
from dynjax.data.windows import Batch, era_chunks, era_rows, sample_eras, window_rng
from dynjax.eval.jax_corr import era_corr
from dynjax.model.selection import era_importance
from dynjax.model.tft import FeatureAttentionModel
from dynjax.train.ensemble import combine_trials, mix_members, population_predict, population_step
from dynjax.train.hedge import hedge_weights, update_hedge
from dynjax.train.outputs import MetricsLog
from dynjax.train.replay import ReplayBuffer, replay_rows_rng, sample_replay, similarity_weights
from dynjax.train.sharding import Layout, make_layout
from dynjax.train.state import (
    RunState,
    expert_mixtures,
    hedge_learns,
    initial_run_state,
    make_optimizer,
    member_horizons,
    resolve_decay,
)
from dynjax.train.step import predict_fn, train_step_fn

PRETRAIN, WALK, REPLAY, REFIT = 1, 2, 3, 4  # phases in the sampling streams


@dataclass(frozen=True, eq=False)
class RunContext:
    cfg: RunConfig
    timeline: Timeline
    predicted: np.ndarray  # timeline positions of the walk-forward's eras (validation): its history
    live: np.ndarray  # timeline positions of the live eras: all predicted as the era after the history
    next_number: int  # that era's number: the last history era's + 1
    next_context: EraContext | None  # its era context (resolved eras only, like any era's)
    model: FeatureAttentionModel
    optimizer: GradientTransformation
    step: callable  # jitted population step (state donated)
    predict: callable  # jitted population predict
    layout: Layout  # the device mesh both run on, and the state's shardings
    summary_ExF: np.ndarray | None  # per-era feature-target correlations (encoder, similar replay)
    evidence_ExFxC: np.ndarray | None  # gate inputs per timeline position (embargo applied)
    root_key: jax.Array
    groups: int = 1  # trials in a population sweep (each `cfg.train.ensemble` members); 1 for a run
    timings: dict = field(default_factory=lambda: {"compile_s": 0.0, "train_s": 0.0, "predict_s": 0.0, "checkpoint_s": 0.0})

    @property
    def n_features(self) -> int:
        return self.model.n_features

    def fresh_state(self) -> RunState:
        return self.place(initial_run_state(self.cfg, self.model, self.optimizer, self.root_key, self.groups))

    def place(self, state: RunState) -> RunState:
        """The state on the mesh: host-side updates (selection, replay buffer) leave parts of it on
        one local device, which a multi-process checkpoint cannot write."""
        return self.layout.put(state, self.layout.state_shardings(state))

    def abstract_state(self) -> RunState:
        """Shapes, dtypes and shardings of the run state (the restore target)."""
        return abstract_run_state(self.cfg, self.model, self.optimizer, self.layout, self.root_key, self.groups)


@dataclass(frozen=True, eq=False)
class Predictor:
    """What predicting needs without a timeline (`dynjax predict` on a live file)."""

    cfg: RunConfig
    model: FeatureAttentionModel
    optimizer: GradientTransformation
    predict: callable  # jitted predict over the ensemble's members
    layout: Layout
    groups: int = 1

    @property
    def n_features(self) -> int:
        return self.model.n_features

    def abstract_state(self) -> RunState:
        """Shapes, dtypes and shardings of the run state (the restore target)."""
        return abstract_run_state(self.cfg, self.model, self.optimizer, self.layout, jax.random.key(self.cfg.seed))


def abstract_run_state(cfg: RunConfig, model: FeatureAttentionModel, optimizer: GradientTransformation,
                       layout: Layout, key: jax.Array, groups: int = 1) -> RunState:
    """The run state's shapes and dtypes with the layout's shardings (Orbax restores onto them)."""
    abstract = jax.eval_shape(lambda: initial_run_state(cfg, model, optimizer, key, groups))
    return layout.abstract(abstract, layout.state_shardings(abstract))


def make_predictor(cfg: RunConfig, n_features: int) -> Predictor:
    model, optimizer, _, predict, layout = compiled(cfg.model, n_features, cfg.loss, cfg.optim, cfg.train.ensemble,
                                                    mesh=cfg.train.mesh)
    return Predictor(cfg, model, optimizer, predict, layout)


@lru_cache(maxsize=8)
def compiled(model_cfg: ModelConfig, n_features: int, loss_cfg: LossConfig, optim_cfg: OptimConfig, n_members: int,
             hyper: tuple[tuple[str, tuple[float, ...]], ...] | None = None, mesh: str = "") -> tuple:
    """`(model, optimizer, step, predict, layout)` of a config, built once per process: runs of one
    config (seeds, resumes, updates, ensemble members) reuse the same jitted functions, so they trace
    and compile once. `hyper`: a population's float hyperparameters (`hyper_G` as sorted items);
    `mesh`: `train.mesh`, the devices both run on."""
    hyper_G = None if hyper is None else {k: list(v) for k, v in hyper}
    groups = 1 if hyper is None else len(hyper[0][1])
    model = FeatureAttentionModel(model_cfg, n_features)
    optimizer = make_optimizer(optim_cfg)
    layout = make_layout(mesh, n_features)
    step_fn = train_step_fn(model, loss_cfg, optimizer, optim_cfg.ema_decay,
                            hyper_optimizer=None if hyper is None else partial(make_optimizer, optim_cfg))
    return (model, optimizer, population_step(step_fn, n_members, hyper_G, layout),
            population_predict(predict_fn(model), n_members * groups, layout), layout)


def resolve_prior(cfg: LossConfig, train_rows: int) -> LossConfig:
    """`prior_rows=0` (auto) made the training split's labelled rows: the additive prior is a ridge's
    over the rows pretraining fits (and stays that strength in the updates)."""
    return cfg if cfg.prior_rows else dataclasses.replace(cfg, prior_rows=max(train_rows, 1))


def pretrain_plan(cfg: RunConfig, timeline: Timeline, first: int) -> tuple[np.ndarray, ...]:
    """`(resolved, fit, holdout, windows)` of pretraining before timeline position `first`: the eras
    resolved then, those trained on, the last `holdout_eras` for early stopping, the fit eras'
    sliding windows (their count is the steps per epoch)."""
    resolved = timeline.resolved(first, cfg.data.embargo)
    holdout = resolved[-cfg.train.holdout_eras:]
    # The fitting eras end `embargo` eras before the holdout, so holdout targets never leak; without
    # early stopping (patience 0) nothing is held out and pretraining fits every resolved era.
    fit = (resolved[resolved_eras(timeline.numbers_E[resolved], int(timeline.numbers_E[holdout[0]]), cfg.data.embargo)]
           if cfg.train.patience else resolved)
    windows = sliding_windows(fit, cfg.data.window_eras, cfg.train.window_stride)
    if len(windows) == 0:
        raise ValueError(f"too few resolved eras to pretrain: {len(fit)} fit eras for windows of {cfg.data.window_eras}")
    return resolved, fit, holdout, windows


def make_run_context(cfg: RunConfig, data: NumeraiData, hyper_G: dict[str, list[float]] | None = None) -> RunContext:
    """Timeline, model, compiled functions and host-side era context of a run over `data`.

    `hyper_G`: a population sweep, one trial per value of these float hyperparameters (config
    paths in `POPULATION_PATHS`, values replacing the config's), trained by one vmapped step.
    """
    splits = [s for s in (data.train, data.validation, data.live) if s is not None]
    timeline = make_timeline(*splits)
    n_history = timeline.n_eras - (data.live.index.n_eras if data.live is not None else 0)
    next_number = int(timeline.numbers_E[n_history - 1]) + 1
    groups = 1 if hyper_G is None else check_population(cfg, hyper_G)
    hyper = None if hyper_G is None else tuple((k, tuple(float(x) for x in v)) for k, v in sorted(hyper_G.items()))
    # The learning rate anneals over pretraining (`optim.decay_steps=0`), whatever the data's size.
    first = data.train.index.n_eras
    windows = pretrain_plan(cfg, timeline, first)[3] if cfg.optim.decay_steps == 0 and first < timeline.n_eras else ()
    optim = resolve_decay(cfg.optim, len(windows) * cfg.train.pretrain_epochs)
    loss = resolve_prior(cfg.loss, int(data.train.index.n_labeled.sum()))
    model, optimizer, step, predict, layout = compiled(cfg.model, data.train.x_NxF.shape[1], loss, optim,
                                                       cfg.train.ensemble, hyper, cfg.train.mesh)
    need_summary = cfg.model.context or (cfg.train.replay_eras and cfg.train.replay_sampling == "similar")
    summary_ExF = np.concatenate([era_summaries(s) for s in splits]) if need_summary else None
    evidence, next_evidence = None, None
    if cfg.model.gates == "context":
        stats = tuple(np.concatenate(parts) for parts in zip(*(bin_stats(s) for s in splits)))
        # One pass over the cumulative statistics for every position and the era after the history.
        at_T = np.r_[timeline.numbers_E, next_number]
        evidence, next_evidence = np.split(
            timeline_evidence(stats, timeline.numbers_E, cfg.data.embargo, cfg.model.evidence_eras, at_T), [timeline.n_eras])
    next_context = context_at(cfg, summary_ExF, timeline.numbers_E, next_number, next_evidence)
    return RunContext(
        cfg=cfg, timeline=timeline, predicted=np.arange(data.train.index.n_eras, n_history),
        live=np.arange(n_history, timeline.n_eras), next_number=next_number, next_context=next_context, model=model,
        optimizer=optimizer, step=step, predict=predict, layout=layout,
        summary_ExF=summary_ExF, evidence_ExFxC=evidence, root_key=jax.random.key(cfg.seed), groups=groups,
    )


def context_at(cfg: RunConfig, summary_ExF: np.ndarray | None, numbers_E: np.ndarray, t: int,
               evidence_1xFxC: np.ndarray | None) -> EraContext | None:
    """The context of era number `t` (no leading axis), from the timeline's resolved eras."""
    if not cfg.model.context and cfg.model.gates != "context":
        return None
    summary = (context_window(summary_ExF, numbers_E, t, cfg.data.embargo, cfg.model.context_eras)
               if cfg.model.context else (None, None))
    return EraContext(*summary, evidence_1xFxC[0] if evidence_1xFxC is not None else None)


def check_population(cfg: RunConfig, hyper_G: dict[str, list[float]]) -> int:
    """The number of trials in a population sweep; ValueError for what a population cannot share."""
    unknown = sorted(set(hyper_G) - set(POPULATION_PATHS))
    sizes = {len(v) for v in hyper_G.values()}
    if not hyper_G or unknown or len(sizes) != 1:
        raise ValueError(f"a population varies {', '.join(POPULATION_PATHS)} with one value per trial; got "
                         f"{sorted(hyper_G)} with {sorted(sizes)} values")
    if cfg.selection.mode != "none":
        raise ValueError("the trials of a population share one selection mask; use selection.mode=none "
                         "(per-era gates stay per trial) or tune.population=1")
    return sizes.pop()


def era_context(run: RunContext, positions: np.ndarray) -> EraContext | None:
    """Context of the eras at `positions` (leading axis = len(positions)); None if the model reads none."""
    cfg = run.cfg.model
    if not cfg.context and cfg.gates != "context":
        return None
    summary = (window_context(run.summary_ExF, run.timeline.numbers_E, positions, run.cfg.data.embargo, cfg.context_eras)
               if cfg.context else (None, None))
    evidence = run.evidence_ExFxC[positions] if cfg.gates == "context" else None
    return EraContext(*summary, evidence)


def batch_for(run: RunContext, positions: np.ndarray, rng: np.random.Generator) -> Batch:
    """A window of eras with R random rows each, and the eras' contexts."""
    batch = sample_eras([run.timeline.era(int(e)) for e in positions], run.cfg.data.rows_per_era, rng)
    return batch.replace(context=era_context(run, np.asarray(positions)))


def update_batch(run: RunContext, resolved: np.ndarray, replay: ReplayBuffer | None, rng: np.random.Generator) -> Batch:
    """A walk-forward update on the eras resolved so far: each member's recent eras (the latest
    window, or `data.window_eras` drawn from its `train.horizons` memory; a leading member axis
    when the members' memories differ) plus eras replayed from the buffer.

    Replayed eras show their fixed replay rows, so the outputs the buffer stored for them
    (the distillation targets) line up with the rows.
    """
    horizons = member_horizons(run.cfg)
    if len(set(horizons)) <= 1:
        return _update_batch(run, _recent(run, resolved, horizons[0] if horizons else None, rng), replay, rng)
    # One stream per member, drawn from the shared one: a member's draws do not depend on the others'.
    seeds = rng.integers(2**63, size=len(horizons))
    members = []
    for h, seed in zip(horizons, seeds):
        member_rng = np.random.default_rng(seed)
        members.append(_update_batch(run, _recent(run, resolved, h, member_rng), replay, member_rng))
    return jax.tree.map(lambda *a: np.stack(a), *members)


def _recent(run: RunContext, resolved: np.ndarray, horizon: int | None, rng: np.random.Generator) -> np.ndarray:
    """The recent part of an update: the latest window, or W eras of the latest `horizon` (0: all)."""
    w = run.cfg.data.window_eras
    if horizon is None:
        return resolved[-w:]
    pool = resolved[-horizon:] if horizon else resolved
    if len(pool) < w:  # a memory shorter than the window repeats eras: every member's window has W eras
        return np.sort(np.r_[pool, rng.choice(pool, w - len(pool))])
    return pool if len(pool) == w else np.sort(rng.choice(pool, w, replace=False))


def _update_batch(run: RunContext, recent: np.ndarray, replay: ReplayBuffer | None, rng: np.random.Generator) -> Batch:
    cfg = run.cfg
    k = cfg.train.replay_eras
    if not k:
        return batch_for(run, recent, rng)
    weights = (similarity_weights(replay, run.summary_ExF, recent, cfg.train.replay_temperature)
               if cfg.train.replay_sampling == "similar" else None)
    slots = sample_replay(replay, k, rng, weights)
    replayed = np.asarray(replay.era_C)[slots]
    positions = np.r_[recent, replayed]
    rngs = [rng] * len(recent) + [replay_rows_rng(cfg.seed, int(e)) for e in replayed]
    batch = sample_eras([run.timeline.era(int(e)) for e in positions], cfg.data.rows_per_era, rngs)
    batch = batch.replace(context=era_context(run, positions))
    if cfg.loss.distill_weight:
        stored = np.asarray(replay.out_CxR)[slots]
        if run.groups == 1:
            distill_WxR = np.zeros_like(batch.y_WxR)
            distill_WxR[len(recent):] = stored
        else:  # each trial distils towards its own stored outputs: [G, W, R]
            distill_WxR = np.zeros((run.groups, *batch.y_WxR.shape), np.float32)
            distill_WxR[:, len(recent):] = stored.transpose(1, 0, 2)
        batch = batch.replace(distill_WxR=distill_WxR, distill_W=(np.arange(len(positions)) >= len(recent)).astype(np.float32))
    return batch


def train_step(run: RunContext, state: RunState, batch: Batch, key: jax.Array) -> tuple[RunState, dict]:
    """One population step under the selection mask; the first call's time is the compile time."""
    start = time.perf_counter()
    train, metrics = run.step(state.train, batch, state.selection.mask_F, key)
    if not run.timings["compile_s"]:
        jax.block_until_ready(train)
        run.timings["compile_s"] = time.perf_counter() - start
    return state.replace(train=train), metrics


def predict_era(run: RunContext, state: RunState, e: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Era `e`'s prediction with the selection mask, [G, R] (G = 1 but in a population sweep),
    its importances, and the features used. A live era is predicted as the era after the history."""
    split, local = run.timeline.era(e)
    context = run.next_context if e >= run.timeline.n_eras - len(run.live) else _one(era_context(run, np.array([e])))
    return predict_rows(run, state, split, local, context)


def predict_rows(run: RunContext | Predictor, state: RunState, split: EraData, local: int,
                 context: EraContext | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`predict_era` for era `local` of any split, with the era context given.

    The members' predictions are combined per era by their Hedge weights (`train.hedge_eta`).
    Importances come from attention over all features (an unmasked pass when a mask is
    set), so a feature dropped in one regime can win its place back in the next; the features
    used are those kept by the mask and with an open gate in some member.
    """
    pred_NxR, imp_F, used_F = member_predictions(run, state, split, local, context)
    weights_N = hedge_weights(state.hedge, run.cfg.train.hedge_eta, expert_mixtures(run.cfg))
    return combine_trials(pred_NxR, run.groups, weights_N), imp_F, used_F


def member_predictions(run: RunContext | Predictor, state: RunState, split: EraData, local: int,
                       context: EraContext | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every expert's prediction of every row of one era, `[N, R]` (per trial: the members, then
    their pretrained copies where the run keeps them), the members' importances and the features used.

    The pretrained copies predict under today's selection mask and era context: only their
    params are frozen."""
    params, mask_F = state.train.ema_params, state.selection.mask_F
    all_F = jnp.ones(run.n_features, bool)
    preds, imp_sum, used_F, n = [], np.zeros(run.n_features), np.zeros(run.n_features, bool), 0
    for x_RxF, mask_R, _ in era_chunks(split, local, run.cfg.train.predict_chunk):
        pred_NxR, weight_NxRxF, gate_NxF = run.predict(params, x_RxF, mask_F, context)
        if run.cfg.selection.mode != "none":  # with a mask, importances need the unmasked pass
            _, weight_NxRxF, _ = run.predict(params, x_RxF, all_F, context)
        if state.pretrained is not None:
            pretrained_NxR, _, _ = run.predict(state.pretrained, x_RxF, mask_F, context)
            pred_NxR = with_pretrained(np.asarray(pred_NxR), np.asarray(pretrained_NxR), run.groups)
        preds.append(np.asarray(pred_NxR)[:, mask_R])
        imp_NxF = jax.vmap(era_importance, in_axes=(0, None))(weight_NxRxF, jnp.asarray(mask_R))
        imp_sum += np.asarray(imp_NxF).mean(axis=0) * mask_R.sum()
        used_F = np.asarray(mask_F) & (np.asarray(gate_NxF) > 0).any(axis=0)
        n += int(mask_R.sum())
    return np.concatenate(preds, axis=1), imp_sum / max(n, 1), used_F


def with_pretrained(pred_NxR: np.ndarray, pretrained_NxR: np.ndarray, groups: int) -> np.ndarray:
    """Each trial's members followed by their pretrained copies: `[G * 2M, R]`."""
    split = lambda a: a.reshape(groups, -1, a.shape[-1])
    return np.concatenate([split(pred_NxR), split(pretrained_NxR)], axis=1).reshape(-1, pred_NxR.shape[-1])


def score_resolved(run: RunContext, state: RunState, resolved: np.ndarray, log: MetricsLog | None = None) -> RunState:
    """Score every Hedge mixture on the eras resolved since the last call (before the members train
    on them: out of sample) and fold the scores into the Hedge weights (`log`: each era's scores)."""
    new = resolved[int(state.hedge.n_seen):]
    if not len(new):
        return state
    if not hedge_learns(run.cfg):
        return state.replace(hedge=state.hedge.replace(n_seen=state.hedge.n_seen + len(new)))
    hedge = update_hedge(state.hedge, mixture_corr(run, state, new, log), run.cfg.train.hedge_decay)
    return state.replace(hedge=hedge.replace(n_seen=hedge.n_seen + len(new)))


def mixture_corr(run: RunContext, state: RunState, positions: np.ndarray, log: MetricsLog | None = None) -> np.ndarray:
    """Every Hedge mixture's Numerai corr on each era at `positions` (their labelled rows), `[E, G * C]`;
    each era's row goes to `log` (`phase: hedge`, `hedge/corr_c`), Hedge's inputs, to study a rule after the run."""
    mix_CxN = expert_mixtures(run.cfg)  # N here: one trial's experts
    corr_ExC = []
    for e in positions:
        split, local = run.timeline.era(int(e))
        pred_NxR, _, _ = member_predictions(run, state, split, local, _one(era_context(run, np.array([int(e)]))))
        n = split.index.n_labeled[local]
        y_R = split.y_NxT[split.index.labeled_rows(local), 0]
        mixed_CxR = np.concatenate([mix_members(p[:, :n], mix_CxN) for p in np.split(pred_NxR, run.groups)])
        corr_ExC.append([float(era_corr(p, y_R)) for p in mixed_CxR])
        if log is not None:
            log.write(phase="hedge", era=run.timeline.name(int(e)),
                      **{f"hedge/corr_{c}": v if np.isfinite(v) else None for c, v in enumerate(corr_ExC[-1])})
    return np.array(corr_ExC, np.float64).reshape(len(positions), -1)


def raw_outputs(run: RunContext, state: RunState, positions: np.ndarray) -> np.ndarray:
    """Mean member output on each era's replay rows, padded to R (per trial in a population): what
    the replay buffer stores."""
    r, out = run.cfg.data.rows_per_era, []
    for e in positions:
        split, local = run.timeline.era(int(e))
        rows = era_rows(split, local, r, replay_rows_rng(run.cfg.seed, int(e)))
        context = _one(era_context(run, np.array([int(e)])))
        x_RxF = np.zeros((r, run.n_features), np.int8)
        x_RxF[: len(rows)] = split.x_NxF[rows]
        pred_NxR, _, _ = run.predict(state.train.ema_params, x_RxF, state.selection.mask_F, context)
        pred_NxR = np.asarray(pred_NxR)
        mean = pred_NxR.mean(axis=0) if run.groups == 1 else pred_NxR.reshape(run.groups, -1, r).mean(axis=1)
        out_R = np.zeros(mean.shape, np.float32)
        out_R[..., : len(rows)] = mean[..., : len(rows)]
        out.append(out_R)
    return np.stack(out) if out else np.zeros((0, r) if run.groups == 1 else (0, run.groups, r), np.float32)


def sampling_rng(run: RunContext, *path: int) -> np.random.Generator:
    return window_rng(run.cfg.seed, *path)


def _one(context: EraContext | None) -> EraContext | None:
    return None if context is None else jax.tree.map(lambda a: a[0], context)
