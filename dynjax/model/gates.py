"""Per-feature gates for the L1 and expected-L0 sparsity penalties.

`l1`: a learned non-negative scale per feature (|w_f|), penalised by its mean.
`l0`: hard-concrete gates (Louizos, Welling & Kingma 2018): stretched, clipped, reparameterised
binary-concrete samples in training, their deterministic value at evaluation, and a
closed-form expected number of non-zero gates.
`context`: hard-concrete gates whose logits a small network computes, per era, from each
feature's evidence in resolved eras (`dynjax.data.evidence`): input-dependent gating with
a sparsity objective, after Dynamos. One network is shared by all features, so it learns
"how much evidence earns a feature its place", not which features are good, and carries
over to feature sets and widths it has not seen.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from dynjax.config import GATES

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1  # the paper's temperature and stretch


def hard_concrete_sample(log_alpha_F: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """Gates in [0, 1] with exact zeros and ones; differentiable in log_alpha."""
    u = jax.random.uniform(key, log_alpha_F.shape, minval=1e-6, maxval=1 - 1e-6)
    s = nn.sigmoid((jnp.log(u) - jnp.log1p(-u) + log_alpha_F) / BETA)
    return jnp.clip(s * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def hard_concrete_mean(log_alpha_F: jnp.ndarray) -> jnp.ndarray:
    """Deterministic gates for evaluation."""
    return jnp.clip(nn.sigmoid(log_alpha_F) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def expected_l0(log_alpha_F: jnp.ndarray) -> jnp.ndarray:
    """Expected number of non-zero gates: sum_f P(z_f > 0)."""
    return nn.sigmoid(log_alpha_F - BETA * jnp.log(-GAMMA / ZETA)).sum()


class FeatureGates(nn.Module):
    """Gates z_F that scale each feature's contribution; all ones for `kind="none"`."""

    n_features: int
    kind: str = "none"
    init_log_alpha: float = 2.0  # P(gate open) ~ 0.95 at start

    @nn.compact
    def __call__(self, *, deterministic: bool = True) -> tuple[jnp.ndarray, dict]:
        if self.kind == "none":
            return jnp.ones(self.n_features), {}
        if self.kind == "l1":
            w_F = self.param("scale", nn.initializers.ones, (self.n_features,))
            return jnp.abs(w_F), {"l1": jnp.abs(w_F).mean()}
        if self.kind == "l0":
            log_alpha_F = self.param("log_alpha", nn.initializers.constant(self.init_log_alpha), (self.n_features,))
            z_F = hard_concrete_mean(log_alpha_F) if deterministic else hard_concrete_sample(log_alpha_F, self.make_rng("gates"))
            return z_F, {"expected_l0": expected_l0(log_alpha_F)}
        raise ValueError(f"unknown gate kind {self.kind!r}; choose from {GATES}")


class ContextGates(nn.Module):
    """Per-era gates z_F from per-feature evidence `[F, V]` of resolved eras.

    log_alpha_f = s * (sum_c w_c e_fc - asinh(threshold)) + bound * tanh(MLP(e_f))

    a monotone rule (w = softmax over the V horizons: which horizons to trust; s > 0 its
    sharpness) around a fixed evidence threshold, plus a learned correction bounded to
    +-`bound` log-odds. The threshold is not learned: a sparsity penalty that could move it
    would shut every gate once the task loss stops pushing back (a shut gate passes no
    gradient), which is how free hard-concrete gates collapse on noisy targets. Evidence is
    asinh of a z-score (`dynjax.data.evidence`), so the threshold means the same significance
    at any width, row count or noise level. It is held as a param that no gradient moves
    (`threshold`, excluded from weight decay), so the members of an ensemble may each have
    their own (`model.gate_thresholds`); a very low one (e.g. -1000) keeps every gate open.
    """

    hidden: int = 16
    threshold: float = 5.0  # z-score at which a gate is half open
    sharpness: float = 4.0  # initial log_alpha per unit of evidence
    bound: float = 2.0  # largest correction, in log-odds

    @nn.compact
    def __call__(self, evidence_FxV: jnp.ndarray, *, deterministic: bool = True) -> tuple[jnp.ndarray, dict]:
        n_channels = evidence_FxV.shape[-1]
        w_V = nn.softmax(self.param("horizons", nn.initializers.zeros, (n_channels,)))
        s = nn.softplus(self.param("sharpness", nn.initializers.constant(math.log(math.expm1(self.sharpness))), ()))
        h_FxH = nn.elu(nn.Dense(self.hidden, name="hidden")(evidence_FxV))
        correction_F = self.bound * jnp.tanh(nn.Dense(1, kernel_init=nn.initializers.zeros, name="correction")(h_FxH)[:, 0])
        threshold = jax.lax.stop_gradient(self.param("threshold", nn.initializers.constant(self.threshold), ()))
        log_alpha_F = s * (evidence_FxV @ w_V - jnp.arcsinh(threshold)) + correction_F
        z_F = hard_concrete_mean(log_alpha_F) if deterministic else hard_concrete_sample(log_alpha_F, self.make_rng("gates"))
        return z_F, {"expected_l0": expected_l0(log_alpha_F)}
