"""Attention normalisers over the last axis: softmax, sparsemax, 1.5-entmax.

The sparse ones return exact zeros (Martins & Astudillo 2016; Peters et al. 2019), so the
number of features with non-zero weight is real. Both find their threshold by bisection
plus an exact solve on the support, and have a closed-form Jacobian-vector product
(`jax.custom_jvp`), so gradients are exact and cheap.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

# Logits further than this below the row max always get zero weight in sparsemax and
# entmax; clipping there keeps masked (finfo.min) logits from overflowing the cumsums.
_FLOOR = -1e6


_BISECT_STEPS = 26  # the bracket starts 1 wide: 2**-26 is below float32 resolution there


def _shifted(z: jnp.ndarray) -> jnp.ndarray:
    z = z.astype(jnp.float32)  # fp32 for the threshold search
    return jnp.maximum(z - z.max(axis=-1, keepdims=True), _FLOOR)


def _bisect(excess, lo: jnp.ndarray, hi: jnp.ndarray) -> jnp.ndarray:
    """Threshold where the decreasing `excess(tau)` crosses zero, inside [lo, hi]."""

    def step(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) / 2
        above = excess(mid) > 0
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _BISECT_STEPS, step, (lo, hi))
    return (lo + hi) / 2


@jax.custom_jvp
def sparsemax(z: jnp.ndarray) -> jnp.ndarray:
    """Euclidean projection of the logits onto the simplex.

    The threshold tau (sum_i max(z_i - tau, 0) = 1) is bracketed by bisection, which is
    vectorised over rows (a sort per row is several times slower on CPU), then solved
    exactly on the support it finds.
    """
    z = _shifted(z)  # max is 0, so tau lies in [-1, 0]
    bound = jnp.zeros(z.shape[:-1] + (1,), z.dtype)
    tau = _bisect(lambda t: jnp.maximum(z - t, 0).sum(axis=-1, keepdims=True) - 1, bound - 1, bound)
    on = z > tau
    k = on.sum(axis=-1, keepdims=True)
    tau = (jnp.where(on, z, 0).sum(axis=-1, keepdims=True) - 1) / k
    return jnp.maximum(z - tau, 0.0)


@sparsemax.defjvp
def _sparsemax_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    p = sparsemax(z)
    on = (p > 0).astype(p.dtype)
    dz_mean = (dz * on).sum(axis=-1, keepdims=True) / on.sum(axis=-1, keepdims=True)
    return p, on * (dz - dz_mean)


@jax.custom_jvp
def entmax15(z: jnp.ndarray) -> jnp.ndarray:
    """1.5-entmax: p_i = max(z_i / 2 - tau, 0)^2, between softmax (dense) and sparsemax.

    Same scheme as `sparsemax`: bisection for the support, then tau in closed form on it.
    """
    z = _shifted(z) / 2  # max is 0, so tau lies in [-1, 0]
    bound = jnp.zeros(z.shape[:-1] + (1,), z.dtype)
    tau = _bisect(lambda t: (jnp.maximum(z - t, 0) ** 2).sum(axis=-1, keepdims=True) - 1, bound - 1, bound)
    on = z > tau
    k = on.sum(axis=-1, keepdims=True)
    mean = jnp.where(on, z, 0).sum(axis=-1, keepdims=True) / k
    mean_sq = jnp.where(on, z**2, 0).sum(axis=-1, keepdims=True) / k
    tau = mean - jnp.sqrt(jnp.maximum((1 - k * (mean_sq - mean**2)) / k, 0.0))
    return jnp.maximum(z - tau, 0.0) ** 2


@entmax15.defjvp
def _entmax15_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    p = entmax15(z)
    g = jnp.sqrt(p)
    dp = g * dz
    return p, dp - g * dp.sum(axis=-1, keepdims=True) / g.sum(axis=-1, keepdims=True)


def softmax(z: jnp.ndarray) -> jnp.ndarray:
    return jax.nn.softmax(z.astype(jnp.float32), axis=-1)  # fp32 for the softmax


NORMALIZERS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "softmax": softmax,
    "sparsemax": sparsemax,
    "entmax15": entmax15,
}


def get_normalizer(name: str) -> Callable[[jnp.ndarray], jnp.ndarray]:
    if name not in NORMALIZERS:
        raise ValueError(f"unknown normalizer {name!r}; choose from {tuple(NORMALIZERS)}")
    return NORMALIZERS[name]
