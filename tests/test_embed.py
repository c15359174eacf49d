"""Covers dynjax.model.embed: the (feature, bin) table and the float-view tokens."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from dynjax.data import N_BINS
from dynjax.model.embed import FeatureEmbedding


def test_table_and_float_tokens():
    emb = FeatureEmbedding(n_features=5, d_model=8)
    params = emb.init(jax.random.key(0), method=FeatureEmbedding.table)
    table = emb.apply(params, method=FeatureEmbedding.table)
    chex.assert_shape(table, (5, N_BINS, 8))
    params = emb.init(jax.random.key(0), jnp.zeros((3, 5)), method=FeatureEmbedding.floats)
    xf = jnp.array([[0.0, 1.0, -1.0, 2.0, 0.5]])
    tok = emb.apply(params, xf, method=FeatureEmbedding.floats)
    chex.assert_shape(tok, (1, 5, 8))
    p = params["params"]
    np.testing.assert_allclose(tok[0, 3], 2.0 * p["scale"][3] + p["shift"][3], atol=1e-6)
