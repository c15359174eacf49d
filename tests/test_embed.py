"""Covers dynjax.model.embed: the (feature, bin) table."""

import chex
import jax

from dynjax.data import N_BINS
from dynjax.model.embed import FeatureEmbedding


def test_one_vector_per_feature_and_bin():
    emb = FeatureEmbedding(n_features=5, d_model=8)
    params = emb.init(jax.random.key(0), method=FeatureEmbedding.table)
    table = emb.apply(params, method=FeatureEmbedding.table)
    chex.assert_shape(table, (5, N_BINS, 8))
    assert set(params["params"]) == {"emb"} and float(table.std()) > 0.1  # random: no feature starts as another
