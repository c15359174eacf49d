"""Era context encoder (TFT's temporal role, at era level).

Reads the embargoed window of past eras' summaries built on the host by
`dynjax.data.context.context_window` and yields one context vector that conditions the
query and the GRNs.
"""

import flax.linen as nn
import jax.numpy as jnp

from dynjax.model.blocks import GRN


class EraContextEncoder(nn.Module):
    """GRU over past eras' summaries (projected to D), then a GRN: one context vector `c_D`."""

    d_model: int

    @nn.compact
    def __call__(self, ctx_LxF: jnp.ndarray, mask_L: jnp.ndarray) -> jnp.ndarray:
        h_LxD = nn.Dense(self.d_model, name="project")(ctx_LxF)
        length = mask_L.sum().astype(jnp.int32)
        carry, _ = nn.RNN(nn.GRUCell(self.d_model), return_carry=True, name="gru")(
            h_LxD[None], seq_lengths=length[None]
        )
        # With no resolved history yet the carry stays at its zero init: a neutral context.
        return GRN(self.d_model, name="grn")(carry[0])
