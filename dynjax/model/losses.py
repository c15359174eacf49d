"""Per-era losses: MSE, Pearson correlation loss, their weighted sum, plus lambda * sparsity,
plus the DER++ distillation term on replayed eras; and the additive path's ridge prior (per step)."""

import jax
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


def era_loss(pred_R, y_R, mask_R, aux: dict, cfg: LossConfig, distill_R=None, distill_w=None) -> tuple[jnp.ndarray, dict]:
    """Loss of one era: `(total, terms)` with every term separate so each can be logged.

    `distill_R` are outputs a replay buffer stored for this era (DER++'s logit term), weighted
    by `distill_w` (0 for an era that is not replayed); None when nothing is replayed. With
    `aux["pred_KxR"]` (TabM's K members) every task term is the mean of the members' own terms.
    """
    pred_KxR = aux.get("pred_KxR", pred_R[None])
    mse = jax.vmap(masked_mse, in_axes=(0, None, None))(pred_KxR, y_R, mask_R).mean()
    corr = jax.vmap(masked_pearson, in_axes=(0, None, None))(pred_KxR, y_R, mask_R).mean()
    penalty, diag = sparsity_penalty(cfg.sparsity, aux["att_RxF"], mask_R, aux["gate_aux"])
    task = cfg.mse_weight * mse + cfg.corr_weight * (1.0 - corr)
    total = task + cfg.sparsity_lambda * penalty
    importance_F = era_importance(aux["weight_RxF"], mask_R)
    terms = {"loss": total, "task": task, "mse": mse, "corr": corr, "sparsity": penalty,
             "n_features": n_nonzero(importance_F), **{f"sparsity/{k}": v for k, v in diag.items()}}
    if distill_R is not None:
        distill = distill_w * jax.vmap(masked_mse, in_axes=(0, None, None))(pred_KxR, distill_R, mask_R).mean()
        total = total + cfg.distill_weight * distill
        terms.update(loss=total, distill=distill)
    return total, terms


def additive_prior(params, cfg: LossConfig) -> jnp.ndarray:
    """`(l2 * |beta|^2 + smooth * |beta[f, b+1] - beta[f, b]|^2 + pairwise_l2 * (|v|^2 + |table|^2)) / prior_rows`,
    smoothness over the value bins 0..4 (the missing bin is no neighbour); zero without those
    paths or with `prior_rows` 0."""
    beta = params["params"].get("additive", {}).get("beta")
    v = params["params"].get("pairwise", {}).get("v")
    table = params["params"].get("pairs", {}).get("table")
    total = jnp.zeros(())
    if not cfg.prior_rows or not (cfg.additive_l2 or cfg.additive_smooth or cfg.pairwise_l2):
        return total
    if beta is not None:
        smooth = (jnp.diff(beta[:, :MISSING], axis=1) ** 2).sum() if beta.ndim == 2 else 0.0
        total = total + cfg.additive_l2 * (beta**2).sum() + cfg.additive_smooth * smooth
    if v is not None:
        total = total + cfg.pairwise_l2 * (v**2).sum()
    if table is not None:
        total = total + cfg.pairwise_l2 * (table**2).sum()
    return total / cfg.prior_rows
