"""The train step and predict, built in one place for runs, tests and benchmarks alike.

    step = make_step(model, loss_cfg, optim_cfg, layout, n_members, spec)
    step(states_GM, batch, feature_mask_F, key, data) -> (states_GM, metrics)
    predict = make_predict(model, layout, n_members, resident, chunks)
    predict(params_GM, x_RxF | rows_R, valid_R, feature_mask_F, context, data) -> (pred_GMxR, weight_sum_GMxF, gate_GMxF)

One era's loss (`make_window_loss`), vmapped over the W eras of a window, is one member's
update (`member_step`); `jax.vmap` takes it over the stacked members (G trials of a population
sweep x M members; a run is one trial, G = 1), and `jax.jit` compiles that once, with
in/out shardings from the abstract state and the `BatchSpec` (state donated). `data` is the
device-resident `Resident` (`data.placement=device`: the batch holds row numbers and the step
gathers the rows) or None (host rows in the batch). G * M = 1 runs the plain member step on the one
member, so a single model pays nothing for the member axis.
"""

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

from dynjax.config import LossConfig, OptimConfig
from dynjax.data.context import EraContext
from dynjax.data.resident import Resident, gather_rows, gather_targets
from dynjax.data.windows import Batch
from dynjax.model.attention_gam import FeatureAttentionModel
from dynjax.model.losses import additive_prior, era_loss, needs_row_weights
from dynjax.train.sharding import Layout
from dynjax.train.state import TrainState, make_optimizer, member_keys, train_state_init


@dataclass(frozen=True)
class BatchSpec:
    """What a step's batches are, fixed when it is jitted (so it never retraces on the batch):
    row numbers into device-resident data (`resident`) or host rows; one window per member
    (`per_member`: a leading member axis, members with different memories); the window sizes W
    it is fed and the rows per era R (the data axis splits the eras when every W divides)."""

    resident: bool = False
    per_member: bool = False
    windows: tuple[int, ...] = (16,)
    rows: int = 512


def make_window_loss(model: FeatureAttentionModel, loss_cfg: LossConfig) -> Callable:
    """`window_loss(params, batch, feature_mask_F, key, prior_scale=1) -> (loss, metrics)`: the eras'
    mean loss plus `prior_scale` times the additive path's prior (`loss.prior_rows` resolved by the
    run; 0 leaves it out)."""

    row_weights = needs_row_weights(loss_cfg)  # the prediction alone is much cheaper (`FeatureAttentionModel`)

    def loss_one_era(params, era: Batch, feature_mask_F, key):
        dropout_key, gates_key = jax.random.split(key)
        pred_R, aux = model.apply(params, era.x_WxRxF, feature_mask_F, era.context, deterministic=False,
                                  row_weights=row_weights, rngs={"dropout": dropout_key, "gates": gates_key})
        return era_loss(pred_R, era.y_WxR, era.mask_WxR, aux, loss_cfg)

    def window_loss(params, batch: Batch, feature_mask_F, key, prior_scale=1.0):
        keys_W = jax.random.split(key, batch.y_WxR.shape[0])
        total_W, terms_W = jax.vmap(loss_one_era, in_axes=(None, 0, None, 0))(params, batch, feature_mask_F, keys_W)
        era_w_W = batch.mask_WxR.any(axis=1).astype(total_W.dtype)  # every era with rows counts equally
        mean = lambda v: (era_w_W * v).sum() / jnp.maximum(era_w_W.sum(), 1.0)
        prior = prior_scale * additive_prior(params, loss_cfg)
        terms = jax.tree.map(mean, terms_W)
        terms.update(loss=terms["loss"] + prior, prior=prior)
        return mean(total_W) + prior, terms

    return window_loss


def member_step(model: FeatureAttentionModel, loss_cfg: LossConfig, optim_cfg: OptimConfig) -> Callable:
    """One member's pure update `(state, batch, feature_mask_F, key, hyper=None) -> (state, metrics)`.

    `optim.ema_decay` > 0 keeps a Polyak average of the params in `state.ema_params` (what
    prediction uses); at 0 the average is the params themselves. `hyper`, where given, holds
    traced float hyperparameters by config path (`POPULATION_PATHS`) in place of the config's,
    so one compiled step serves a population of trials that differ only in them.
    """
    window_loss, optimizer, ema_decay = make_window_loss(model, loss_cfg), make_optimizer(optim_cfg), optim_cfg.ema_decay

    def step(state: TrainState, batch: Batch, feature_mask_F, key, hyper=None):
        key = jax.random.fold_in(key, state.step)
        loss_fn, opt = window_loss, optimizer
        if hyper is not None:
            loss_fn, opt = make_window_loss(model, hyper_loss(loss_cfg, hyper)), make_optimizer(optim_cfg, hyper)
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, feature_mask_F, key,
                                                                       state.prior_scale)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = optax.incremental_update(params, state.ema_params, 1.0 - ema_decay) if ema_decay else params
        metrics["grad_norm"] = optax.tree.norm(grads)
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1, ema_params=ema), metrics

    return step


def hyper_loss(loss_cfg: LossConfig, hyper: dict) -> LossConfig:
    """The loss config with a population member's (traced) loss weights."""
    fields = {path.removeprefix("loss."): v for path, v in hyper.items() if path.startswith("loss.")}
    return dataclasses.replace(loss_cfg, **fields)


def make_step(model: FeatureAttentionModel, loss_cfg: LossConfig, optim_cfg: OptimConfig, layout: Layout,
              n_members: int, spec: BatchSpec, hyper_G: dict | None = None) -> Callable:
    """The jitted, state-donating `step(states_GM, batch, feature_mask_F, key, data)` over stacked members.

    The states are G trials of `n_members` members each, stacked trial by trial: G = 1
    for a run (the config's hyperparameters), else one trial per value of `hyper_G` (float
    hyperparameters by config path). The members of every trial get the keys a run of that trial
    alone would. The train states' shardings come from their abstract shapes
    (`abstract_members`), the batch's from `spec`.
    """
    groups = 1 if hyper_G is None else len(next(iter(hyper_G.values())))
    population = _population(member_step(model, loss_cfg, optim_cfg), groups, n_members, spec.per_member, hyper_G)

    def step(states: TrainState, batch: Batch, feature_mask_F, key, data: Resident | None):
        check_batch(batch, spec)
        if spec.resident:
            batch = gather_batch(batch, data)
        return population(states, batch, feature_mask_F, key)

    states_sh = layout.train_shardings(abstract_members(model, optim_cfg, groups * n_members))
    batch_sh = layout.batch_shardings(layout.window_axis(spec.windows, spec.rows), lead=int(spec.per_member))
    rep = layout.replicated
    in_sh = (states_sh, batch_sh, rep, rep, rep)
    return _global_inputs(jax.jit(step, in_shardings=in_sh, out_shardings=(states_sh, rep), donate_argnums=0), layout, in_sh)


def check_batch(batch: Batch, spec: BatchSpec) -> None:
    """At trace time: the batch is what the step was built for (a window per member or one shared,
    rows or row numbers); a mismatch would vmap the wrong axis."""
    rows = batch.rows_WxR if spec.resident else batch.y_WxR
    if rows is None or rows.ndim != 2 + spec.per_member:
        kind = "row numbers (rows_WxR)" if spec.resident else "host rows (x, y, mask)"
        raise ValueError(f"this step takes {kind} with {'a' if spec.per_member else 'no'} leading member axis; got "
                         f"rows_WxR {None if batch.rows_WxR is None else batch.rows_WxR.shape}, "
                         f"y_WxR {None if batch.y_WxR is None else batch.y_WxR.shape} (a walk-forward update's batch "
                         "goes to the update step: train_step(..., update=True))")


def gather_batch(batch: Batch, data: Resident) -> Batch:
    """The batch's rows gathered from the device-resident data: `x`, `y` and `mask` from `rows_WxR`."""
    y_WxR, mask_WxR = gather_targets(data, batch.rows_WxR)
    return batch.replace(x_WxRxF=gather_rows(data, batch.rows_WxR), y_WxR=y_WxR, mask_WxR=mask_WxR, rows_WxR=None)


@functools.lru_cache(maxsize=32)
def abstract_members(model: FeatureAttentionModel, optim_cfg: OptimConfig, n: int) -> TrainState:
    """Shapes and dtypes of `n` stacked member train states (cached: tracing the init costs ~0.5 s)."""
    init = train_state_init(model, make_optimizer(optim_cfg))
    return jax.eval_shape(jax.vmap(init), jax.eval_shape(lambda: member_keys(jax.random.key(0), n)))


def _population(step_fn: Callable, groups: int, n_members: int, per_member: bool, hyper_G: dict | None) -> Callable:
    """`step_fn` over the G x M stacked members: vmapped over the members of a trial, then over
    the trials (each with its own `hyper_G` values; the config's where None); one member is called alone."""
    hyper_G = None if hyper_G is None else {k: jnp.asarray(v, jnp.float32) for k, v in hyper_G.items()}
    if groups * n_members == 1:
        def one(states, batch, feature_mask_F, key):
            batch = _first(batch) if per_member else batch
            state, metrics = step_fn(_first(states), batch, feature_mask_F, key, _first(hyper_G))
            return _stack1(state), metrics

        return one

    def population(states, batch, feature_mask_F, key):
        by_trial = jax.tree.map(lambda a: a.reshape(groups, n_members, *a.shape[1:]), states)
        # Per-member batches ([M, ...]) are shared by the trials: member m of every trial trains on the same eras.
        members = jax.vmap(step_fn, in_axes=(0, 0 if per_member else None, None, 0, None))
        by_trial, metrics = jax.vmap(members, in_axes=(0, None, None, None, None if hyper_G is None else 0))(
            by_trial, batch, feature_mask_F, member_keys(key, n_members), hyper_G)
        states = jax.tree.map(lambda a: a.reshape(groups * n_members, *a.shape[2:]), by_trial)
        return states, jax.tree.map(lambda m: m.mean(axis=(0, 1)), metrics)

    return population


def predict_fn(model: FeatureAttentionModel) -> Callable:
    """One member's pure `predict(params, x_RxF, valid_R, feature_mask_F, context) -> (pred_R, weight_sum_F, gate_F)`:
    the rows' predictions, the weights summed over the valid rows (importances), the era's gates."""

    def predict(params, x_RxF, valid_R, feature_mask_F, context: EraContext | None = None):
        pred_R, aux = model.apply(params, x_RxF, feature_mask_F, context, row_weights=False, valid_R=valid_R)
        return pred_R, aux["weight_sum_F"], aux["gate_F"]

    return predict


def make_predict(model: FeatureAttentionModel, layout: Layout, n_members: int, resident: bool = False,
                 chunks: tuple[int, ...] = ()) -> Callable:
    """Jitted `predict(params_GM, x_RxF | rows_R, valid_R, feature_mask_F, context, data) -> (pred_GMxR,
    weight_sum_GMxF, gate_GMxF)` over stacked members, on the layout's mesh (outputs replicated). With
    `resident` it takes a chunk's row numbers (-1 pads) and gathers them from `data`; `valid_R` marks
    the chunk's real rows (importances sum over them); `chunks` are the chunk sizes it is fed (their
    rows split on the data axis when they all divide)."""
    one = predict_fn(model)
    if n_members == 1:
        members = lambda params, *rest: _stack1(one(_first(params), *rest))
    else:
        members = jax.vmap(one, in_axes=(0, None, None, None, None))

    def predict(params, chunk, valid_R, feature_mask_F, context, data: Resident | None):
        return members(params, gather_rows(data, chunk) if resident else chunk, valid_R, feature_mask_F, context)

    params_sh = layout.train_shardings(abstract_members(model, OptimConfig(), n_members).ema_params)
    rep = layout.replicated
    rows_sh = layout.rows_sharding(*chunks) if chunks else rep
    in_sh = (params_sh, rows_sh, rows_sh, rep, rep, rep)
    return _global_inputs(jax.jit(predict, in_shardings=in_sh, out_shardings=rep), layout, in_sh)


def _global_inputs(jitted: Callable, layout: Layout, in_shardings: tuple) -> Callable:
    """`jitted` as it is in one process; across processes, host inputs become global arrays first
    (each process supplies its devices' shards of the same host data: `Layout.put`)."""
    if jax.process_count() == 1:
        return jitted

    def call(*args):
        # in_shardings is a prefix of args: each sharding covers the whole subtree under it
        put = lambda sharding, subtree: layout.put(subtree, jax.tree.map(lambda _: sharding, subtree))
        return jitted(*jax.tree.map(put, in_shardings, args))

    return call


def _first(tree):
    return jax.tree.map(lambda a: a[0], tree)


def _stack1(tree):
    return jax.tree.map(lambda a: a[None], tree)

