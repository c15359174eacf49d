"""Covers dynjax.model.losses: masked MSE / Pearson, the combined loss and its separate terms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.config import LossConfig
from dynjax.model.losses import additive_prior, era_loss, masked_mse, masked_pearson


def test_masked_mse_and_pearson_ignore_padding():
    pred = jnp.array([0.1, 0.5, 0.9, 100.0])
    y = jnp.array([0.0, 0.5, 1.0, -100.0])
    mask = jnp.array([True, True, True, False])
    assert float(masked_mse(pred, y, mask)) == pytest.approx((0.01 + 0 + 0.01) / 3)
    assert float(masked_pearson(pred, y, mask)) == pytest.approx(np.corrcoef([0.1, 0.5, 0.9], [0, 0.5, 1])[0, 1], abs=1e-6)


def _aux(n_rows=4, n_feat=3):
    att = jnp.tile(jnp.array([0.5, 0.5, 0.0]), (n_rows, 1))
    return {"att_RxF": att, "weight_RxF": att, "gate_aux": {}, "keep_F": jnp.ones(att.shape[1], bool)}


def test_terms_are_separate_and_sum_to_total():
    pred, y, mask = jnp.array([0.2, 0.4, 0.6, 0.8]), jnp.array([0.0, 0.5, 0.5, 1.0]), jnp.ones(4, bool)
    cfg = LossConfig(mse_weight=1.0, corr_weight=0.5, sparsity="entropy", sparsity_lambda=0.1)
    total, t = era_loss(pred, y, mask, _aux(), cfg)
    assert float(total) == pytest.approx(float(t["mse"] + 0.5 * (1 - t["corr"]) + 0.1 * t["sparsity"]))
    assert float(t["sparsity"]) == pytest.approx(np.log(2)) and int(t["n_features"]) == 2


def test_zero_lambda_leaves_the_gradient_of_the_task_loss():
    y, mask = jnp.array([0.0, 0.5, 0.5, 1.0]), jnp.ones(4, bool)

    def grad(cfg):
        def loss(logits):
            att = jax.nn.softmax(jnp.tile(logits, (4, 1)))
            aux = {"att_RxF": att, "weight_RxF": att, "gate_aux": {}, "keep_F": jnp.ones(att.shape[1], bool)}
            return era_loss(att @ jnp.array([0.0, 0.5, 1.0]), y, mask, aux, cfg)[0]
        return jax.grad(loss)(jnp.array([0.3, 0.1, -0.2]))

    task = grad(LossConfig(sparsity="none"))
    np.testing.assert_allclose(grad(LossConfig(sparsity="entropy", sparsity_lambda=0.0)), task)
    assert not np.allclose(grad(LossConfig(sparsity="entropy", sparsity_lambda=1.0)), task)


def test_additive_prior_is_ridge_plus_smoothness_over_the_prior_rows():
    beta = jnp.array([[0.0, 1.0, 0.0, 0.0, 0.0, 7.0], [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]])
    params = {"params": {"additive": {"beta": beta}}}
    cfg = LossConfig(additive_l2=2.0, additive_smooth=3.0, prior_rows=10)
    # L2: 1 + 49 + 5; differences over value bins 0..4: (1, -1, 0, 0) and none (the missing bin 7 is no neighbour)
    assert float(additive_prior(params, cfg)) == pytest.approx((2.0 * 55 + 3.0 * 2) / 10)
    assert float(additive_prior(params, LossConfig(additive_l2=0.0, additive_smooth=3.0, prior_rows=10))) == pytest.approx(0.6)
    assert float(additive_prior(params, LossConfig(prior_rows=0))) == 0.0  # unresolved: off


def test_additive_prior_pulls_neighbouring_bins_together():
    beta = jnp.array([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    grad = jax.grad(lambda b: additive_prior({"params": {"additive": {"beta": b}}},
                                             LossConfig(additive_l2=0.0, additive_smooth=1.0, prior_rows=1)))(beta)
    np.testing.assert_allclose(grad, [[-2.0, 4.0, -2.0, 0.0, 0.0, 0.0]])
