"""Covers dynjax.model.attention: the tabulated weights equal the per-row form (values and gradients),
weights on the simplex, masking, the lookup and its gradient."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.data import N_BINS
from dynjax.model.attention import (
    FeatureAttention,
    bin_sums,
    head_mean,
    lookup,
    masked_bin_sums,
    masked_logits,
    scatter_bin_sums,
    tabulated_softmax,
)
from dynjax.model.normalizers import get_normalizer

F, R, D, H = 9, 12, 8, 2


def _setup(normalizer):
    attn = FeatureAttention(D, H, normalizer)
    tok = jax.random.normal(jax.random.key(0), (F, N_BINS, D))
    query = jax.random.normal(jax.random.key(1), (D,))
    x = jax.random.randint(jax.random.key(2), (R, F), 0, N_BINS).astype(jnp.int8)
    params = attn.init(jax.random.key(3), tok, query, method=FeatureAttention.logits)
    return attn, params, tok, query, x


def tabulated(attn, params, tok, query, x, mask):
    """The weights as the model computes them: logits tabulated per (feature, bin), then looked up."""
    logit_HxFxB = attn.apply(params, tok, query, method=FeatureAttention.logits)
    return attn.apply(params, logit_HxFxB, x, mask)


def per_row(attn, params, tok, query, x, mask):
    """The naive form: each row's own tokens, keys and logits, normalised per row."""
    tok_RxFxD = tok[jnp.arange(F), x.astype(jnp.int32)]
    k = attn.apply(params, tok_RxFxD, method=lambda m, t: m.key(t)).reshape(R, F, H, D // H)
    q = attn.apply(params, query, method=lambda m, t: m.query(t)).reshape(H, D // H)
    logit_HxRxF = jnp.einsum("rfhe,he->hrf", k, q) / jnp.sqrt(D // H)
    return head_mean(get_normalizer(attn.normalizer)(masked_logits(logit_HxRxF, mask)))


@pytest.mark.parametrize("normalizer", ["softmax", "sparsemax", "entmax15"])
def test_tabulated_equals_per_row(normalizer):
    attn, params, tok, query, x = _setup(normalizer)
    mask = jnp.arange(F) != 3
    att_tab = tabulated(attn, params, tok, query, x, mask)
    chex.assert_shape(att_tab, (R, F))
    np.testing.assert_allclose(att_tab, per_row(attn, params, tok, query, x, mask), atol=1e-6)
    np.testing.assert_allclose(att_tab.sum(-1), 1.0, atol=1e-5)
    assert bool((att_tab[:, 3] == 0).all())


def test_masked_features_get_zero_weight_and_their_tokens_zero_gradient():
    attn, params, tok, query, x = _setup("softmax")
    mask = jnp.arange(F) % 3 != 0

    def loss(tok):
        att = tabulated(attn, params, tok, query, x, mask)
        return (att * jnp.arange(F)).sum(), att

    (_, att), g = jax.value_and_grad(loss, has_aux=True)(tok)
    assert bool((att[:, ~mask] == 0).all()) and bool((att[:, mask] > 0).all())
    assert bool((g[~mask] == 0).all()) and bool(jnp.abs(g[mask]).sum() > 0)


@pytest.mark.parametrize("normalizer", ["softmax", "entmax15"])
def test_tabulated_gradients_equal_per_row(normalizer):
    attn, params, tok, query, x = _setup(normalizer)
    mask = jnp.arange(F) != 5
    weigh = lambda att: (att * jnp.arange(F)).sum() + (att**2).sum()
    np.testing.assert_allclose(jax.grad(lambda t: weigh(tabulated(attn, params, t, query, x, mask)))(tok),
                               jax.grad(lambda t: weigh(per_row(attn, params, t, query, x, mask)))(tok), atol=1e-4)


def test_tabulated_softmax_stays_finite_on_the_simplex_for_huge_logits():
    x = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    logit = 1e4 * jax.random.normal(jax.random.key(1), (H, F, N_BINS))
    att = tabulated_softmax(logit, x, jnp.ones(F, bool))
    assert bool(jnp.isfinite(att).all())
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)


def test_tabulated_softmax_of_no_selected_feature_is_zero_not_nan():
    x = jnp.zeros((R, F), jnp.int8)
    att = tabulated_softmax(jnp.zeros((H, F, N_BINS)), x, jnp.zeros(F, bool))
    assert bool((att == 0).all())


def test_lookup_picks_each_rows_bin_and_its_gradient_counts_the_picks():
    table = jax.random.normal(jax.random.key(0), (F, N_BINS))
    x = jax.random.randint(jax.random.key(1), (R, F), 0, N_BINS).astype(jnp.int8)
    np.testing.assert_array_equal(lookup(table, x), table[jnp.arange(F), x.astype(jnp.int32)])
    grad = jax.grad(lambda t: (lookup(t, x) * jnp.arange(R)[:, None]).sum())(table)
    want = jax.grad(lambda t: (t[jnp.arange(F), x.astype(jnp.int32)] * jnp.arange(R)[:, None]).sum())(table)
    np.testing.assert_allclose(grad, want, rtol=1e-6)


def test_lookup_gradient_of_a_bfloat16_table_sums_in_float32():
    # 4,096 rows in one bin, gradient 1 each: a bfloat16 running sum stalls at 256 (256 + 1 rounds to 256).
    table = jnp.zeros((2, N_BINS), jnp.bfloat16)
    x = jnp.zeros((4096, 2), jnp.int8)
    grad = jax.grad(lambda t: lookup(t, x).astype(jnp.float32).sum())(table)
    assert grad.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(grad[:, 0], np.float32), [4096.0, 4096.0])
    np.testing.assert_array_equal(np.asarray(grad[:, 1:], np.float32), 0.0)


def test_bin_sums_add_each_rows_cells_and_their_gradient_counts_the_rows_per_cell():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, N_BINS, (70, F)), jnp.int8)
    table_KxFxB = jnp.asarray(rng.normal(size=(3, F, N_BINS)), jnp.float32)
    naive = lambda t: t[:, jnp.arange(F), x.astype(jnp.int32)].sum(axis=2).T  # [R, K]
    np.testing.assert_allclose(bin_sums(table_KxFxB, x), naive(table_KxFxB), rtol=1e-6, atol=1e-6)
    weigh_RxK = jnp.asarray(rng.normal(size=(70, 3)), jnp.float32)
    grad, want = (jax.grad(lambda t, f=f: (f(t) * weigh_RxK).sum())(table_KxFxB) for f in (lambda t: bin_sums(t, x), naive))
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-5)
    # vmapped over members' tables (as the train step is), each member's sums and gradient are its own
    stacked = jnp.stack([table_KxFxB, 2 * table_KxFxB])
    np.testing.assert_allclose(jax.vmap(bin_sums, in_axes=(0, None))(stacked, x)[1], 2 * naive(table_KxFxB), rtol=1e-5)


def test_bin_sums_of_a_bfloat16_table_sum_in_float32():
    table = jnp.ones((1, 2, N_BINS), jnp.bfloat16)
    x = jnp.zeros((4096, 2), jnp.int8)
    assert bin_sums(table, x).dtype == jnp.float32
    grad = jax.grad(lambda t: bin_sums(t, x).sum())(table)
    assert grad.dtype == jnp.bfloat16  # 4,096 rows in one cell: a bfloat16 running sum would stall at 256
    np.testing.assert_array_equal(np.asarray(grad[0, :, 0], np.float32), [4096.0, 4096.0])
    np.testing.assert_array_equal(np.asarray(grad[0, :, 1:], np.float32), 0.0)


def test_masked_bin_sums_equal_the_scatter_add():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, N_BINS, (513, 37)), jnp.int8)
    g = jnp.asarray(rng.normal(size=(513, 37)), jnp.float32)
    masked, scatter = masked_bin_sums(x, g, N_BINS), scatter_bin_sums(x, g, N_BINS)
    assert masked.shape == (37, N_BINS)
    np.testing.assert_allclose(np.asarray(masked), np.asarray(scatter), rtol=1e-5, atol=1e-5)
    # every row lands in one cell: the cells of a feature add up to its column sum
    np.testing.assert_allclose(np.asarray(masked.sum(axis=1)), np.asarray(g.sum(axis=0)), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("platform, scatters", [("cpu", True), ("cuda", False), ("tpu", False)])
def test_the_lookup_gradient_scatters_on_the_cpu_only(platform, scatters):
    # Lowered for each platform without its device: a GPU's scatter-add serialises on atomics.
    x = jnp.zeros((64, 3), jnp.int8)
    grad = jax.jit(jax.grad(lambda t: lookup(t, x).sum()))
    hlo = grad.trace(jnp.zeros((3, N_BINS))).lower(lowering_platforms=(platform,)).as_text()
    assert ("scatter" in hlo) == scatters
