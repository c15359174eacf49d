"""Train state (params, optimiser state, step, EMA params), the optax optimiser, and the run state.

A run's state is what a checkpoint holds besides the cursor and the config: the members' train
states stacked on a leading axis (G trials x M members; G = 1 for a run), the selection state,
the root RNG key data, the Hedge scores, and the members frozen after pretraining with the scores
of their shares (the safe expert).
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dynjax.config import ModelConfig, OptimConfig
from dynjax.data.bins import N_BINS
from dynjax.data.context import EraContext
from dynjax.model.attention_gam import FeatureAttentionModel
from dynjax.model.selection import SelectionState, init_selection
from dynjax.train.era_features import reads_context
from dynjax.train.hedge import HedgeState, init_hedge
from dynjax.train.members import Members
from dynjax.train.policy import PolicyState, init_policy


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    step: jnp.ndarray  # int32 scalar
    ema_params: Any  # Polyak average of params (equal to params when the decay is 0): what predicts
    prior_scale: jnp.ndarray  # float32 scalar: this member's share of the additive prior (`loss.prior_members`)


@struct.dataclass
class RunState:
    """Everything a checkpoint holds besides the cursor and the config."""

    train: TrainState  # members stacked on a leading axis
    selection: SelectionState
    rng: jnp.ndarray  # key data of the root key
    hedge: HedgeState  # the members' online mixing weights (`train.hedge_eta`)
    frozen: Any  # the members' EMA params as pretraining left them: the safe expert (`train.frozen_shares`)
    floor: HedgeState  # Hedge over the frozen members' shares of the prediction
    policy: PolicyState  # which of the members' mixing policies pays (`train.hedge_etas`)


def make_optimizer(cfg: OptimConfig, hyper: dict[str, jnp.ndarray] | None = None) -> optax.GradientTransformation:
    """AdamW on the config's schedule after global-norm clipping; `hyper` (traced `optim.learning_rate`
    / `optim.weight_decay` of one population member) replaces the config's values, the schedule then
    scaled by the peak. `decay_steps` 0 (resolved by the run) decays over one step past the warm-up."""
    hyper = hyper or {}
    cfg = resolve_decay(cfg, cfg.warmup_steps + 1)
    if "optim.learning_rate" in hyper:
        unit = optax.warmup_cosine_decay_schedule(0.0, 1.0, cfg.warmup_steps, cfg.decay_steps, cfg.end_lr_fraction)
        peak = hyper["optim.learning_rate"]
        schedule = lambda count: peak * unit(count)
    else:
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=cfg.learning_rate, warmup_steps=cfg.warmup_steps,
            decay_steps=cfg.decay_steps, end_value=cfg.learning_rate * cfg.end_lr_fraction,
        )
    weight_decay = hyper.get("optim.weight_decay", cfg.weight_decay)
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), optax.adamw(schedule, weight_decay=weight_decay, mask=decayed))


def resolve_decay(cfg: OptimConfig, pretrain_steps: int) -> OptimConfig:
    """`decay_steps=0` (auto) made the pretraining's step count (at least one past the warm-up)."""
    if cfg.decay_steps:
        return cfg
    return dataclasses.replace(cfg, decay_steps=max(int(pretrain_steps), cfg.warmup_steps + 1))


def decayed(params) -> Any:
    """Weight decay applies to every param but the fixed ones (the gates' thresholds)."""
    return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[-1], "key", None) != "threshold", params)


def dummy_context(cfg: ModelConfig, n_features: int) -> EraContext | None:
    """An `EraContext` of the right shapes for `init` (None when the model reads none)."""
    if not reads_context(cfg):
        return None
    return EraContext(jnp.zeros((n_features, len(cfg.evidence_eras))))


def create_train_state(
    model: FeatureAttentionModel, optimizer: optax.GradientTransformation, key: jax.Array
) -> TrainState:
    """Initialise params from dummy inputs of the model's shapes."""
    return train_state_init(model, optimizer)(key)


@functools.lru_cache(maxsize=16)
def train_state_init(model: FeatureAttentionModel, optimizer: optax.GradientTransformation) -> Callable:
    """Jitted `init(key) -> TrainState`; run eagerly, init would compile each of its small ops alone.

    Cached per (model, optimizer), so initialising many members or seeds compiles once.
    """

    def init(key: jax.Array) -> TrainState:
        x_RxF = jnp.zeros((2, model.n_features), jnp.int8) + (N_BINS - 1)
        params_key, gates_key = jax.random.split(key)
        params = model.init({"params": params_key, "gates": gates_key}, x_RxF, None, dummy_context(model.cfg, model.n_features))
        # A copy, not the same arrays: the step donates both, and one buffer cannot be donated twice.
        ema_params = jax.tree.map(jnp.copy, params)
        return TrainState(params=params, opt_state=optimizer.init(params), step=jnp.zeros((), jnp.int32),
                          ema_params=ema_params, prior_scale=jnp.ones((), jnp.float32))

    return jax.jit(init)


def with_thresholds(members: TrainState, thresholds_GM: tuple[float, ...]) -> TrainState:
    """Stacked members whose context gates hold the given thresholds (params and EMA params)."""
    # A fresh array per tree: params and EMA params sharing one buffer would be donated twice.
    set_params = lambda p: {**p, "params": {**p["params"], "gates": {**p["params"]["gates"],
                                                                     "threshold": jnp.array(thresholds_GM, jnp.float32)}}}
    return members.replace(params=set_params(members.params), ema_params=set_params(members.ema_params))


def member_keys(key: jax.Array, n: int) -> jax.Array:
    """One key per ensemble member; member 0 gets `key` itself, so it is the single model."""
    return jnp.stack([key] + [jax.random.fold_in(key, i) for i in range(1, n)])


def initial_run_state(members: Members, model: FeatureAttentionModel, optimizer, root_key: jax.Array,
                      groups: int = 1) -> RunState:
    """Fresh members and all features selected; also the checkpoint's structure.

    `groups` > 1: a population of that many trials, each with the members a run of it alone
    would start from.
    """
    # Member by member through the single model's init, so member 0 is bit-identical to it.
    init = train_state_init(model, optimizer)
    keys = [k for _ in range(groups) for k in member_keys(root_key, members.n)]
    train = jax.tree.map(lambda *a: jnp.stack(a), *(init(k) for k in keys))
    if members.thresholds_M is not None:
        train = with_thresholds(train, members.thresholds_M * groups)
    train = train.replace(prior_scale=jnp.array(members.prior_M * groups, jnp.float32))
    # A copy: the step donates the train state, and the frozen params must outlive it.
    return RunState(train, init_selection(model.n_features), jax.random.key_data(root_key),
                    init_hedge(groups * len(members.mixtures_XxM)), jax.tree.map(jnp.copy, train.ema_params),
                    init_hedge(groups * len(members.frozen_A)),
                    init_policy(groups * len(members.mixtures_XxM), groups, members.policies.n, members.lag))
