"""Interpretable multi-head attention of one era-level query over a row's feature tokens.

Values are shared across heads and head attentions are averaged (TFT), so every row has
one weight per feature: its feature importances. There is no self-attention among the F
feature tokens (quadratic in F); the query is learned (optionally conditioned on the era
context), so keys, values and logits depend only on (feature, bin) and are tabulated once
per call as F x B tables, then picked per row.
"""

import flax.linen as nn
import jax.numpy as jnp

from dynjax.model.normalizers import get_normalizer


def masked_logits(logit: jnp.ndarray, mask_F: jnp.ndarray) -> jnp.ndarray:
    """Unselected features get the lowest finite logit: exactly zero weight and gradient."""
    return jnp.where(mask_F, logit, jnp.finfo(logit.dtype).min)


class FeatureAttention(nn.Module):
    """Returns the pooled row vectors `[R, D]` and the head-averaged weights `att_RxF`."""

    d_model: int
    n_heads: int
    normalizer: str = "softmax"

    def setup(self):
        self.d_head = self.d_model // self.n_heads
        self.key = nn.Dense(self.n_heads * self.d_head, use_bias=False)
        self.query = nn.Dense(self.n_heads * self.d_head, use_bias=False)
        self.value = nn.Dense(self.d_model)  # one value projection shared by all heads
        self.out = nn.Dense(self.d_model)
        self.normalize = get_normalizer(self.normalizer)

    def _attend(self, logit_HxRxF: jnp.ndarray, mask_F: jnp.ndarray) -> jnp.ndarray:
        return self.normalize(masked_logits(logit_HxRxF, mask_F)).mean(axis=0)

    def tabulated(self, tok_FxBxD, query_D, x_RxF, mask_F, gate_F):
        """Tokens given per (feature, bin); rows are int bins `x_RxF`."""
        n_feat, n_bins, _ = tok_FxBxD.shape
        k_FxBxHxK = self.key(tok_FxBxD).reshape(n_feat, n_bins, self.n_heads, self.d_head)
        q_HxK = self.query(query_D).reshape(self.n_heads, self.d_head)
        logit_HxFxB = jnp.einsum("fbhk,hk->hfb", k_FxBxHxK, q_HxK) / jnp.sqrt(self.d_head)
        # Rows pick their bin's logit with take_along_axis over the bin axis: on CPU its
        # gradient is several times cheaper than a flat gather or a one-hot contraction.
        idx_1xRxFx1 = x_RxF.astype(jnp.int32)[None, :, :, None]
        logit_HxRxF = jnp.take_along_axis(logit_HxFxB[:, None], idx_1xRxFx1, axis=-1)[..., 0]
        att_RxF = self._attend(logit_HxRxF, mask_F)
        v_FxBxD = self.value(tok_FxBxD)
        # sum_f w_rf v[f, x_rf] as one (R x F) @ (F x D) matmul per bin.
        w_RxF = att_RxF * gate_F
        pooled_RxD = sum(jnp.where(x_RxF == b, w_RxF, 0.0) @ v_FxBxD[:, b] for b in range(n_bins))
        return self.out(pooled_RxD), att_RxF

    def per_row(self, tok_RxFxD, query_D, mask_F, gate_F):
        """Tokens given per row (float inputs, or the naive form of binned inputs)."""
        n_rows, n_feat, _ = tok_RxFxD.shape
        k_RxFxHxK = self.key(tok_RxFxD).reshape(n_rows, n_feat, self.n_heads, self.d_head)
        q_HxK = self.query(query_D).reshape(self.n_heads, self.d_head)
        logit_HxRxF = jnp.einsum("rfhk,hk->hrf", k_RxFxHxK, q_HxK) / jnp.sqrt(self.d_head)
        att_RxF = self._attend(logit_HxRxF, mask_F)
        pooled_RxD = jnp.einsum("rf,rfd->rd", att_RxF * gate_F, self.value(tok_RxFxD))
        return self.out(pooled_RxD), att_RxF
