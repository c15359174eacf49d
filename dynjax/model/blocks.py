"""TFT building blocks (Lim et al. 2021): Gated Linear Unit and Gated Residual Network."""

import flax.linen as nn
import jax.numpy as jnp


class GLU(nn.Module):
    """GLU(h) = (W4 h + b4) * sigmoid(W5 h + b5)."""

    features: int

    @nn.compact
    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        return nn.Dense(self.features, name="value")(h) * nn.sigmoid(nn.Dense(self.features, name="gate")(h))


class GRN(nn.Module):
    """GRN(a, c) = LayerNorm(a + GLU(W1 ELU(W2 a + W3 c + b2) + b1)); `c` is optional context.

    Works on any leading shape; `c` broadcasts against `a`'s leading axes (one era context
    for a whole table of tokens).
    """

    features: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, a: jnp.ndarray, c: jnp.ndarray | None = None, *, deterministic: bool = True) -> jnp.ndarray:
        skip = a if a.shape[-1] == self.features else nn.Dense(self.features, name="skip")(a)
        h = nn.Dense(self.features, name="w2")(a)
        if c is not None:
            h = h + nn.Dense(self.features, use_bias=False, name="w3")(c)
        h = nn.Dense(self.features, name="w1")(nn.elu(h))
        h = nn.Dropout(self.dropout)(h, deterministic=deterministic)
        return nn.LayerNorm(name="norm")(skip + GLU(self.features, name="glu")(h))
