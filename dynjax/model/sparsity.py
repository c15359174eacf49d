"""Sparsity penalties, each `(penalty, diagnostics)`; the realised feature count per era."""

import jax.numpy as jnp

from dynjax.config import PENALTIES


def attention_entropy(att_RxF: jnp.ndarray, mask_R: jnp.ndarray) -> jnp.ndarray:
    """Mean entropy of the rows' attention (TabNet): low when rows attend to few features."""
    ent_RxF = -(att_RxF * jnp.log(jnp.where(att_RxF > 0, att_RxF, 1.0)))
    ent_R = ent_RxF @ jnp.ones(att_RxF.shape[-1], att_RxF.dtype)  # a matvec: see era_importance
    w = mask_R.astype(ent_R.dtype)
    return (ent_R * w).sum() / jnp.maximum(w.sum(), 1.0)


def n_nonzero(importance_F: jnp.ndarray) -> jnp.ndarray:
    """Features with non-zero weight in the era (exact zeros from sparse normalisers, masks, gates)."""
    return (importance_F > 0).sum()


def sparsity_penalty(kind: str, att_RxF: jnp.ndarray | None, mask_R: jnp.ndarray, gate_aux: dict,
                     n_features: int) -> tuple[jnp.ndarray, dict]:
    """The selected penalty; `gate_aux` carries the gates' own terms (`l1`, `expected_l0`). The rows'
    attention entropy is a diagnostic where `att_RxF` is given, and needed only by "entropy"."""
    diag = {**gate_aux}
    if att_RxF is not None:
        diag["entropy"] = attention_entropy(att_RxF, mask_R)
    if kind == "none":
        return jnp.zeros(()), diag
    if kind == "entropy":
        return _need(diag, "entropy", "rows' attention (att_RxF)", kind), diag
    if kind == "l1":
        return _need(gate_aux, "l1", "model gates 'l1'", kind), diag
    if kind == "l0":
        return _need(gate_aux, "expected_l0", "model gates 'l0' or 'context'", kind) / n_features, diag
    raise ValueError(f"unknown sparsity penalty {kind!r}; choose from {PENALTIES}")


def _need(terms: dict, key: str, what: str, kind: str) -> jnp.ndarray:
    if key not in terms:
        raise ValueError(f"sparsity penalty {kind!r} needs {what}")
    return terms[key]
