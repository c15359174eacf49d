"""The heads the attention weights: the additive path (a GAM of the bins) and GA2M's pair tables.

`AdditiveHead`: a learned scalar per (feature, bin), weighted by the row's attention: a GAM
whose terms the attention weights. Numerai-style signals are mostly additive over features and
very noisy; this path learns that part as fast and as robustly as a ridge on one-hot bins.
`PairTableHead`: one table over two features' bins for each feature pair the screen kept
(`dynjax.data.pairs`), under both features' weights.
"""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from dynjax.data.bins import N_BINS
from dynjax.model.attention import lookup


class AdditiveHead(nn.Module):
    """`sum_f n_kept * w_rf * beta[f, x_rf]`: per-(feature, bin) scalars under the attention weights.

    `w_RxF` (attention times gate) sums to one over the kept features, so `n_kept * w` is one
    for a feature of average weight: the terms keep their scale however many features are kept.
    """

    n_features: int

    def setup(self):
        # Read directly by the softmax model, which sums its terms per head (`FeatureAttentionModel`).
        self.beta_FxB = self.param("beta", nn.initializers.zeros, (self.n_features, N_BINS))

    def __call__(self, x_RxF: jnp.ndarray, w_RxF: jnp.ndarray, n_kept: jnp.ndarray) -> jnp.ndarray:
        # A matvec, not a reduce over features: see `era_importance`.
        return n_kept * jnp.matmul(lookup(self.beta_FxB, x_RxF) * w_RxF, jnp.ones(self.n_features, jnp.float32))


class PairTableHead(nn.Module):
    """`sum_p (n_kept w_rf) (n_kept w_rg) table[p, x_rf, x_rg]` over the screened pairs `(f, g)`: GA2M's pair terms.

    One scalar per pair of bins (missing included), zero at init, so the model starts as the GAM
    and a pair's table learns at first order (a factorisation machine's vectors, second order, did
    not: the research log). Both attention weights scale a pair, so a feature the mask or its gate
    drops takes part in none and the attention stays the importance.
    """

    pairs: tuple[int, ...]  # flattened (f0, g0, f1, g1, ...)

    @nn.compact
    def __call__(self, x_RxF: jnp.ndarray, wf_RxP: jnp.ndarray, wg_RxP: jnp.ndarray, n_kept: jnp.ndarray) -> jnp.ndarray:
        """`wf_RxP`, `wg_RxP`: the rows' weights of each pair's first and second feature."""
        f_P, g_P = np.asarray(self.pairs[0::2]), np.asarray(self.pairs[1::2])
        table_PxBB = self.param("table", nn.initializers.zeros, (len(f_P), N_BINS * N_BINS))
        cell_RxP = x_RxF[:, f_P].astype(jnp.int32) * N_BINS + x_RxF[:, g_P].astype(jnp.int32)
        value_RxP = jnp.take_along_axis(table_PxBB.T, cell_RxP, axis=0)
        return (value_RxP * (n_kept * wf_RxP) * (n_kept * wg_RxP)).sum(axis=1)
