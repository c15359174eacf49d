"""Per-era losses: MSE, Pearson correlation loss, their weighted sum, plus lambda * sparsity;
and the additive path's ridge prior (per step)."""

import jax.numpy as jnp

from dynjax.config import LossConfig
from dynjax.data.bins import MISSING
from dynjax.model.selection import era_importance
from dynjax.model.sparsity import n_nonzero, sparsity_penalty


def masked_mse(pred_R: jnp.ndarray, y_R: jnp.ndarray, mask_R: jnp.ndarray) -> jnp.ndarray:
    w = mask_R.astype(pred_R.dtype)
    return (w * (pred_R - y_R) ** 2).sum() / jnp.maximum(w.sum(), 1.0)


def masked_pearson(pred_R: jnp.ndarray, y_R: jnp.ndarray, mask_R: jnp.ndarray) -> jnp.ndarray:
    """Pearson correlation over the valid rows of one era."""
    w = mask_R.astype(pred_R.dtype)
    n = jnp.maximum(w.sum(), 1.0)
    pc = (pred_R - (w * pred_R).sum() / n) * w
    yc = (y_R - (w * y_R).sum() / n) * w
    return (pc * yc).sum() / jnp.sqrt((pc**2).sum() * (yc**2).sum() + 1e-12)


def era_loss(pred_R, y_R, mask_R, aux: dict, cfg: LossConfig) -> tuple[jnp.ndarray, dict]:
    """Loss of one era: `(total, terms)` with every term separate so each can be logged; `aux` is the
    model's, with row weights where the penalty reads them (`needs_row_weights`)."""
    mse = masked_mse(pred_R, y_R, mask_R)
    corr = masked_pearson(pred_R, y_R, mask_R)
    penalty, diag = sparsity_penalty(cfg.sparsity, aux.get("att_RxF"), mask_R, aux["gate_aux"], aux["keep_F"].shape[0])
    task = cfg.mse_weight * mse + cfg.corr_weight * (1.0 - corr)
    total = task + cfg.sparsity_lambda * penalty
    # Without row weights (softmax, whose weights are positive wherever a feature is kept): the kept count.
    n_features = (n_nonzero(era_importance(aux["weight_RxF"], mask_R)) if "weight_RxF" in aux
                  else aux["keep_F"].sum())
    terms = {"loss": total, "task": task, "mse": mse, "corr": corr, "sparsity": penalty,
             "n_features": n_features, **{f"sparsity/{k}": v for k, v in diag.items()}}
    return total, terms


def needs_row_weights(cfg: LossConfig) -> bool:
    """Whether the loss reads each row's attention (the entropy penalty) beyond the prediction."""
    return cfg.sparsity == "entropy"


def additive_prior(params, cfg: LossConfig) -> jnp.ndarray:
    """`(l2 * |beta|^2 + smooth * |beta[f, b+1] - beta[f, b]|^2 + pair_l2 * |table|^2) / prior_rows`,
    smoothness over the value bins 0..4 (the missing bin is no neighbour); zero with `prior_rows` 0."""
    if not cfg.prior_rows:
        return jnp.zeros(())
    beta = params["params"]["additive"]["beta"]
    total = cfg.additive_l2 * (beta**2).sum() + cfg.additive_smooth * (jnp.diff(beta[:, :MISSING], axis=1) ** 2).sum()
    table = params["params"].get("pairs", {}).get("table")
    if table is not None:
        total = total + cfg.pair_l2 * (table**2).sum()
    return total / cfg.prior_rows
