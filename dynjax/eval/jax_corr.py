"""Numerai's per-era correlation in JAX, for use inside jitted training and evaluation.

Same steps as `numerai_tools.scoring.numerai_corr`: tie-kept (average) rank of the
predictions scaled to (0, 1), gaussianized and raised to the power 1.5 (sign kept), then
Pearson with the centred target raised to 1.5. Padded rows (`mask_R == False`) take no
part; tests check agreement with numerai-tools.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm


def tie_kept_rank(x_R: jnp.ndarray, mask_R: jnp.ndarray) -> jnp.ndarray:
    """(average rank - 0.5) / n over valid rows; padded rows get 0.5."""
    big = jnp.where(mask_R, x_R, jnp.inf)
    sorted_R = jnp.sort(big)
    below = jnp.searchsorted(sorted_R, big, side="left")
    through = jnp.searchsorted(sorted_R, big, side="right")
    n = mask_R.sum()
    rank_R = ((below + through + 1) / 2 - 0.5) / n  # 1-based average rank of ties
    return jnp.where(mask_R, rank_R, 0.5)


def _pow15(v: jnp.ndarray) -> jnp.ndarray:
    return jnp.sign(v) * jnp.abs(v) ** 1.5


def numerai_corr(pred_R: jnp.ndarray, y_R: jnp.ndarray, mask_R: jnp.ndarray) -> jnp.ndarray:
    """Numerai's correlation of one era's predictions with its target."""
    w = mask_R.astype(jnp.float32)
    n = jnp.maximum(w.sum(), 1.0)
    p = _pow15(norm.ppf(tie_kept_rank(pred_R, mask_R))) * w
    t = _pow15(y_R - (w * y_R).sum() / n) * w
    pc = (p - p.sum() / n) * w
    tc = (t - t.sum() / n) * w
    return (pc * tc).sum() / jnp.sqrt((pc**2).sum() * (tc**2).sum())


per_era_numerai_corr = jax.jit(jax.vmap(numerai_corr))


def corr_rows(n: int) -> int:
    """The length an era of `n` rows is padded to for its corr: the next power of two, at least 16."""
    return 1 << max(int(np.ceil(np.log2(max(n, 2)))), 4)


def era_corr(pred_R: np.ndarray, y_R: np.ndarray, size: int | None = None) -> float:
    """Numerai corr of one era on the host, its rows padded to `size` (None: `corr_rows`, so eras of
    different sizes share a handful of compiled programs; a run passes one size for all its eras,
    so that an era smaller or larger than the first compiles nothing)."""
    n = len(pred_R)
    size = size or corr_rows(n)
    pad = lambda v: np.pad(np.asarray(v, np.float32), (0, size - n))
    mask = np.arange(size) < n
    return float(per_era_numerai_corr(pad(pred_R)[None], pad(y_R)[None], mask[None])[0])
