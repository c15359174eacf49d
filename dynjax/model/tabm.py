"""TabM's backbone (Gorishniy, Kotelnikov & Babenko, ICLR 2025) and the additive path.

`BatchEnsembleMLP`: K members share every weight matrix of an MLP; each member has its own
elementwise scalings of a layer's input (`r`) and output (`s`) and its own biases and head
(BatchEnsemble adapters). One forward pass trains K diverse predictors for little more than
one, and their mean is the prediction; each member is trained on its own loss (the mean of
the K losses), as in TabM, which keeps them diverse.

`AdditiveHead`: a learned scalar per (feature, bin), weighted by the row's attention: a GAM
whose terms the attention weights. Numerai-style signals are mostly additive over features
and very noisy; this path learns that part as fast and as robustly as a ridge on one-hot
bins, and leaves the MLP the interactions.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dynjax.data.bins import N_BINS
from dynjax.model.attention import lookup


def random_signs(key: jax.Array, shape: tuple, dtype=jnp.float32) -> jnp.ndarray:
    """TabM's init of the first adapter: random +-1, so the members differ from the first step."""
    return jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0).astype(dtype)


class BatchEnsembleMLP(nn.Module):
    """`(h_RxD) -> pred_KxR`: K members' outputs, centred at zero (the caller adds the bias)."""

    k: int = 8
    hidden: int = 128
    n_blocks: int = 2
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, h_RxD: jnp.ndarray, *, deterministic: bool = True) -> jnp.ndarray:
        x_KxRxD = jnp.broadcast_to(h_RxD.astype(self.dtype), (self.k, *h_RxD.shape))
        for i in range(self.n_blocks):
            d_in = x_KxRxD.shape[-1]
            r_KxD = self.param(f"r{i}", random_signs if i == 0 else nn.initializers.ones, (self.k, d_in))
            s_KxH = self.param(f"s{i}", nn.initializers.ones, (self.k, self.hidden))
            b_KxH = self.param(f"b{i}", nn.initializers.zeros, (self.k, self.hidden))
            w_DxH = self.param(f"w{i}", nn.initializers.lecun_normal(), (d_in, self.hidden))
            z_KxRxH = jnp.matmul((x_KxRxD * r_KxD[:, None].astype(self.dtype)), w_DxH.astype(self.dtype))
            x_KxRxD = nn.relu(z_KxRxH * s_KxH[:, None].astype(self.dtype) + b_KxH[:, None].astype(self.dtype))
            x_KxRxD = nn.Dropout(self.dropout)(x_KxRxD, deterministic=deterministic)
        # Small head init: every member starts near the bias, as the single head does.
        head_KxH = self.param("head", nn.initializers.normal(0.01), (self.k, self.hidden))
        head_K = self.param("head_bias", nn.initializers.zeros, (self.k,))
        return jnp.einsum("krh,kh->kr", x_KxRxD, head_KxH.astype(self.dtype),
                          preferred_element_type=jnp.float32) + head_K[:, None]


def lookup_vectors(table_FxBxE: jnp.ndarray, x_RxF: jnp.ndarray) -> jnp.ndarray:
    """Per-row E-vectors `[R, F, E]` of an F x B x E table at the rows' bins (`lookup` per column)."""
    return jax.vmap(lookup, in_axes=(2, None), out_axes=2)(table_FxBxE, x_RxF)


class AdditiveHead(nn.Module):
    """`sum_f n_kept * w_rf * beta[f, x_rf]`: per-(feature, bin) scalars under the attention weights.

    `w_RxF` (attention times gate) sums to one over the kept features, so `n_kept * w` is one
    for a feature of average weight: the terms keep their scale however many features are kept.
    """

    n_features: int
    float_inputs: bool = False  # a float view per row: one slope per feature instead of a table

    @nn.compact
    def __call__(self, x_RxF: jnp.ndarray, w_RxF: jnp.ndarray, n_kept: jnp.ndarray) -> jnp.ndarray:
        if self.float_inputs:
            beta_F = self.param("beta", nn.initializers.zeros, (self.n_features,))
            return n_kept * jnp.matmul(x_RxF * w_RxF, beta_F)
        beta_FxB = self.param("beta", nn.initializers.zeros, (self.n_features, N_BINS))
        # A matvec, not a reduce over features: see `era_importance`.
        return n_kept * jnp.matmul(lookup(beta_FxB, x_RxF) * w_RxF, jnp.ones(self.n_features, jnp.float32))


class PairwiseHead(nn.Module):
    """`sum_{f<g} <u_rf, u_rg>`, `u_rf = n_kept * w_rf * v[f, x_rf]`: a factorisation machine's pairs.

    Every pair of features interacts through the dot product of their bins' K-vectors (Rendle,
    2010), computed in O(F K) as `(|sum_f u|^2 - sum_f |u|^2) / 2`. Both attention weights scale a
    pair, so a feature the mask or its gate drops takes part in none and the attention stays the
    importance of this path too. The init puts the term's spread near 0.003 whatever F and K.
    """

    n_features: int
    rank: int
    float_inputs: bool = False  # a float view per row: one K-vector per feature, times the value

    @nn.compact
    def __call__(self, x_RxF: jnp.ndarray, w_RxF: jnp.ndarray, n_kept: jnp.ndarray) -> jnp.ndarray:
        # A sum of F^2 / 2 products of N(0, s^2) entries has spread F sqrt(K / 2) s^2.
        std = (0.003 / (self.n_features * (self.rank / 2) ** 0.5)) ** 0.5
        if self.float_inputs:
            v_FxK = self.param("v", nn.initializers.normal(std), (self.n_features, self.rank))
            v_RxFxK = x_RxF[..., None] * v_FxK
        else:
            v_FxBxK = self.param("v", nn.initializers.normal(std), (self.n_features, N_BINS, self.rank))
            v_RxFxK = lookup_vectors(v_FxBxK, x_RxF)
        u_RxFxK = v_RxFxK * (n_kept * w_RxF)[..., None]
        sum_RxK = jnp.einsum("rfk->rk", u_RxFxK)
        return 0.5 * ((sum_RxK**2).sum(axis=1) - jnp.einsum("rfk,rfk->r", u_RxFxK, u_RxFxK))


class PairTableHead(nn.Module):
    """`sum_p (n_kept w_rf) (n_kept w_rg) table[p, x_rf, x_rg]` over the screened pairs `(f, g)`: GA2M's pair terms.

    One scalar per pair of bins (missing included), zero at init, so the model starts as the GAM
    and a pair's table learns at first order (the factorisation machine's vectors, second order,
    did not: experiments/README.md). Both attention weights scale a pair, so a feature the mask or
    its gate drops takes part in none and the attention stays the importance.
    """

    pairs: tuple[int, ...]  # flattened (f0, g0, f1, g1, ...)

    @nn.compact
    def __call__(self, x_RxF: jnp.ndarray, w_RxF: jnp.ndarray, n_kept: jnp.ndarray) -> jnp.ndarray:
        f_P, g_P = np.asarray(self.pairs[0::2]), np.asarray(self.pairs[1::2])
        table_PxBB = self.param("table", nn.initializers.zeros, (len(f_P), N_BINS * N_BINS))
        cell_RxP = x_RxF[:, f_P].astype(jnp.int32) * N_BINS + x_RxF[:, g_P].astype(jnp.int32)
        value_RxP = jnp.take_along_axis(table_PxBB.T, cell_RxP, axis=0)
        return (value_RxP * (n_kept * w_RxF[:, f_P]) * (n_kept * w_RxF[:, g_P])).sum(axis=1)


class FeatureCodes(nn.Module):
    """`(x_RxF, w_RxF) -> [R, F * E]`: every feature's learned E-vector for its bin, times its weight.

    TabM reads each feature through its own embedding; here the weight (attention times gate,
    times n_kept so that an average feature has weight one) scales it, so the MLP's inputs
    from a feature the mask or its gate drops are zero and the attention stays the importance.
    """

    n_features: int
    dim: int = 4
    float_inputs: bool = False  # a float view per row: one slope and offset per (feature, code)

    @nn.compact
    def __call__(self, x_RxF: jnp.ndarray, w_RxF: jnp.ndarray) -> jnp.ndarray:
        if self.float_inputs:
            slope_FxE = self.param("slope", nn.initializers.normal(1.0), (self.n_features, self.dim))
            code_RxFxE = x_RxF[..., None] * slope_FxE
        else:
            code_FxBxE = self.param("code", nn.initializers.normal(1.0), (self.n_features, N_BINS, self.dim))
            code_RxFxE = lookup_vectors(code_FxBxE, x_RxF)
        return (code_RxFxE * w_RxF[..., None]).reshape(x_RxF.shape[0], -1)
