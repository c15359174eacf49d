"""Feature embeddings: one learned vector per (feature, bin), or a float view times a vector."""

import flax.linen as nn
import jax.numpy as jnp

from dynjax.data.bins import N_BINS


class FeatureEmbedding(nn.Module):
    """`table()` for binned data (F x B x D, bins 0..4 plus the missing bin); `floats(x)` otherwise."""

    n_features: int
    d_model: int

    def setup(self):
        self.emb_FxBxD = self.param("emb", nn.initializers.normal(0.5), (self.n_features, N_BINS, self.d_model))
        self.scale_FxD = self.param("scale", nn.initializers.normal(0.5), (self.n_features, self.d_model))
        self.shift_FxD = self.param("shift", nn.initializers.normal(0.5), (self.n_features, self.d_model))

    def table(self) -> jnp.ndarray:
        return self.emb_FxBxD

    def floats(self, xf_RxF: jnp.ndarray) -> jnp.ndarray:
        """Per-row tokens of a float view: x_rf * scale_f + shift_f."""
        return xf_RxF[..., None] * self.scale_FxD + self.shift_FxD
