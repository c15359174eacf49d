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
    """GRN(a, c) = LayerNorm(a + GLU(W1 ELU(W2 a + W3 c + b2) + b1)); `c` is optional context.

    Works on any leading shape; `c` broadcasts against `a`'s leading axes (one era context
    for a whole table of tokens).
    """

    features: int
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32  # compute dtype; params stay float32

    @nn.compact
    def __call__(self, a: jnp.ndarray, c: jnp.ndarray | None = None, *, deterministic: bool = True) -> jnp.ndarray:
        dense = lambda name, **kw: nn.Dense(self.features, dtype=self.dtype, name=name, **kw)
        skip = a if a.shape[-1] == self.features else dense("skip")(a)
        h = dense("w2")(a)
        if c is not None:
            h = h + dense("w3", use_bias=False)(c)
        h = dense("w1")(nn.elu(h))
        h = nn.Dropout(self.dropout)(h, deterministic=deterministic)
        return nn.LayerNorm(dtype=self.dtype, name="norm")(skip + GLU(self.features, self.dtype, name="glu")(h))
