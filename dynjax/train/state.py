"""Train state (params, optimiser state, step) and the optax optimiser."""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dynjax.config import ModelConfig, OptimConfig
from dynjax.data.missing import N_BINS
from dynjax.model.tft import FeatureAttentionModel


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    step: jnp.ndarray  # int32 scalar


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=cfg.learning_rate, warmup_steps=cfg.warmup_steps,
        decay_steps=cfg.decay_steps, end_value=cfg.learning_rate * cfg.end_lr_fraction,
    )
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), optax.adamw(schedule, weight_decay=cfg.weight_decay))


def create_train_state(
    model: FeatureAttentionModel, optimizer: optax.GradientTransformation, key: jax.Array
) -> TrainState:
    """Initialise params from dummy inputs of the model's shapes."""
    cfg: ModelConfig = model.cfg
    x_RxF = jnp.zeros((2, model.n_features), jnp.int8) + (N_BINS - 1)
    ctx = (jnp.zeros((cfg.context_eras, model.n_features)), jnp.ones(cfg.context_eras, bool)) if cfg.context else (None, None)
    params_key, gates_key = jax.random.split(key)
    params = model.init({"params": params_key, "gates": gates_key}, x_RxF, None, *ctx)
    return TrainState(params=params, opt_state=optimizer.init(params), step=jnp.zeros((), jnp.int32))
