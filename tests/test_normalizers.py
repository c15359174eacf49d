"""Covers dynjax.model.normalizers: simplex, exact zeros, limits, reference values, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from dynjax.model.normalizers import entmax15, get_normalizer, softmax, sparsemax

SPARSE = [sparsemax, entmax15]


def _sparsemax_reference(z):
    """Sort-based sparsemax (Martins & Astudillo 2016), in numpy."""
    zs = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    cs = np.cumsum(zs)
    support = k[1 + k * zs > cs].max()
    return np.maximum(z - (cs[support - 1] - 1) / support, 0)


def _entmax15_reference(z):
    """Sort-based 1.5-entmax (Peters et al. 2019), in numpy."""
    z = z / 2
    zs = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    mean, mean_sq = np.cumsum(zs) / k, np.cumsum(zs**2) / k
    tau = mean - np.sqrt(np.maximum((1 - k * (mean_sq - mean**2)) / k, 0))
    support = (tau <= zs).sum()
    return np.maximum(z - tau[support - 1], 0) ** 2


@pytest.mark.parametrize("fn", [softmax, sparsemax, entmax15])
def test_outputs_on_the_simplex(fn):
    z = jax.random.normal(jax.random.key(0), (64, 50)) * 3
    p = fn(z)
    assert p.shape == z.shape and bool((p >= 0).all())
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("fn, ref", [(sparsemax, _sparsemax_reference), (entmax15, _entmax15_reference)])
def test_match_sort_based_reference(fn, ref):
    z = np.asarray(jax.random.normal(jax.random.key(1), (20, 30)) * 2)
    expected = np.stack([ref(row - row.max()) for row in z])
    np.testing.assert_allclose(fn(jnp.asarray(z)), expected, atol=2e-6)


@pytest.mark.parametrize("fn", SPARSE)
def test_exact_zeros_for_spread_out_logits(fn):
    p = fn(jnp.linspace(-5, 5, 40))
    assert int((p == 0).sum()) > 20 and float(p[-1]) > 0


@pytest.mark.parametrize("fn", [softmax, sparsemax, entmax15])
def test_limits(fn):
    z = jax.random.normal(jax.random.key(2), (8, 10))
    np.testing.assert_allclose(fn(z * 1e-4), 0.1, atol=1e-3)  # flat logits: uniform, like softmax
    np.testing.assert_allclose(fn(z * 1e4), jax.nn.one_hot(z.argmax(-1), 10), atol=1e-6)  # argmax


@pytest.mark.parametrize("fn", SPARSE)
def test_gradients_match_finite_differences(fn):
    z = jax.random.normal(jax.random.key(3), (3, 7))
    w = jax.random.normal(jax.random.key(4), (3, 7))
    check_grads(lambda z: (fn(z) * w).sum(), (z,), order=1, modes=("fwd", "rev"), eps=1e-3, atol=1e-2)


@pytest.mark.parametrize("fn", [softmax, sparsemax, entmax15])
def test_masked_logits_get_zero_weight_and_gradient(fn):
    mask = jnp.array([True, False, True, True, False])
    z = jnp.array([0.3, 5.0, -0.2, 0.1, 2.0])

    def loss(z):
        p = fn(jnp.where(mask, z, jnp.finfo(jnp.float32).min))
        return (p * jnp.arange(5.0)).sum(), p

    (_, p), g = jax.value_and_grad(loss, has_aux=True)(z)
    assert bool((p[~mask] == 0).all()) and bool((g[~mask] == 0).all())
    assert bool(jnp.isfinite(g).all())


def test_jit_matches_eager_and_unknown_name():
    z = jax.random.normal(jax.random.key(5), (4, 9))
    for name in ("softmax", "sparsemax", "entmax15"):
        fn = get_normalizer(name)
        np.testing.assert_allclose(jax.jit(fn)(z), fn(z), atol=1e-7)
    with pytest.raises(ValueError, match="unknown normalizer 'relu'"):
        get_normalizer("relu")
