"""Interpretable multi-head attention of one era-level query over a row's feature tokens.

Head attentions are averaged (TFT's interpretable attention), so every row has one weight per
feature: its feature importances. There is no self-attention among the F feature tokens
(quadratic in F); the query is learned (optionally conditioned on the era context), so keys
and logits depend only on (feature, bin) and are tabulated once per call as F x B tables,
then picked per row. The weights scale the additive head (`dynjax.model.heads`): there are no
values to pool.

Softmax goes one step further: exp(logit) is tabulated too (`exp_table`), so a row's normaliser
is a sum over its features of one table's cells (`bin_sums`), with no per-row max or exp. The table
is shifted by its own max per head, which is exact while a row's largest logit lies within
`_EXP_FLOOR` nats of that max; further below, the floor keeps every row's normaliser positive
(weights stay finite and on the simplex, but flatter than softmax would make them).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from dynjax.model.normalizers import get_normalizer

_EXP_FLOOR = -80.0  # exp(-80) ~ 1.8e-35: far from float32 underflow even summed over rows


def bin_index(x_RxF: jnp.ndarray, n_bins: int) -> jnp.ndarray:
    """Flat (feature, bin) index `f * B + x_rf` of every cell in a flattened F x B table."""
    return jnp.arange(x_RxF.shape[-1], dtype=jnp.int32) * n_bins + x_RxF.astype(jnp.int32)


@jax.custom_vjp
def lookup(table_FxB: jnp.ndarray, x_RxF: jnp.ndarray) -> jnp.ndarray:
    """Per-row values `[R, F]` of one F x B table at the rows' bins (`x_RxF` in 0..B-1).

    Forward: a chain of B selects against broadcast table columns, one fused elementwise
    pass (faster than a gather on CPU: predict went from ~89k to ~105k rows/s at F = 705). Backward,
    per platform (`jax.lax.platform_dependent`): on the CPU one scatter-add with flat scalar
    indices, several times cheaper there than B column reductions or `take_along_axis`'s gradient
    (which builds 2-D indices); elsewhere B masked column sums, since a GPU scatter-adds the ~R / B
    rows of each (feature, bin) cell into one address with atomics, one after another.
    """
    return _select_bins(table_FxB, x_RxF)


def _select_bins(table_FxB: jnp.ndarray, x_RxF: jnp.ndarray) -> jnp.ndarray:
    n_bins = table_FxB.shape[1]
    out_RxF = jnp.broadcast_to(table_FxB[:, n_bins - 1], x_RxF.shape)
    for b in range(n_bins - 2, -1, -1):
        out_RxF = jnp.where(x_RxF == b, table_FxB[:, b], out_RxF)
    return out_RxF


def _lookup_fwd(table_FxB, x_RxF):
    return _select_bins(table_FxB, x_RxF), (x_RxF, table_FxB)


def _lookup_bwd(residuals, g_RxF):
    x_RxF, table_FxB = residuals
    n_bins = table_FxB.shape[1]
    # Accumulated in float32 whatever the table's dtype: each cell sums ~R / B row gradients, which
    # bfloat16 (8 bits of mantissa) would round away, and a GPU adds bfloat16 into one address with
    # a compare-and-swap loop (a bfloat16 step ran 25x slower than float32 on an H200).
    g_RxF = g_RxF.astype(jnp.float32)
    sums_FxB = jax.lax.platform_dependent(x_RxF, g_RxF, cpu=lambda x, g: scatter_bin_sums(x, g, n_bins),
                                          default=lambda x, g: masked_bin_sums(x, g, n_bins))
    return sums_FxB.astype(table_FxB.dtype), None


def scatter_bin_sums(x_RxF: jnp.ndarray, g_RxF: jnp.ndarray, n_bins: int) -> jnp.ndarray:
    """`[F, B]` sums of `g_RxF` over the rows in each (feature, bin), by one flat scatter-add."""
    flat = jnp.zeros(x_RxF.shape[1] * n_bins, g_RxF.dtype).at[bin_index(x_RxF, n_bins)].add(g_RxF, mode="drop")
    return flat.reshape(x_RxF.shape[1], n_bins)


def masked_bin_sums(x_RxF: jnp.ndarray, g_RxF: jnp.ndarray, n_bins: int) -> jnp.ndarray:
    """The same sums as B column reductions of `g_RxF` masked to each bin: no scatter, no atomics."""
    return jnp.stack([jnp.where(x_RxF == b, g_RxF, 0.0).sum(axis=0) for b in range(n_bins)], axis=1)


lookup.defvjp(_lookup_fwd, _lookup_bwd)


def head_mean(p_HxRxF: jnp.ndarray) -> jnp.ndarray:
    """Mean over the (few) heads as a sum of slices: XLA:CPU reduces a leading axis slowly."""
    return sum(p_HxRxF[h] for h in range(p_HxRxF.shape[0])) / p_HxRxF.shape[0]


@jax.custom_vjp
def bin_sums(table_KxFxB: jnp.ndarray, x_RxF: jnp.ndarray) -> jnp.ndarray:
    """`sums_RxK[r, k] = sum_f table[k, f, x_rf]`: K tables summed over each row's cells, in float32.

    B matmuls of the rows' bin indicators (R x F, exact in any dtype) against the tables' bin
    columns (F x K), forward and backward alike: no R x F array of values or gradients is ever
    formed, where a lookup per table and a row sum form K of them (the softmax model's train step
    went from 198 to 43 ms at F = 300). The gradient sums each cell's rows in float32 whatever
    the table's dtype (as `lookup`'s) and needs no scatter, so no atomics on a GPU either.
    """
    return _bin_sums(table_KxFxB, x_RxF)


def _indicator(x_RxF: jnp.ndarray, b: int, dtype) -> jnp.ndarray:
    return (x_RxF == b).astype(dtype)


def _bin_sums(table_KxFxB, x_RxF):
    sums_RxK = jnp.zeros((x_RxF.shape[0], table_KxFxB.shape[0]), jnp.float32)
    for b in range(table_KxFxB.shape[2]):
        # HIGHEST: a float32 table stays float32 on accelerators whose default matmul rounds it (TF32, bfloat16).
        sums_RxK += jnp.matmul(_indicator(x_RxF, b, table_KxFxB.dtype), table_KxFxB[:, :, b].T,
                               precision=jax.lax.Precision.HIGHEST, preferred_element_type=jnp.float32)
    return sums_RxK


def _bin_sums_fwd(table_KxFxB, x_RxF):
    # The residuals: the bins and an empty array whose shape and dtype say the table's bins and dtype.
    return _bin_sums(table_KxFxB, x_RxF), (x_RxF, jnp.zeros((0, table_KxFxB.shape[2]), table_KxFxB.dtype))


def _bin_sums_bwd(residuals, g_RxK):
    x_RxF, empty = residuals
    return bin_totals(x_RxF, g_RxK, empty.shape[1]).astype(empty.dtype), None


def bin_totals(x_RxF: jnp.ndarray, g_RxK: jnp.ndarray, n_bins: int) -> jnp.ndarray:
    """`[K, F, B]` sums of each row's `g_RxK` over the rows in each (feature, bin), in float32: `bin_sums`'s
    transpose (its gradient), as B matmuls of the rows' bin indicators."""
    g_KxR = g_RxK.astype(jnp.float32).T
    return jnp.stack([jnp.matmul(g_KxR, _indicator(x_RxF, b, jnp.float32), precision=jax.lax.Precision.HIGHEST)
                      for b in range(n_bins)], axis=2)


bin_sums.defvjp(_bin_sums_fwd, _bin_sums_bwd)


def exp_table(logit_HxFxB: jnp.ndarray, keep_F: jnp.ndarray) -> jnp.ndarray:
    """`exp(logit - max)` per head over the kept features' cells (zero elsewhere), floored at `_EXP_FLOOR`."""
    keep_1xFx1 = keep_F[None, :, None]
    top_Hx1x1 = jax.lax.stop_gradient(jnp.where(keep_1xFx1, logit_HxFxB, -jnp.inf).max(axis=(1, 2), keepdims=True))
    # Nothing kept (every gate shut): a finite shift, so the masked-out branch has no inf - inf.
    top_Hx1x1 = jnp.where(jnp.isfinite(top_Hx1x1), top_Hx1x1, 0.0)
    return jnp.where(keep_1xFx1, jnp.exp(jnp.maximum(logit_HxFxB - top_Hx1x1, _EXP_FLOOR)), 0.0)


def softmax_norms(exp_HxFxB: jnp.ndarray, x_RxF: jnp.ndarray) -> jnp.ndarray:
    """Each row's softmax normaliser per head, `[R, H]`: positive, so a row with no kept feature gets zero weights."""
    return jnp.maximum(bin_sums(exp_HxFxB, x_RxF), jnp.finfo(jnp.float32).tiny)


def softmax_rows(exp_HxFxC: jnp.ndarray, x_RxC: jnp.ndarray, norm_RxH: jnp.ndarray) -> jnp.ndarray:
    """`head_mean(softmax)` of the rows at C of their features (the exp table's columns, `x`'s): `[R, C]`, float32."""
    att_RxC = jnp.zeros(x_RxC.shape, jnp.float32)
    for h, exp_FxB in enumerate(exp_HxFxC):
        att_RxC += lookup(exp_FxB, x_RxC).astype(jnp.float32) / norm_RxH[:, h:h + 1]
    return att_RxC / exp_HxFxC.shape[0]


def tabulated_softmax(logit_HxFxB: jnp.ndarray, x_RxF: jnp.ndarray, mask_F: jnp.ndarray,
                      dtype: jnp.dtype = jnp.float32) -> jnp.ndarray:
    """`head_mean(softmax(masked logits))` per row, from a table of exponentials (in `dtype`; sums in float32)."""
    exp_HxFxB = exp_table(logit_HxFxB, mask_F).astype(dtype)
    return softmax_rows(exp_HxFxB, x_RxF, softmax_norms(exp_HxFxB, x_RxF))


def masked_logits(logit: jnp.ndarray, mask_F: jnp.ndarray) -> jnp.ndarray:
    """Unselected features get the lowest finite logit: exactly zero weight and gradient."""
    return jnp.where(mask_F, logit, jnp.finfo(logit.dtype).min)


class FeatureAttention(nn.Module):
    """`logits(tok_FxBxD, query_D)` tabulates every head's logit per (feature, bin); calling it with
    those logits and a row's bins gives the head-averaged weights `att_RxF` over the kept features."""

    d_model: int
    n_heads: int
    normalizer: str = "softmax"
    dtype: jnp.dtype = jnp.float32  # tables and matmuls; logits, normalisers and sums over F in float32

    def setup(self):
        self.d_head = self.d_model // self.n_heads
        self.key = nn.Dense(self.n_heads * self.d_head, use_bias=False, dtype=self.dtype)
        self.query = nn.Dense(self.n_heads * self.d_head, use_bias=False, dtype=self.dtype)
        self.normalize = get_normalizer(self.normalizer)

    def logits(self, tok_FxBxD, query_D) -> jnp.ndarray:
        """Every head's logit of every (feature, bin) token, `[H, F, B]` (float32)."""
        n_feat, n_bins, _ = tok_FxBxD.shape
        k_FxBxHxA = self.key(tok_FxBxD).reshape(n_feat, n_bins, self.n_heads, self.d_head)
        q_HxA = self.query(query_D).reshape(self.n_heads, self.d_head)
        return jnp.einsum("fbha,ha->hfb", k_FxBxHxA, q_HxA, preferred_element_type=jnp.float32) / jnp.sqrt(self.d_head)

    def __call__(self, logit_HxFxB, x_RxF, keep_F) -> jnp.ndarray:
        """`att_RxF`: each row's weights over the kept features (zero elsewhere), heads averaged."""
        if self.normalizer == "softmax":
            return tabulated_softmax(logit_HxFxB, x_RxF, keep_F, self.dtype)
        # The sparse normalisers need each row's logits for their thresholds.
        logit_HxRxF = jnp.stack([lookup(logit_FxB, x_RxF) for logit_FxB in logit_HxFxB])
        att_RxF = head_mean(self.normalize(masked_logits(logit_HxRxF, keep_F)))
        # With nothing kept the normaliser would spread weight over the masked features.
        return jnp.where(keep_F.any(), att_RxF, 0.0)
