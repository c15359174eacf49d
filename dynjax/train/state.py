"""Train state (params, optimiser state, step, EMA params), the optax optimiser, and the run state.

A run's state is what a checkpoint holds besides the cursor and the config: the members'
train states stacked on a leading axis (N = `train.ensemble`, 1 for a single model), the
selection state, the replay buffer, the root RNG key data, the Hedge weights of the experts
(the members, and their pretrained copies where the run keeps them) and those copies.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from dynjax.config import ModelConfig, OptimConfig, RunConfig
from dynjax.data.bins import N_BINS
from dynjax.data.context import EraContext
from dynjax.model.selection import SelectionState, init_selection
from dynjax.model.tft import FeatureAttentionModel
from dynjax.train.era_features import reads_context
from dynjax.train.hedge import HedgeState, gated_as_one, init_hedge, lead_of_mean, mixtures
from dynjax.train.replay import ReplayBuffer, empty_buffer


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

    train: TrainState  # members stacked on a leading N axis
    selection: SelectionState
    replay: ReplayBuffer | None  # None without rehearsal
    rng: jnp.ndarray  # key data of the root key
    hedge: HedgeState  # the experts' online mixing weights (`train.hedge_eta`)
    pretrained: Any = None  # the members' EMA params after pretraining (`train.pretrained_experts`), else None


def make_optimizer(cfg: OptimConfig, hyper: dict[str, jnp.ndarray] | None = None) -> optax.GradientTransformation:
    """AdamW on the config's schedule; `hyper` (traced `optim.learning_rate` / `optim.weight_decay`
    of one population member) replaces the config's values, the schedule then scaled by the peak.
    `decay_steps` must be resolved (`resolve_decay`) when it is 0 (auto)."""
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
    if not cfg.anchor:
        return optax.chain(optax.clip_by_global_norm(cfg.clip_norm),
                           optax.adamw(schedule, weight_decay=weight_decay, mask=decayed))
    # optax.adamw's chain with the pull to the anchor beside the weight decay, under the schedule.
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), optax.scale_by_adam(),
                       optax.add_decayed_weights(weight_decay, decayed), decay_to_anchor(cfg.anchor),
                       optax.scale_by_learning_rate(schedule))


class AnchorState(NamedTuple):
    """The params that `decay_to_anchor` pulls toward, and this member's scale of the pull (0 until
    `set_anchor`: `optim.anchor_members`' entry after it)."""

    anchor: Any
    pull: jnp.ndarray


def decay_to_anchor(rate: float) -> optax.GradientTransformation:
    """Adds `rate * (params - anchor)` to the updates once `set_anchor` has set the anchor (before
    that, in pretraining, nothing): decoupled L2-SP, as `add_decayed_weights` is decoupled L2."""

    def init(params):
        return AnchorState(anchor=jax.tree.map(jnp.zeros_like, params), pull=jnp.zeros((), jnp.float32))

    def update(updates, state, params):
        pull = rate * state.pull
        return jax.tree.map(lambda u, p, a: u + pull * (p - a).astype(u.dtype), updates, params, state.anchor), state

    return optax.GradientTransformation(init, update)


def set_anchor(train: TrainState, pull_N: tuple[float, ...]) -> TrainState:
    """Stacked members whose updates pull toward their EMA params as they stand (the model frozen
    after pretraining), member n by `pull_N[n]` times `optim.anchor`; unchanged without it."""
    if not optax.tree_utils.tree_get_all_with_path(train.opt_state, "anchor"):
        return train
    anchor = jax.tree.map(jnp.copy, train.ema_params)
    pull = jnp.asarray(pull_N, jnp.float32).reshape(jax.tree.leaves(train.step)[0].shape)
    return train.replace(opt_state=optax.tree_utils.tree_set(train.opt_state, anchor=anchor, pull=pull))


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
    summary = (jnp.zeros((cfg.context_eras, n_features)), jnp.ones(cfg.context_eras, bool)) if cfg.context else (None, None)
    evidence = jnp.zeros((n_features, len(cfg.evidence_eras))) if cfg.gates == "context" else None
    return EraContext(*summary, evidence)


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


def per_member(values: tuple, n_members: int) -> tuple:
    """A per-member config tuple taken in turn: member m gets `values[m % len(values)]`."""
    return tuple(values[m % len(values)] for m in range(n_members))


# A gate threshold (evidence z) at or below this keeps every gate open: the dense member's -1000.
ALL_OPEN = -100.0


def member_thresholds(cfg: ModelConfig, n_members: int) -> tuple[float, ...]:
    """Each member's gate threshold: `gate_thresholds` in turn, or `gate_threshold` for all."""
    return per_member(cfg.gate_thresholds or (cfg.gate_threshold,), n_members)


def with_thresholds(members: TrainState, thresholds_N: tuple[float, ...]) -> TrainState:
    """Stacked members whose context gates hold the given thresholds (params and EMA params)."""
    # A fresh array per tree: params and EMA params sharing one buffer would be donated twice.
    set_params = lambda p: {**p, "params": {**p["params"], "gates": {**p["params"]["gates"],
                                                                     "threshold": jnp.array(thresholds_N, jnp.float32)}}}
    return members.replace(params=set_params(members.params), ema_params=set_params(members.ema_params))


def member_keys(key: jax.Array, n: int) -> jax.Array:
    """One key per ensemble member; member 0 gets `key` itself, so it is the single model."""
    return jnp.stack([key] + [jax.random.fold_in(key, i) for i in range(1, n)])


def initial_run_state(cfg: RunConfig, model: FeatureAttentionModel, optimizer, root_key: jax.Array,
                      groups: int = 1) -> RunState:
    """Fresh members, all features selected, an empty buffer; also the checkpoint's structure.

    `groups` > 1: a population of that many trials, each with the `train.ensemble` members a
    run of it alone would start from.
    """
    # Member by member through the single model's init, so member 0 is bit-identical to it.
    init = train_state_init(model, optimizer)
    keys = [k for _ in range(groups) for k in member_keys(root_key, cfg.train.ensemble)]
    members = jax.tree.map(lambda *a: jnp.stack(a), *(init(k) for k in keys))
    if cfg.model.gate_thresholds and cfg.model.gates == "context":
        members = with_thresholds(members, member_thresholds(cfg.model, cfg.train.ensemble) * groups)
    members = members.replace(prior_scale=jnp.array(per_member(cfg.loss.prior_members, cfg.train.ensemble) * groups, jnp.float32))
    replay = (empty_buffer(cfg.train.replay_capacity, cfg.data.rows_per_era, groups)
              if cfg.train.replay_capacity else None)
    pretrained = jax.tree.map(jnp.copy, members.ema_params) if cfg.train.pretrained_experts else None
    return RunState(members, init_selection(model.n_features), replay, jax.random.key_data(root_key),
                    hedge_start(cfg, groups), pretrained)


def hedge_start(cfg: RunConfig, groups: int, first: int = 0) -> HedgeState:
    """Hedge's state before any era is scored: each trial's mixtures from `train.hedge_lead`'s head
    start and `train.hedge_prior`'s starting scores."""
    mix_XxN, kinds_N = expert_mixtures(cfg), expert_kinds(cfg)
    score_X = lead_of_mean(mix_XxN, kinds_N, cfg.train.hedge_lead)
    if cfg.train.hedge_prior == "gated_as_one":
        score_X = score_X + gated_as_one(mix_XxN, kinds_N, expert_gated(cfg), cfg.train.hedge_eta)
    return init_hedge(groups * len(mix_XxN), first, score_X)


def expert_gated(cfg: RunConfig) -> np.ndarray:
    """Whether each Hedge expert (`expert_kinds`) gates features: a context gate threshold above
    `ALL_OPEN` (a pretrained copy as the member it was)."""
    gated_M = (np.asarray(member_thresholds(cfg.model, cfg.train.ensemble)) > ALL_OPEN) & (cfg.model.gates == "context")
    return np.resize(gated_M, len(expert_kinds(cfg)))  # the pretrained copies follow the members, in order


def member_horizons(cfg: RunConfig) -> tuple[int, ...]:
    """Each member's walk-forward memory in eras (0: all resolved), or () for the latest window."""
    return per_member(cfg.train.horizons, cfg.train.ensemble) if cfg.train.horizons else ()


def member_kinds(cfg: RunConfig) -> tuple[int, ...]:
    """Each member's kind: members with the same memory and gate threshold differ only in their seeds."""
    horizons = member_horizons(cfg) or (None,) * cfg.train.ensemble
    gates = member_thresholds(cfg.model, cfg.train.ensemble) if cfg.model.gates == "context" else (None,) * cfg.train.ensemble
    spec = list(zip(horizons, gates))
    return tuple(spec.index(s) for s in spec)


def expert_kinds(cfg: RunConfig) -> tuple[int, ...]:
    """The kind of each Hedge expert: the members', then (`train.pretrained_experts`) their
    pretrained copies', each a kind of its own beside the member it was."""
    kinds = member_kinds(cfg)
    if not cfg.train.pretrained_experts:
        return kinds
    return kinds + tuple(k + max(kinds) + 1 for k in kinds)


def hedge_learns(cfg: RunConfig) -> bool:
    """Whether resolved eras move Hedge's weights: eta > 0 and more than one mixture to weigh."""
    return bool(cfg.train.hedge_eta) and len(expert_mixtures(cfg)) > 1


def expert_mixtures(cfg: RunConfig) -> np.ndarray:
    """The mixtures of the experts (`expert_kinds`) that Hedge weighs, `[C, N]` (`train.hedge_grid`, `train.hedge_mean`)."""
    return mixtures(expert_kinds(cfg), cfg.train.hedge_grid, cfg.train.hedge_mean)
