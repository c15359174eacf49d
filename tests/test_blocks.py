"""Covers dynjax.model.blocks: GLU and GRN shapes, tokens transformed one by one, dropout."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from dynjax.model.blocks import GLU, GRN


def test_glu_shape_and_gating():
    glu = GLU(8)
    h = jax.random.normal(jax.random.key(0), (5, 3))
    params = glu.init(jax.random.key(1), h)
    out = glu.apply(params, h)
    chex.assert_shape(out, (5, 8))
    value = h @ params["params"]["value"]["kernel"] + params["params"]["value"]["bias"]
    gate = jax.nn.sigmoid(h @ params["params"]["gate"]["kernel"] + params["params"]["gate"]["bias"])
    np.testing.assert_allclose(out, value * gate, atol=1e-6)


def test_grn_on_a_table_transforms_each_token_alone():
    grn = GRN(16)
    a = jax.random.normal(jax.random.key(0), (7, 6, 16))  # an F x B x D table
    params = grn.init(jax.random.key(2), a)
    out = grn.apply(params, a)
    chex.assert_shape(out, (7, 6, 16))
    chex.assert_tree_all_finite(out)
    np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)  # LayerNorm output
    np.testing.assert_allclose(out[3, 2], grn.apply(params, a[3, 2]), atol=1e-6)  # no token reads another


def test_grn_projects_skip_when_widths_differ():
    grn = GRN(4)
    params = grn.init(jax.random.key(0), jnp.ones((3, 9)))
    assert "skip" in params["params"]
    chex.assert_shape(grn.apply(params, jnp.ones((3, 9))), (3, 4))


def test_grn_dropout_only_when_not_deterministic():
    grn = GRN(8, dropout=0.5)
    a = jax.random.normal(jax.random.key(0), (4, 8))
    params = grn.init(jax.random.key(1), a)
    # Deterministic (the default): dropout is off, so the output is that of the same GRN without dropout
    np.testing.assert_array_equal(grn.apply(params, a), GRN(8, dropout=0.0).apply(params, a))
    train = grn.apply(params, a, deterministic=False, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(train, grn.apply(params, a))
