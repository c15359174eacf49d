"""TFT building blocks (Lim et al. 2021): Gated Linear Unit and Gated Residual Network."""

import flax.linen as nn
import jax.numpy as jnp


class GLU(nn.Module):
    """GLU(h) = (W4 h + b4) * sigmoid(W5 h + b5)."""

    features: int
    dtype: jnp.dtype = jnp.float32  # compute dtype; params stay float32

    @nn.compact
    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        dense = lambda name: nn.Dense(self.features, dtype=self.dtype, name=name)
        return dense("value")(h) * nn.sigmoid(dense("gate")(h))


class GRN(nn.Module):
    """GRN(a) = LayerNorm(a + GLU(W1 ELU(W2 a + b2) + b1)), on any leading shape (the TFT's GRN
    without its optional context input: the era encoder that fed it cost skill, the research log)."""

    features: int
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32  # compute dtype; params stay float32

    @nn.compact
    def __call__(self, a: jnp.ndarray, *, deterministic: bool = True) -> jnp.ndarray:
        dense = lambda name: nn.Dense(self.features, dtype=self.dtype, name=name)
        skip = a if a.shape[-1] == self.features else dense("skip")(a)
        h = dense("w1")(nn.elu(dense("w2")(a)))
        h = nn.Dropout(self.dropout)(h, deterministic=deterministic)
        return nn.LayerNorm(dtype=self.dtype, name="norm")(skip + GLU(self.features, self.dtype, name="glu")(h))
