"""Feature embeddings: one learned vector per (feature, bin)."""

import flax.linen as nn
import jax.numpy as jnp

from dynjax.data.bins import N_BINS


class FeatureEmbedding(nn.Module):
    """`table()`: the F x B x D embeddings of every feature's bins 0..4 and its missing bin."""

    n_features: int
    d_model: int

    def setup(self):
        self.emb_FxBxD = self.param("emb", nn.initializers.normal(0.5), (self.n_features, N_BINS, self.d_model))

    def table(self) -> jnp.ndarray:
        return self.emb_FxBxD
