"""The walk-forward's run context: what a run reads but never changes, and the functions on it.

`RunContext` holds the resolved config (`resolve_config`: nothing of it is left to be worked out
later), the schedule (the era timeline, the eras it predicts, the era after them), the members
(`dynjax.train.members`), the model and its compiled steps and predict, the device-resident
data where the run places them there (`data.placement`), and the host-side era features
(`EraFeatures`: summaries for the encoder, evidence for the gates), all built once by
`make_run_context`. The module-level functions take it first: `batch_for` and `update_batch`
build step inputs, `train_step` runs one step, `predict_era` predicts one era,
`score_resolved` scores Hedge's mixtures and the frozen members' shares on eras that have resolved. Every random draw comes
from `(seed, phase, ...)` streams, so a resumed run draws exactly what an uninterrupted one would.
"""

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from optax import GradientTransformation

from dynjax.config import POPULATION_PATHS, LossConfig, ModelConfig, OptimConfig, RunConfig
from dynjax.data.context import EraContext
from dynjax.data.eras import resolved_eras, sliding_windows
from dynjax.data.numerai import EraData, NumeraiData
from dynjax.data.pairs import screen_pairs
from dynjax.data.resident import Resident, choose_placement, put_resident, resident_bytes
from dynjax.data.timeline import Timeline, make_timeline
from dynjax.data.windows import Batch, era_chunks, era_row_chunks, sample_eras, window_rng
from dynjax.eval.jax_corr import corr_rows, era_corr
from dynjax.model.attention_gam import FeatureAttentionModel
from dynjax.train.era_features import EraFeatures, make_era_features
from dynjax.train.hedge import as_device, mixture_weights, update_hedge
from dynjax.train.members import (
    Members,
    combine_trials,
    mix_members,
    plan_members,
    stack_frozen,
    with_frozen,
)
from dynjax.train.policy import as_predicted, chosen_weights, fold_policy
from dynjax.train.sharding import Layout, make_layout
from dynjax.train.state import RunState, initial_run_state, make_optimizer, resolve_decay
from dynjax.train.step import BatchSpec, make_predict, make_step

PRETRAIN, WALK = 1, 2  # phases in the sampling streams


@dataclass(frozen=True, eq=False)
class Schedule:
    """Which eras a run sees, in order, and which it predicts."""

    timeline: Timeline
    predicted: np.ndarray  # timeline positions of the walk-forward's eras (validation): its history
    live: np.ndarray  # timeline positions of the live eras: all predicted as the era after the history
    next_number: int  # that era's number: the last history era's + 1


@dataclass(frozen=True, eq=False)
class RunContext:
    cfg: RunConfig  # resolved (`resolve_config`)
    schedule: Schedule
    members: Members
    model: FeatureAttentionModel
    optimizer: GradientTransformation
    pretrain_step: callable  # jitted population step of pretraining's batches (state donated)
    update_step: callable  # of the walk-forward's update batches (the same function when they agree)
    predict: callable  # jitted population predict
    layout: Layout  # the device mesh both run on, and the state's shardings
    resident: Resident | None  # the timeline's rows on the devices (`data.placement`), else None: host rows
    features: EraFeatures  # the eras' summaries and gate evidence: their era contexts
    root_key: jax.Array
    groups: int = 1  # trials in a population sweep (each `cfg.train.ensemble` members); 1 for a run

    @property
    def n_features(self) -> int:
        return self.model.n_features

    @property
    def corr_rows(self) -> int:
        """The padded length of every era's corr in the run (`era_corr`): one program for all its eras."""
        return corr_rows(max(int(s.index.n_labeled.max(initial=0)) for s in self.schedule.timeline.splits))

    def fresh_state(self) -> RunState:
        return self.place(initial_run_state(self.members, self.model, self.optimizer, self.root_key, self.groups))

    def place(self, state: RunState) -> RunState:
        """The state on the mesh: host-side updates (selection, Hedge) leave parts of it on one
        local device, which a multi-process checkpoint cannot write."""
        return self.layout.put(state, self.layout.state_shardings(state))

    def abstract_state(self) -> RunState:
        """Shapes, dtypes and shardings of the run state (the restore target)."""
        return abstract_run_state(self.members, self.model, self.optimizer, self.layout, self.root_key, self.groups)


@dataclass(frozen=True, eq=False)
class Predictor:
    """What predicting needs without a timeline (`dynjax predict` on a live file)."""

    cfg: RunConfig
    members: Members
    model: FeatureAttentionModel
    optimizer: GradientTransformation
    predict: callable  # jitted predict over the ensemble's members
    layout: Layout
    groups: int = 1
    resident: None = None  # a live file's rows are predicted from the host

    @property
    def n_features(self) -> int:
        return self.model.n_features

    def abstract_state(self) -> RunState:
        """Shapes, dtypes and shardings of the run state (the restore target)."""
        return abstract_run_state(self.members, self.model, self.optimizer, self.layout, jax.random.key(self.cfg.seed))


def abstract_run_state(members: Members, model: FeatureAttentionModel, optimizer: GradientTransformation,
                       layout: Layout, key: jax.Array, groups: int = 1) -> RunState:
    """The run state's shapes and dtypes with the layout's shardings (Orbax restores onto them)."""
    abstract = jax.eval_shape(lambda: initial_run_state(members, model, optimizer, key, groups))
    return layout.abstract(abstract, layout.state_shardings(abstract))


def make_predictor(cfg: RunConfig, n_features: int) -> Predictor:
    """The predictor of a resolved config (a run's `next/` state holds one)."""
    fns = compiled(cfg.model, n_features, cfg.loss, cfg.optim, cfg.train.ensemble, mesh=cfg.train.mesh,
                   chunks=(cfg.train.predict_chunk,))
    return Predictor(cfg, plan_members(cfg), fns.model, fns.optimizer, fns.predict, fns.layout)


@dataclass(frozen=True, eq=False)
class Compiled:
    """A config's model, optimiser and device layout, and its jitted steps (one per batch spec) and predict."""

    model: FeatureAttentionModel
    optimizer: GradientTransformation
    layout: Layout
    steps: dict  # BatchSpec -> jitted population step
    predict: callable


@lru_cache(maxsize=8)
def compiled(model_cfg: ModelConfig, n_features: int, loss_cfg: LossConfig, optim_cfg: OptimConfig, n_members: int,
             hyper: tuple[tuple[str, tuple[float, ...]], ...] | None = None, mesh: str = "",
             specs: tuple[BatchSpec, ...] = (), resident: bool = False, chunks: tuple[int, ...] = ()) -> Compiled:
    """The model and jitted functions of a config, built once per process: runs of one config
    (seeds, resumes, updates, ensemble members) reuse the same jitted functions, so they trace
    and compile once. `hyper`: a population's float hyperparameters (`hyper_G` as sorted items);
    `mesh`: `train.mesh`, the devices they run on; `specs`: the batches the steps take;
    `resident`/`chunks`: what predict is fed (row numbers into device-resident data, and the
    chunk sizes)."""
    hyper_G = None if hyper is None else {k: list(v) for k, v in hyper}
    groups = 1 if hyper is None else len(hyper[0][1])
    model = FeatureAttentionModel(model_cfg, n_features)
    layout = make_layout(mesh, n_features)
    steps = {spec: make_step(model, loss_cfg, optim_cfg, layout, n_members, spec, hyper_G) for spec in specs}
    predict = make_predict(model, layout, n_members * groups, resident, chunks)
    return Compiled(model, make_optimizer(optim_cfg), layout, steps, predict)


def batch_specs(cfg: RunConfig, members: Members, resident: bool) -> tuple[BatchSpec, BatchSpec]:
    """The batch specs of pretraining's windows and of the walk-forward's updates (members with
    different memories each get a window of their own there)."""
    windows, r = (cfg.data.window_eras,), cfg.data.rows_per_era
    return BatchSpec(resident, False, windows, r), BatchSpec(resident, members.per_member_windows, windows, r)


def resolve_config(cfg: RunConfig, data: NumeraiData, timeline: Timeline) -> RunConfig:
    """`cfg` with what it leaves to the data worked out, once, before anything is compiled:
    - `optim.decay_steps` 0: the pretraining's steps, so the learning rate anneals over them;
    - `loss.prior_rows` 0: the training split's labelled rows, so the additive prior is a ridge's over
      the rows pretraining fits (and stays that strength in the updates);
    - `model.pairs` > 0 with no `pair_index`: the pairs screened on the eras pretraining fits
      (`dynjax.data.pairs`; the same for the same training data, so a resume or an update rebuilds
      the same model)."""
    first = data.train.index.n_eras
    if first >= timeline.n_eras:  # nothing to walk over: nothing to resolve against
        return cfg
    _, fit, _, windows = pretrain_plan(cfg, timeline, first)
    optim = resolve_decay(cfg.optim, len(windows) * cfg.train.pretrain_epochs)
    loss = cfg.loss if cfg.loss.prior_rows else dataclasses.replace(cfg.loss, prior_rows=max(int(data.train.index.n_labeled.sum()), 1))
    model = cfg.model
    if model.pairs and not model.pair_index:
        pairs_Px2, _ = screen_pairs(data.train, fit, model.pairs, model.pair_rows, model.pair_t, target=0)
        model = dataclasses.replace(model, pair_index=tuple(int(i) for i in pairs_Px2.reshape(-1)))
    return dataclasses.replace(cfg, optim=optim, loss=loss, model=model)


def pretrain_plan(cfg: RunConfig, timeline: Timeline, first: int) -> tuple[np.ndarray, ...]:
    """`(resolved, fit, holdout, windows)` of pretraining before timeline position `first`: the eras
    resolved then, those trained on, the last `holdout_eras` of them, and the fit eras' sliding
    windows (their count is the steps per epoch). With early stopping (`train.patience`) the fit
    eras end `embargo` eras before the holdout, so holdout targets never leak; without, pretraining
    fits every resolved era."""
    embargo = cfg.data.embargo_eras
    resolved = timeline.resolved(first, embargo)
    holdout = resolved[-cfg.train.holdout_eras:]
    fit = resolved
    if cfg.train.patience:
        fit = resolved[resolved_eras(timeline.numbers_E[resolved], int(timeline.numbers_E[holdout[0]]), embargo)]
    windows = sliding_windows(fit, cfg.data.window_eras, cfg.train.window_stride)
    if len(windows) == 0:
        raise ValueError(f"too few resolved eras to pretrain: {len(fit)} fit eras for windows of {cfg.data.window_eras}")
    return resolved, fit, holdout, windows


def make_run_context(cfg: RunConfig, data: NumeraiData, hyper_G: dict[str, list[float]] | None = None) -> RunContext:
    """Timeline, resolved config, members, compiled functions and host-side era context of a run over `data`.

    `hyper_G`: a population sweep, one trial per value of these float hyperparameters (config
    paths in `POPULATION_PATHS`, values replacing the config's), trained by one vmapped step.
    """
    splits = [s for s in (data.train, data.validation, data.live) if s is not None]
    timeline = make_timeline(*splits)
    n_history = timeline.n_eras - (data.live.index.n_eras if data.live is not None else 0)
    next_number = int(timeline.numbers_E[n_history - 1]) + 1
    groups = 1 if hyper_G is None else check_population(cfg, hyper_G)
    hyper = None if hyper_G is None else tuple((k, tuple(float(x) for x in v)) for k, v in sorted(hyper_G.items()))
    cfg = resolve_config(cfg, data, timeline)
    members = plan_members(cfg)
    on_device = placement(cfg, tuple(splits)) == "device"
    specs = batch_specs(cfg, members, on_device)
    fns = compiled(cfg.model, data.train.x_NxF.shape[1], cfg.loss, cfg.optim, cfg.train.ensemble, hyper, cfg.train.mesh,
                   tuple(dict.fromkeys(specs)), on_device, (cfg.train.predict_chunk, cfg.data.rows_per_era))
    resident = put_resident(tuple(splits), fns.layout.put, fns.layout.replicated) if on_device else None
    schedule = Schedule(timeline, np.arange(data.train.index.n_eras, n_history), np.arange(n_history, timeline.n_eras),
                        next_number)
    return RunContext(
        cfg=cfg, schedule=schedule, members=members, model=fns.model, optimizer=fns.optimizer,
        pretrain_step=fns.steps[specs[0]], update_step=fns.steps[specs[1]], predict=fns.predict, layout=fns.layout,
        resident=resident, features=make_era_features(cfg, splits, timeline, next_number),
        root_key=jax.random.key(cfg.seed), groups=groups,
    )


def placement(cfg: RunConfig, splits: tuple[EraData, ...]) -> str:
    """"device" or "host": where this run's rows are read from (`data.placement`)."""
    return choose_placement(cfg.data.placement, resident_bytes(splits), jax.devices(), cfg.data.device_share)


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


def batch_for(run: RunContext, positions: np.ndarray, rng: np.random.Generator) -> Batch:
    """A window of eras with R random rows each, and the eras' contexts."""
    batch = sample_eras([run.schedule.timeline.era(int(e)) for e in positions], run.cfg.data.rows_per_era, rng,
                        offsets=row_offsets(run, positions))
    return batch.replace(context=run.features.at(positions))


def row_offsets(run: RunContext, positions) -> list[int] | None:
    """Each era's first row in the device-resident data (None: the run reads rows on the host)."""
    return None if run.resident is None else [run.schedule.timeline.row_offset(int(e)) for e in positions]


def update_batch(run: RunContext, resolved: np.ndarray, rng: np.random.Generator) -> Batch:
    """A walk-forward update on the eras resolved so far: each member's recent eras (the latest
    window, or `data.window_eras` drawn from its `train.horizons` memory), with a leading member
    axis when the members' memories differ."""
    horizons = run.members.horizons_M
    if not run.members.per_member_windows:
        return batch_for(run, _recent(run, resolved, horizons[0] if horizons else None, rng), rng)
    # One stream per member, drawn from the shared one: a member's draws do not depend on the others'.
    seeds = rng.integers(2**63, size=len(horizons))
    windows = []
    for h, seed in zip(horizons, seeds):
        member_rng = np.random.default_rng(seed)
        windows.append(batch_for(run, _recent(run, resolved, h, member_rng), member_rng))
    return jax.tree.map(lambda *a: np.stack(a), *windows)


def _recent(run: RunContext, resolved: np.ndarray, horizon: int | None, rng: np.random.Generator) -> np.ndarray:
    """The eras of one member's update: the latest window, or W eras of the latest `horizon` (0: all)."""
    w = run.cfg.data.window_eras
    if horizon is None:
        return resolved[-w:]
    pool = resolved[-horizon:] if horizon else resolved
    if len(pool) < w:  # a memory shorter than the window repeats eras: every member's window has W eras
        return np.sort(np.r_[pool, rng.choice(pool, w - len(pool))])
    return pool if len(pool) == w else np.sort(rng.choice(pool, w, replace=False))


def train_step(run: RunContext, state: RunState, batch: Batch, key: jax.Array, update: bool = False) -> tuple[RunState, dict]:
    """One population step under the selection mask (`update`: a walk-forward update's batch, else pretraining's)."""
    step = run.update_step if update else run.pretrain_step
    train, metrics = step(state.train, batch, state.selection.mask_F, key, run.resident)
    return state.replace(train=train), metrics


def predict_era(run: RunContext, state: RunState, e: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Era `e`'s prediction with the selection mask, [G, R] (G = 1 but in a population sweep),
    its importances, and the features used. A live era is predicted as the era after the history."""
    split, local = run.schedule.timeline.era(e)
    context = run.features.next_context if e >= run.schedule.timeline.n_eras - len(run.schedule.live) else run.features.of(e)
    return predict_rows(run, state, split, local, context)


def predict_rows(run: RunContext | Predictor, state: RunState, split: EraData, local: int,
                 context: EraContext | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`predict_era` for era `local` of any split, with the era context given: the members' and the
    frozen members' tie-kept ranks mixed per era by `run_weights`; the members' importances."""
    pred_GMxR, imp_F, used_F = member_predictions(run, state, split, local, context)
    frozen_GMxR = raw_predictions(run, state.frozen, state.selection.mask_F, split, local, context)
    pred_GNxR = stack_frozen(pred_GMxR, frozen_GMxR, run.groups)
    return combine_trials(pred_GNxR, run.groups, run_weights(run, state)), imp_F, used_F


def walk_rows(run: RunContext, state: RunState, split: EraData, local: int, context: EraContext | None) -> np.ndarray:
    """The members' predictions alone, mixed by their Hedge weights, `[G, R]` (pretraining's holdout)."""
    pred_GMxR, _, _ = member_predictions(run, state, split, local, context)
    return combine_trials(pred_GMxR, run.groups, walk_weights(run, state))


def run_weights(run: RunContext | Predictor, state: RunState) -> np.ndarray:
    """Each trial's weights over its members then its frozen members, `[G * 2M]`: Hedge's over the
    members' mixtures, scaled by the safe expert's frozen share (Hedge over `train.frozen_shares`)."""
    return with_frozen(walk_weights(run, state), frozen_share(run, state), run.members.mixtures_XxM)


def walk_weights(run: RunContext | Predictor, state: RunState) -> np.ndarray:
    """Each trial's weights over its members, `[G * M]`: Hedge's under the mixing policy that pays."""
    members = run.members
    return chosen_weights(state.hedge, state.policy, members.policies, members.mixtures_XxM)


def frozen_share(run: RunContext | Predictor, state: RunState) -> np.ndarray:
    """Each trial's frozen share of its prediction, `[G]`: the shares weighed by Hedge over them."""
    return mixture_weights(state.floor, run.cfg.train.hedge_eta, len(run.members.frozen_A)) @ run.members.frozen_A


def member_predictions(run: RunContext | Predictor, state: RunState, split: EraData, local: int,
                       context: EraContext | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every member's prediction of every row of one era, `[G * M, R]`, the
    members' mean importances and the features used (kept by the mask and open in some member).

    With a selection mode, importances come from attention over all features (a second, unmasked
    pass), so a feature dropped in one regime can win its place back in the next."""
    params, mask_F = state.train.ema_params, state.selection.mask_F
    all_F = jnp.ones(run.n_features, bool)
    preds, imp_sum, used_F, n = [], np.zeros(run.n_features), np.zeros(run.n_features, bool), 0
    for x_RxF, mask_R, _ in chunks(run, split, local):
        pred_GMxR, weight_sum_GMxF, gate_GMxF = run.predict(params, x_RxF, mask_R, mask_F, context, run.resident)
        if run.cfg.selection.mode != "none":
            _, weight_sum_GMxF, _ = run.predict(params, x_RxF, mask_R, all_F, context, run.resident)
        preds.append(np.asarray(pred_GMxR)[:, mask_R])
        imp_sum += np.asarray(weight_sum_GMxF).mean(axis=0)
        used_F = np.asarray(mask_F) & (np.asarray(gate_GMxF) > 0).any(axis=0)
        n += int(mask_R.sum())
    return np.concatenate(preds, axis=1), imp_sum / max(n, 1), used_F


def raw_predictions(run: RunContext | Predictor, params, mask_F, split: EraData, local: int,
                    context: EraContext | None) -> np.ndarray:
    """The predictions `[G * M, R]` of stacked params (the frozen members) for one era's rows."""
    return np.concatenate([np.asarray(run.predict(params, x_RxF, mask_R, mask_F, context, run.resident)[0])[:, mask_R]
                           for x_RxF, mask_R, _ in chunks(run, split, local)], axis=1)


def chunks(run: RunContext | Predictor, split: EraData, local: int):
    """An era's rows in predict chunks: feature rows from the host, or row numbers into the resident data."""
    size = run.cfg.train.predict_chunk
    if run.resident is None:
        return era_chunks(split, local, size)
    return era_row_chunks(split, local, size, int(run.schedule.timeline.offsets_S[run.schedule.timeline.splits.index(split)]))


def score_resolved(run: RunContext, state: RunState, resolved: np.ndarray) -> tuple[RunState, list[tuple[str, list, list]]]:
    """Score every Hedge mixture, every mixing policy and every frozen share on the eras resolved
    since the last call, one era at a time in order (before the members train on them: out of
    sample), and fold the scores into the Hedges and the policies. Returns the state and each scored
    era's `(name, corr per mixture, corr per frozen share)`, their inputs, for the log."""
    new = resolved[int(state.hedge.n_seen):]
    if not len(new):
        return state, []
    scored = []
    t, members = run.cfg.train, run.members
    if t.hedge_eta and max(len(members.mixtures_XxM), len(members.frozen_A)) > 1:
        for e in new:
            corr_GX, floor_GA, policy_GP = resolved_corr(run, state, int(e))
            state = state.replace(hedge=update_hedge(state.hedge, corr_GX[None], t.hedge_decay),
                                  floor=update_hedge(state.floor, floor_GA[None], t.hedge_decay),
                                  policy=fold_policy(state.policy, corr_GX, policy_GP, t.hedge_decay))
            scored.append((run.schedule.timeline.name(int(e)), corr_GX.tolist(), floor_GA.tolist()))
    return state.replace(hedge=state.hedge.replace(n_seen=as_device(np.int32(int(state.hedge.n_seen) + len(new))))), scored


def resolved_corr(run: RunContext, state: RunState, e: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numerai corr on the era at position `e` (its labelled rows) of every Hedge mixture of the
    members, `[G * X]`, of every frozen share, `[G * A]` (the members mixed by today's weights, the
    frozen ones as in `run_weights`), and of every mixing policy, `[G * P]` (the members mixed by the
    weights each policy had when the era was predicted; zeros with one policy)."""
    members = run.members
    walk_GxM = walk_weights(run, state).reshape(run.groups, -1)
    shares_GxAxN = [np.stack([with_frozen(w_M, [a], members.mixtures_XxM) for a in members.frozen_A]) for w_M in walk_GxM]
    policy_GxPxM = as_predicted(state.policy, members.policies, members.mixtures_XxM)
    split, local = run.schedule.timeline.era(e)
    context = run.features.of(e)
    pred_GMxR, _, _ = member_predictions(run, state, split, local, context)
    frozen_GMxR = raw_predictions(run, state.frozen, state.selection.mask_F, split, local, context)
    n = split.index.n_labeled[local]
    y_R = split.y_NxT[split.index.labeled_rows(local), 0]
    corr = lambda mixed_XxR: [float(era_corr(p, y_R, run.corr_rows)) for p in mixed_XxR]
    trials = zip(np.split(pred_GMxR[:, :n], run.groups), np.split(frozen_GMxR[:, :n], run.groups), shares_GxAxN, policy_GxPxM)
    x, a, p = [], [], []
    for p_MxR, f_MxR, share_AxN, w_PxM in trials:
        x += corr(mix_members(p_MxR, members.mixtures_XxM)) if len(p_MxR) > 1 else corr(p_MxR)
        a += corr(mix_members(np.concatenate([p_MxR, f_MxR]), share_AxN))
        p += corr(mix_members(p_MxR, w_PxM)) if members.policies.n > 1 else [0.0]
    return np.array(x, np.float64), np.array(a, np.float64), np.array(p, np.float64)


def sampling_rng(run: RunContext, *path: int) -> np.random.Generator:
    return window_rng(run.cfg.seed, *path)
