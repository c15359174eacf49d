"""The train step: one era's loss, vmapped over the W eras of a window, one jitted update.

    train_step(state, batch, feature_mask_F, key) -> (state, metrics)

`batch` is a `dynjax.data.windows.Batch`: `x_WxRxF` (int8), `y_WxR`, `mask_WxR`, and the
optional per-era `context` and replay `distill_*` fields. The state is donated; shapes are
fixed by (W, R, F, L, C), so the step compiles once for a run.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from dynjax.config import LossConfig
from dynjax.data.context import EraContext
from dynjax.data.windows import Batch
from dynjax.model.losses import additive_prior, era_loss
from dynjax.model.tft import FeatureAttentionModel
from dynjax.train.state import TrainState


def make_window_loss(model: FeatureAttentionModel, loss_cfg: LossConfig) -> Callable:
    """`window_loss(params, batch, feature_mask_F, key, prior_scale=1) -> (loss, metrics)`: the eras'
    mean loss plus `prior_scale` times the additive path's prior (`loss.prior_rows` resolved by the
    run; 0 leaves it out)."""

    def loss_one_era(params, era: Batch, feature_mask_F, key):
        dropout_key, gates_key = jax.random.split(key)
        pred_R, aux = model.apply(params, era.x_WxRxF, feature_mask_F, era.context, deterministic=False,
                                  rngs={"dropout": dropout_key, "gates": gates_key})
        return era_loss(pred_R, era.y_WxR, era.mask_WxR, aux, loss_cfg, era.distill_WxR, era.distill_W)

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


def make_train_step(model: FeatureAttentionModel, loss_cfg: LossConfig, optimizer: optax.GradientTransformation,
                    ema_decay: float = 0.0) -> Callable:
    """The jitted, state-donating train step."""
    return jax.jit(train_step_fn(model, loss_cfg, optimizer, ema_decay), donate_argnums=0)


def train_step_fn(model: FeatureAttentionModel, loss_cfg: LossConfig, optimizer: optax.GradientTransformation,
                  ema_decay: float = 0.0, hyper_optimizer: Callable | None = None) -> Callable:
    """The pure train step, before `jax.jit` (to vmap over a population, or count traces).

    `ema_decay` > 0 keeps a Polyak average of the params in `state.ema_params` (what
    prediction uses); at 0 the average is the params themselves. With `hyper_optimizer`
    (`hyper -> optimizer`) the step takes a fifth argument, `hyper`: traced float
    hyperparameters by config path (`POPULATION_PATHS`), so one compiled step serves a
    population of trials that differ only in them.
    """
    window_loss = make_window_loss(model, loss_cfg)

    def train_step(state: TrainState, batch: Batch, feature_mask_F, key, hyper=None):
        key = jax.random.fold_in(key, state.step)
        loss_fn, opt = window_loss, optimizer
        if hyper is not None:
            loss_fn, opt = make_window_loss(model, hyper_loss(loss_cfg, hyper)), hyper_optimizer(hyper)
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, feature_mask_F, key,
                                                                       state.prior_scale)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = optax.incremental_update(params, state.ema_params, 1.0 - ema_decay) if ema_decay else params
        metrics["grad_norm"] = optax.tree.norm(grads)
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1, ema_params=ema), metrics

    return train_step


def hyper_loss(loss_cfg: LossConfig, hyper: dict) -> LossConfig:
    """The loss config with a population member's (traced) loss weights."""
    fields = {path.removeprefix("loss."): v for path, v in hyper.items() if path.startswith("loss.")}
    return dataclasses.replace(loss_cfg, **fields)


def make_predict(model: FeatureAttentionModel) -> Callable:
    """Jitted `predict(params, x_RxF, feature_mask_F, context) -> (pred_R, weight_RxF, gate_F)`."""
    return jax.jit(predict_fn(model))


def predict_fn(model: FeatureAttentionModel) -> Callable:
    """The pure predict, before `jax.jit` (to vmap over members, or jit onto a mesh)."""

    def predict(params, x_RxF, feature_mask_F, context: EraContext | None = None):
        pred_R, aux = model.apply(params, x_RxF, feature_mask_F, context)
        return pred_R, aux["weight_RxF"], aux["gate_F"]

    return predict
