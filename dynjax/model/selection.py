"""Dynamic feature selection: per-era importance, a smoothed selection state, thresholds.

Per-era importance is the mean attention weight (times gate) per feature over the era's
rows. The state carries an EMA of importances across eras; a threshold on the EMA gives
the boolean mask that removes unselected features from attention for the next window and
the next era's prediction. Everything here is jittable.
"""

import jax.numpy as jnp
from flax import struct

from dynjax.config import SelectionConfig


@struct.dataclass
class SelectionState:
    ema_F: jnp.ndarray  # smoothed importance
    mask_F: jnp.ndarray  # bool: features the model may use
    n_updates: jnp.ndarray  # int32 scalar


def init_selection(n_features: int) -> SelectionState:
    """All features selected, uniform prior importance."""
    return SelectionState(
        ema_F=jnp.full((n_features,), 1.0 / n_features, jnp.float32),
        mask_F=jnp.ones((n_features,), bool),
        n_updates=jnp.zeros((), jnp.int32),
    )


def era_importance(weight_RxF: jnp.ndarray, mask_R: jnp.ndarray) -> jnp.ndarray:
    """Mean weight per feature over the era's valid rows."""
    w_R = mask_R.astype(weight_RxF.dtype)
    # A matrix-vector product, not a masked reduce: XLA:CPU reduces vmapped rank-4 arrays slowly.
    return (w_R @ weight_RxF) / jnp.maximum(w_R.sum(), 1.0)


def update_selection(state: SelectionState, importance_F: jnp.ndarray, cfg: SelectionConfig) -> SelectionState:
    """Fold one era's importance into the EMA and recompute the mask (all features during warm-up)."""
    # The first update replaces the uniform prior instead of averaging with it.
    decay = jnp.where(state.n_updates == 0, 0.0, cfg.decay)
    ema_F = decay * state.ema_F + (1 - decay) * importance_F
    return SelectionState(ema_F, threshold_mask(ema_F, cfg, state.n_updates), state.n_updates + 1)


def threshold_mask(ema_F: jnp.ndarray, cfg: SelectionConfig, n_updates: jnp.ndarray) -> jnp.ndarray:
    n_features = ema_F.shape[0]
    if cfg.mode == "none":
        return jnp.ones(n_features, bool)
    if cfg.mode == "fixed":
        mask = ema_F * n_features >= cfg.threshold
    elif cfg.mode == "quantile":
        mask = ema_F >= jnp.quantile(ema_F, cfg.quantile)
    else:
        k = cfg.k if cfg.mode == "topk" else scheduled_k(cfg, n_features, jnp.maximum(n_updates - cfg.warmup_eras, 0))
        mask = top_k_mask(ema_F, k)
    mask = mask | top_k_mask(ema_F, cfg.min_features)  # never select nothing
    # Warm-up: every feature stays in until the importances have seen `warmup_eras` eras.
    return mask | (n_updates < cfg.warmup_eras)


def scheduled_k(cfg: SelectionConfig, n_features: int, n_updates: jnp.ndarray) -> jnp.ndarray:
    start = cfg.k_start or n_features
    frac = jnp.clip(n_updates / max(cfg.schedule_eras, 1), 0.0, 1.0)
    return jnp.round(start + frac * (cfg.k - start)).astype(jnp.int32)


def top_k_mask(values_F: jnp.ndarray, k) -> jnp.ndarray:
    """The k largest (ties broken by index); `k` may be traced."""
    rank_F = jnp.argsort(jnp.argsort(-values_F, stable=True), stable=True)
    return rank_F < k
