"""Covers dynjax.model.heads: the additive head (a GAM of the bins under the attention weights) inside
the model, and its prior; the pair tables are covered with the screen in tests/test_pairs.py."""

import jax
import jax.numpy as jnp
import numpy as np

from dynjax.config import LossConfig, ModelConfig
from dynjax.data.bins import N_BINS
from dynjax.model import FeatureAttentionModel
from dynjax.model.heads import AdditiveHead
from dynjax.model.losses import additive_prior

R, F, D = 6, 5, 8


def test_additive_head_is_a_table_per_feature_and_bin_under_the_weights():
    head = AdditiveHead(F)
    x_RxF = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    w_RxF = jnp.full((R, F), 1.0 / F)
    params = head.init(jax.random.key(1), x_RxF, w_RxF, jnp.float32(F))
    beta_FxB = jax.random.normal(jax.random.key(2), (F, N_BINS))
    out_R = head.apply({"params": {"beta": beta_FxB}}, x_RxF, w_RxF, jnp.float32(F))
    expected_R = beta_FxB[jnp.arange(F), x_RxF.astype(jnp.int32)].sum(axis=1)  # uniform weights: a plain GAM
    np.testing.assert_allclose(out_R, expected_R, rtol=1e-5)
    assert (params["params"]["beta"] == 0).all()  # starts at zero: the model predicts 0.5 until it learns
    # A feature with zero weight (masked, gate shut) adds nothing, whatever its table says.
    w_RxF = w_RxF.at[:, 0].set(0.0)
    dropped_R = head.apply({"params": {"beta": beta_FxB}}, x_RxF, w_RxF, jnp.float32(F))
    np.testing.assert_allclose(dropped_R, expected_R - beta_FxB[0, x_RxF[:, 0].astype(jnp.int32)], rtol=1e-5, atol=1e-6)


def test_the_model_is_the_additive_head_under_the_attention_and_the_prior_is_a_ridges():
    model = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, gates="none"), F)
    x_RxF = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    params = model.init(jax.random.key(1), x_RxF)
    pred_R, _ = model.apply(params, x_RxF)
    np.testing.assert_allclose(pred_R, 0.5, atol=1e-7)  # zero tables: the target's centre
    beta = params["params"]["additive"]["beta"]
    shifted = jax.tree.map(lambda a: a, params)
    shifted["params"]["additive"]["beta"] = beta.at[:, :].add(0.1)  # +0.1 on every cell: +0.1 * n_kept * sum_f w = +0.1 * F
    np.testing.assert_allclose(model.apply(shifted, x_RxF)[0] - pred_R, 0.1 * F, rtol=1e-4)
    beta_FxB = jnp.arange(F * N_BINS, dtype=jnp.float32).reshape(F, N_BINS)
    with_beta = {"params": {**params["params"], "additive": {"beta": beta_FxB}}}
    cfg = LossConfig(additive_l2=2.0, additive_smooth=3.0, prior_rows=4)
    smooth = (np.diff(np.asarray(beta_FxB)[:, :N_BINS - 1], axis=1) ** 2).sum()  # value bins only: not into the missing bin
    np.testing.assert_allclose(additive_prior(with_beta, cfg), (2.0 * (beta_FxB**2).sum() + 3.0 * smooth) / 4, rtol=1e-6)
    assert float(additive_prior(with_beta, LossConfig(prior_rows=0))) == 0.0  # unresolved: off
