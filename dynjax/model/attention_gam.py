"""The model: an attention-weighted additive model of the bins (a GAM whose terms attention weighs).

    tok_FxBxD = GRN(emb[f, b])                  per (feature, bin): an F x B table of tokens
    query_D   = q                               learned
    keep_F    = mask_F & (gate_F > 0)           the selection mask and the era's open gates
    att_RxF   = mean_h norm(masked(<k_h(tok[f, x_rf]), query_h>, keep_F))   interpretable multi-head
    w_RxF     = att_RxF * gate_F                the row's feature importances
    pred_R    = 0.5 + n_kept * sum_f w_rf beta[f, x_rf]                     the additive head
              + sum_{(f, g) screened} u_rf u_rg table[f, g, x_rf, x_rg],  u = n_kept * w   (model.pairs)

The parts are the Temporal Fusion Transformer's (Lim et al. 2021): gated residual networks
make the feature tokens, interpretable multi-head attention (values shared, heads averaged)
gives one weight per feature, and what changes from era to era comes from resolved eras alone
(the context gates' evidence; an encoder over resolved eras' summaries conditioning the query,
the TFT's temporal part, cost skill on six of the seven synthetic settings: the research log).
The weights scale a GAM rather than pool values into an MLP: on every synthetic setting the GAM
beat the MLP heads, and it keeps the attention the importance of the whole prediction.
Everything per (feature, bin) is tabulated once per era, so a row costs lookups. With softmax
the row's weights need not be formed at all: per head, the additive head is a ratio of two sums
over the row's cells, `sum_f gate_f e[f, x_rf] beta[f, x_rf]` over `sum_f e[f, x_rf]`
(`e = exp(logit)` over the kept features), so a row costs two table sums per head (`bin_sums`),
and the weights are formed only where they are read (importances, the pairs' features).

A closed gate removes its feature from the normaliser as the selection mask does, so dropped
features get exactly zero weight and the rest share the attention.
"""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from dynjax.config import ModelConfig
from dynjax.data.context import EraContext
from dynjax.model.attention import FeatureAttention, bin_sums, bin_totals, exp_table, softmax_rows
from dynjax.model.blocks import GRN
from dynjax.model.embed import FeatureEmbedding
from dynjax.model.gates import ContextGates, FeatureGates
from dynjax.model.heads import AdditiveHead, PairTableHead


class FeatureAttentionModel(nn.Module):
    """`apply(params, x_RxF, mask_F, context) -> (pred_R, aux)` for one era's rows.

    `context` is the era's `EraContext`; it needs `evidence_FxV` with `cfg.gates == "context"`,
    and may be None otherwise. `aux` holds `gate_F`, `gate_aux`, `keep_F`; with `row_weights` (the
    default) each row's `att_RxF` and `weight_RxF`; with `valid_R` (bool), `weight_sum_F`, the
    weights summed over the valid rows (what importances need, without the rows' weights for softmax).
    """

    cfg: ModelConfig
    n_features: int

    def setup(self):
        cfg = self.cfg
        dtype = jnp.dtype(cfg.dtype)
        self.embed = FeatureEmbedding(self.n_features, cfg.d_model)
        self.token_grn = GRN(cfg.d_model, cfg.dropout, dtype)
        # Zero query: uniform attention at init, every feature equally important until the data say otherwise.
        self.query_D = self.param("query", nn.initializers.zeros, (cfg.d_model,))
        self.attention = FeatureAttention(cfg.d_model, cfg.n_heads, cfg.normalizer, dtype)
        if cfg.gates == "context":
            self.gates = ContextGates(cfg.gate_hidden, cfg.gate_thresholds[0])
        else:
            self.gates = FeatureGates(self.n_features, cfg.gates)
        self.additive = AdditiveHead(self.n_features)
        if cfg.pair_index:
            self.pairs = PairTableHead(cfg.pair_index)

    def _era(self, mask_F, context: EraContext | None, deterministic: bool):
        """What is one per era: `(gate_F, gate_aux, keep_F)` (keep: mask and open gates)."""
        cfg = self.cfg
        mask_F = jnp.ones(self.n_features, bool) if mask_F is None else mask_F
        if cfg.gates == "context":
            _need(context, "evidence_FxV", "model.gates=context")
            gate_F, gate_aux = self.gates(context.evidence_FxV, deterministic=deterministic)
        else:
            gate_F, gate_aux = self.gates(deterministic=deterministic)
        return gate_F, gate_aux, mask_F & (gate_F > 0)

    def _logits(self, deterministic: bool) -> jnp.ndarray:
        """Every head's attention logit of every (feature, bin) token, `[H, F, B]`."""
        tok_FxBxD = self.token_grn(self.embed.table().astype(self.token_grn.dtype), deterministic=deterministic)
        return self.attention.logits(tok_FxBxD, self.query_D)

    def era_tables(self, mask_F=None, context: EraContext | None = None) -> dict:
        """The per-(feature, bin) tables one era's prediction reads, for `dynjax export`: `logit_HxFxB`,
        `gate_F`, `keep_F` and `beta_FxB` (and `pair_PxBB` with screened pairs): the whole model."""
        gate_F, _, keep_F = self._era(mask_F, context, True)
        tables = {"logit_HxFxB": self._logits(True), "gate_F": gate_F, "keep_F": keep_F,
                  "beta_FxB": self.additive.variables["params"]["beta"]}
        if self.cfg.pair_index:
            tables["pair_PxBB"] = self.pairs.variables["params"]["table"]
        return tables

    def __call__(self, x_RxF, mask_F=None, context: EraContext | None = None, *, deterministic: bool = True,
                 row_weights: bool = True, valid_R=None):
        gate_F, gate_aux, keep_F = self._era(mask_F, context, deterministic)
        logit_HxFxB = self._logits(deterministic)
        n_kept = keep_F.sum().astype(jnp.float32)
        if self.cfg.normalizer == "softmax":
            pred_R, att, att_sum = self._softmax_gam(logit_HxFxB, x_RxF, gate_F, keep_F, n_kept)
        else:  # the sparse normalisers' thresholds need every row's logits: the weights are formed first
            att_RxF = self.attention(logit_HxFxB, x_RxF, keep_F)
            pred_R = 0.5 + self.additive(x_RxF, att_RxF * gate_F, n_kept)
            att = lambda cols: att_RxF[:, cols]
            att_sum = lambda valid_R: valid_R.astype(jnp.float32) @ att_RxF
        weight = lambda cols: att(cols) * gate_F[cols]
        if self.cfg.pair_index:
            f_P, g_P = np.asarray(self.cfg.pair_index[0::2]), np.asarray(self.cfg.pair_index[1::2])
            pred_R = pred_R + self.pairs(x_RxF, weight(f_P), weight(g_P), n_kept)
        aux = {"gate_F": gate_F, "gate_aux": gate_aux, "keep_F": keep_F}
        if row_weights:
            every = slice(None)
            aux.update(att_RxF=att(every), weight_RxF=weight(every))
        if valid_R is not None:
            aux["weight_sum_F"] = att_sum(valid_R) * gate_F
        return pred_R, aux

    def _softmax_gam(self, logit_HxFxB, x_RxF, gate_F, keep_F, n_kept):
        """`(pred_R, att, att_sum)`: the additive head's prediction from two table sums per head;
        `att(cols)`, the rows' head-averaged weights at some features, and `att_sum(valid_R)`, every
        feature's weight summed over the valid rows (by the sums' transpose), formed only when asked."""
        dtype = self.attention.dtype
        exp_HxFxB = exp_table(logit_HxFxB, keep_F)
        terms_HxFxB = exp_HxFxB * (gate_F[:, None] * self.additive.beta_FxB)
        n_heads, _, n_bins = exp_HxFxB.shape
        sums_RxK = bin_sums(jnp.concatenate([exp_HxFxB, terms_HxFxB]).astype(dtype), x_RxF)
        norm_RxH = jnp.maximum(sums_RxK[:, :n_heads], jnp.finfo(jnp.float32).tiny)  # no kept feature: zero weights
        pred_R = 0.5 + n_kept * (sums_RxK[:, n_heads:] / norm_RxH).mean(axis=1)
        table_HxFxB = exp_HxFxB.astype(dtype)
        att = lambda cols: softmax_rows(table_HxFxB[:, cols], x_RxF[:, cols], norm_RxH)

        def att_sum(valid_R):
            share_RxH = valid_R[:, None] / (n_heads * norm_RxH)  # each valid row's 1 / (H * norm) per head
            return (exp_HxFxB * bin_totals(x_RxF, share_RxH, n_bins)).sum(axis=(0, 2))

        return pred_R, att, att_sum


def _need(context: EraContext | None, field: str, why: str) -> None:
    if context is None or getattr(context, field) is None:
        raise ValueError(f"{why} needs the era context's {field}")
