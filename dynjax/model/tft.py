"""The model: TFT-style feature attention with gates, selection mask and optional era context.

    tokens  = GRN(emb[f, b], c)                  per (feature, bin): an F x B table
    query   = q + W c                            one per era (learned, context-conditioned)
    keep_F  = mask_F & (gate_F > 0)              selection mask and closed gates
    att_RxF = mean_h norm(masked(<k_h(tok[f, x_rf]), q_h>, keep_F))   interpretable multi-head
    h_R     = sum_f att_rf * gate_f * v(tok[f, x_rf])
    pred_KxR = 0.5 + TabM_k(h_R + W c) + n_kept * sum_f att_rf * gate_f * beta[f, x_rf]
               + sum_{f<g} <u_rf, u_rg>,  u_rf = n_kept * att_rf * gate_f * v[f, x_rf]   (model.pairwise)
               + sum_{(f,g) screened} u_rf u_rg table[f, g, x_rf, x_rg],  u = n_kept * att * gate   (model.pairs)
    pred_R  = mean_k pred_KxR

The backbone is TabM's (K BatchEnsemble MLP members sharing weights; `backbone="grn"`: one
GRN and one head, K = 1). With `tabm_inputs="features"` its input is not the pooled h_R but
every feature's own code, [n_kept * att_rf * gate_f * code[f, x_rf]]_f (feature_dim numbers a
feature), so the MLP sees the features apart (interactions) and still only through their
attention weights: a dropped feature's inputs are exactly zero. The last term is the additive
path (`additive=True`, with `backbone="none"` the whole prediction): a GAM whose terms the
attention weights, so the attention stays the feature importance of both paths.

A closed gate removes its feature from the normaliser like the selection mask does, so
dropped features get exactly zero weight and the rest share the attention.

With `tabulate=False` (or float inputs) the same function is computed per row: tokens are
gathered for every row and the GRN runs on R x F tokens instead of F x B.
"""

import flax.linen as nn
import jax.numpy as jnp

from dynjax.config import ModelConfig
from dynjax.data.context import EraContext
from dynjax.data.missing import float_view
from dynjax.model.attention import FeatureAttention
from dynjax.model.blocks import GRN
from dynjax.model.context import EraContextEncoder
from dynjax.model.embed import FeatureEmbedding
from dynjax.model.gates import ContextGates, FeatureGates
from dynjax.model.tabm import (
    AdditiveHead,
    BatchEnsembleMLP,
    FeatureCodes,
    PairTableHead,
    PairwiseHead,
)


class FeatureAttentionModel(nn.Module):
    """`apply(params, x_RxF, mask_F, context) -> (pred_R, aux)` for one era's rows.

    `context` is the era's `EraContext`; it needs `summary_*` with `cfg.context` and
    `evidence_FxV` with `cfg.gates == "context"`, and may be None otherwise.
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
            self.gates = ContextGates(cfg.gate_hidden, cfg.gate_threshold)
        else:
            self.gates = FeatureGates(self.n_features, cfg.gates)
        if cfg.backbone == "grn":
            self.out_grn = GRN(cfg.d_model, cfg.dropout, dtype)
            # Small head init: predictions start at the target mean 0.5 instead of far from it.
            self.head = nn.Dense(1, kernel_init=nn.initializers.normal(0.01), bias_init=nn.initializers.constant(0.5))
        elif cfg.backbone == "tabm":
            if cfg.tabm_inputs == "features":
                self.feature_inputs = FeatureCodes(self.n_features, cfg.feature_dim, float_inputs=cfg.inputs == "float")
            else:
                self.norm = nn.LayerNorm(dtype=dtype)
            self.tabm = BatchEnsembleMLP(cfg.k_heads, cfg.hidden, cfg.n_blocks, cfg.dropout, dtype)
        if cfg.additive:
            self.additive = AdditiveHead(self.n_features, float_inputs=cfg.inputs == "float")
        if cfg.pairwise:
            self.pairwise = PairwiseHead(self.n_features, cfg.pairwise, float_inputs=cfg.inputs == "float")
        if cfg.pair_index:
            self.pairs = PairTableHead(cfg.pair_index)
        if cfg.context:
            self.context = EraContextEncoder(cfg.d_model)
            self.context_query = nn.Dense(cfg.d_model, use_bias=False)
            if cfg.backbone == "tabm" and cfg.tabm_inputs == "pooled":
                self.context_in = nn.Dense(cfg.d_model, use_bias=False)

    def _era(self, mask_F, context: EraContext | None, deterministic: bool):
        """What is one per era: `(c_D, query_D, gate_F, gate_aux, keep_F)` (keep: mask and open gates)."""
        cfg = self.cfg
        mask_F = jnp.ones(self.n_features, bool) if mask_F is None else mask_F
        c_D, query_D = None, self.query_D
        if cfg.context:
            _need(context, "summary_LxF", "model.context=true")
            c_D = self.context(context.summary_LxF, context.summary_mask_L)
            query_D = query_D + self.context_query(c_D)
        if cfg.gates == "context":
            _need(context, "evidence_FxV", "model.gates=context")
            gate_F, gate_aux = self.gates(context.evidence_FxV, deterministic=deterministic)
        else:
            gate_F, gate_aux = self.gates(deterministic=deterministic)
        return c_D, query_D, gate_F, gate_aux, mask_F & (gate_F > 0)

    def era_tables(self, mask_F=None, context: EraContext | None = None) -> dict:
        """The per-(feature, bin) tables one era's binned prediction reads, for `dynjax export`:
        `logit_HxFxB`, `gate_F`, `keep_F` and `beta_FxB` (and `pair_PxBB` with screened pairs); with
        `backbone="none"` and softmax they are the whole model (pred = 0.5 + n_kept * sum_f att_rf *
        gate_f * beta[f, x_rf], plus the pair terms)."""
        c_D, query_D, gate_F, _, keep_F = self._era(mask_F, context, True)
        tok_FxBxD = self.token_grn(self.embed.table().astype(self.token_grn.dtype), c_D, deterministic=True)
        beta_FxB = self.additive.variables["params"]["beta"] if self.cfg.additive else jnp.zeros(tok_FxBxD.shape[:2])
        tables = {"logit_HxFxB": self.attention.logits(tok_FxBxD, query_D), "gate_F": gate_F, "keep_F": keep_F,
                  "beta_FxB": beta_FxB}
        if self.cfg.pair_index:  # GA2M's pair terms: sum_p u_rf u_rg table[p, x_rf * B + x_rg], u = n_kept * att * gate
            tables["pair_PxBB"] = self.pairs.variables["params"]["table"]
        return tables

    def __call__(self, x_RxF, mask_F=None, context: EraContext | None = None, *, deterministic: bool = True):
        cfg = self.cfg
        c_D, query_D, gate_F, gate_aux, mask_F = self._era(mask_F, context, deterministic)
        xf_RxF = float_view(x_RxF) if cfg.inputs == "float" else None
        if cfg.inputs == "float":
            tok_RxFxD = self.token_grn(self.embed.floats(xf_RxF), c_D, deterministic=deterministic)
            h_RxD, att_RxF = self.attention.per_row(tok_RxFxD, query_D, mask_F, gate_F)
        elif cfg.tabulate:
            tok_FxBxD = self.token_grn(self.embed.table().astype(self.token_grn.dtype), c_D, deterministic=deterministic)
            h_RxD, att_RxF = self.attention.tabulated(tok_FxBxD, query_D, x_RxF, mask_F, gate_F)
        else:
            emb_RxFxD = self.embed.table()[jnp.arange(self.n_features), x_RxF.astype(jnp.int32)]
            tok_RxFxD = self.token_grn(emb_RxFxD, c_D, deterministic=deterministic)
            h_RxD, att_RxF = self.attention.per_row(tok_RxFxD, query_D, mask_F, gate_F)
        weight_RxF = att_RxF * gate_F
        n_kept = mask_F.sum().astype(jnp.float32)
        x_in = x_RxF if xf_RxF is None else xf_RxF  # what the per-feature tables read: bins or floats
        if cfg.backbone == "grn":
            pred_KxR = self.head(self.out_grn(h_RxD, c_D, deterministic=deterministic).astype(jnp.float32))[None, :, 0]
        elif cfg.backbone == "tabm":
            if cfg.tabm_inputs == "features":
                h_RxI = self.feature_inputs(x_in, weight_RxF * n_kept)
                h_RxI = jnp.concatenate([h_RxI, jnp.broadcast_to(c_D, (len(h_RxI), cfg.d_model))], axis=1) if cfg.context else h_RxI
            else:
                h_RxI = self.norm(h_RxD) + (self.context_in(c_D) if cfg.context else 0.0)
            pred_KxR = 0.5 + self.tabm(h_RxI, deterministic=deterministic)
        else:
            pred_KxR = jnp.full((1, x_RxF.shape[0]), 0.5)
        if cfg.additive:
            pred_KxR = pred_KxR + self.additive(x_in, weight_RxF, n_kept)
        if cfg.pairwise:
            pred_KxR = pred_KxR + self.pairwise(x_in, weight_RxF, n_kept)
        if cfg.pair_index:
            pred_KxR = pred_KxR + self.pairs(x_RxF, weight_RxF, n_kept)
        aux = {"att_RxF": att_RxF, "weight_RxF": weight_RxF, "gate_F": gate_F, "gate_aux": gate_aux, "pred_KxR": pred_KxR}
        return pred_KxR.mean(axis=0), aux


def _need(context: EraContext | None, field: str, why: str) -> None:
    if context is None or getattr(context, field) is None:
        raise ValueError(f"{why} needs the era context's {field}")
