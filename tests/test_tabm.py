"""Covers dynjax.model.tabm: TabM's BatchEnsemble members and the additive path, inside the model."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from dynjax.config import LossConfig, ModelConfig
from dynjax.data.bins import N_BINS
from dynjax.model import FeatureAttentionModel
from dynjax.model.losses import additive_prior
from dynjax.model.tabm import (
    AdditiveHead,
    BatchEnsembleMLP,
    FeatureCodes,
    PairwiseHead,
    random_signs,
)

R, F, D = 6, 5, 8


def test_members_share_weights_but_not_adapters():
    mlp = BatchEnsembleMLP(k=3, hidden=4, n_blocks=2)
    h_RxD = jax.random.normal(jax.random.key(0), (R, D))
    params = mlp.init(jax.random.key(1), h_RxD)
    pred_KxR = mlp.apply(params, h_RxD)
    chex.assert_shape(pred_KxR, (3, R))
    chex.assert_tree_all_finite(pred_KxR)
    p = params["params"]
    assert p["w0"].shape == (D, 4) and p["w1"].shape == (4, 4)  # one weight matrix per layer for all members
    assert set(np.unique(p["r0"])) == {-1.0, 1.0} and (p["r1"] == 1).all()  # TabM's init of the adapters
    assert not np.allclose(pred_KxR[0], pred_KxR[1])  # the members differ from the start
    # With equal adapters and heads the members collapse into one: the adapters are what makes them differ.
    same = jax.tree.map(lambda a: a, p)
    same = {**same, "r0": jnp.ones_like(p["r0"]), "head": jnp.broadcast_to(p["head"][:1], p["head"].shape)}
    collapsed = mlp.apply({"params": same}, h_RxD)
    np.testing.assert_allclose(collapsed[0], collapsed[2], rtol=1e-6)


def test_random_signs_are_signs():
    s = random_signs(jax.random.key(0), (100,))
    assert set(np.unique(s)) == {-1.0, 1.0} and 20 < (s > 0).sum() < 80


def test_additive_head_is_a_table_per_feature_and_bin_under_the_weights():
    head = AdditiveHead(F)
    x_RxF = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    w_RxF = jnp.full((R, F), 1.0 / F)
    params = head.init(jax.random.key(1), x_RxF, w_RxF, jnp.float32(F))
    beta_FxB = jax.random.normal(jax.random.key(2), (F, N_BINS))
    out_R = head.apply({"params": {"beta": beta_FxB}}, x_RxF, w_RxF, jnp.float32(F))
    expected_R = beta_FxB[jnp.arange(F), x_RxF.astype(jnp.int32)].sum(axis=1)  # uniform weights: a plain GAM
    np.testing.assert_allclose(out_R, expected_R, rtol=1e-5)
    assert (params["params"]["beta"] == 0).all()  # starts at zero: the MLP and the bias predict first
    # A feature with zero weight (masked, gate shut) adds nothing, whatever its table says.
    w_RxF = w_RxF.at[:, 0].set(0.0)
    dropped_R = head.apply({"params": {"beta": beta_FxB}}, x_RxF, w_RxF, jnp.float32(F))
    np.testing.assert_allclose(dropped_R, expected_R - beta_FxB[0, x_RxF[:, 0].astype(jnp.int32)], rtol=1e-5, atol=1e-6)


def test_model_prediction_is_the_mean_of_its_members_and_the_additive_path_is_in_it():
    cfg = ModelConfig(d_model=8, n_heads=2, gates="none", backbone="tabm", k_heads=3, hidden=8)
    model = FeatureAttentionModel(cfg, F)
    x_RxF = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    params = model.init(jax.random.key(1), x_RxF)
    pred_R, aux = model.apply(params, x_RxF)
    chex.assert_shape(aux["pred_KxR"], (3, R))
    np.testing.assert_allclose(pred_R, aux["pred_KxR"].mean(axis=0), rtol=1e-6)
    beta = params["params"]["additive"]["beta"]
    shifted = jax.tree.map(lambda a: a, params)
    shifted["params"]["additive"]["beta"] = beta.at[:, :].add(0.1)  # +0.1 on every cell: +0.1 * n_kept * sum_f w = +0.1 * F
    pred2_R, _ = model.apply(shifted, x_RxF)
    np.testing.assert_allclose(pred2_R - pred_R, 0.1 * F, rtol=1e-4)


def test_backbones_and_the_additive_switch():
    x_RxF = jnp.zeros((R, F), jnp.int8)
    assert ModelConfig().backbone == "none"  # the default: the additive path alone
    for backbone, additive in (("grn", False), ("grn", True), ("tabm", False), ("none", True)):
        model = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, gates="none", backbone=backbone, additive=additive), F)
        params = model.init(jax.random.key(0), x_RxF)
        pred_R, aux = model.apply(params, x_RxF)
        chex.assert_shape(pred_R, (R,))
        assert ("additive" in params["params"]) == additive
        assert aux["pred_KxR"].shape[0] == (ModelConfig().k_heads if backbone == "tabm" else 1)


def test_feature_codes_are_each_features_bin_code_times_its_weight():
    codes = FeatureCodes(F, dim=3)
    x_RxF = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    w_RxF = jax.random.uniform(jax.random.key(1), (R, F))
    params = codes.init(jax.random.key(2), x_RxF, w_RxF)
    code_FxBxE = params["params"]["code"]
    h_RxI = codes.apply(params, x_RxF, w_RxF)
    expected_RxFxE = code_FxBxE[jnp.arange(F), x_RxF.astype(jnp.int32)] * w_RxF[..., None]
    np.testing.assert_allclose(h_RxI, expected_RxFxE.reshape(R, F * 3), rtol=1e-6)


def test_the_mlp_reading_features_never_sees_a_masked_one():
    """`tabm_inputs=features`: a feature outside the mask changes nothing, whatever its values;
    inside the mask it does (the comparison can fail)."""
    cfg = ModelConfig(d_model=8, n_heads=2, gates="none", backbone="tabm", k_heads=2, hidden=8, tabm_inputs="features")
    model = FeatureAttentionModel(cfg, F)
    x_RxF = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    params = model.init(jax.random.key(1), x_RxF)
    assert "norm" not in params["params"] and params["params"]["feature_inputs"]["code"].shape == (F, N_BINS, 4)
    mask_F = jnp.arange(F) != 0
    changed_RxF = x_RxF.at[:, 0].set((x_RxF[:, 0] + 1) % N_BINS)
    pred_R, _ = model.apply(params, x_RxF, mask_F)
    np.testing.assert_array_equal(pred_R, model.apply(params, changed_RxF, mask_F)[0])
    assert not np.allclose(pred_R, model.apply(params, changed_RxF)[0])


def test_pairwise_head_is_the_sum_over_pairs_of_weighted_bin_vectors():
    """The O(F K) form equals the explicit double loop over feature pairs, and a zero-weight
    feature takes part in no pair."""
    head = PairwiseHead(F, rank=3)
    x_RxF = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    w_RxF = jax.nn.softmax(jax.random.normal(jax.random.key(1), (R, F)), axis=1).at[:, 2].set(0.0)
    params = head.init(jax.random.key(2), x_RxF, w_RxF, jnp.float32(F))
    v_FxBxK = jax.random.normal(jax.random.key(3), (F, N_BINS, 3))
    out_R = head.apply({"params": {"v": v_FxBxK}}, x_RxF, w_RxF, jnp.float32(F))
    u_RxFxK = np.asarray(v_FxBxK)[np.arange(F), np.asarray(x_RxF, np.int32)] * (F * np.asarray(w_RxF))[..., None]
    expected_R = sum((u_RxFxK[:, f] * u_RxFxK[:, g]).sum(1) for f in range(F) for g in range(f + 1, F))
    np.testing.assert_allclose(out_R, expected_R, rtol=1e-4, atol=1e-5)
    changed_RxF = x_RxF.at[:, 2].set((x_RxF[:, 2] + 1) % N_BINS)
    np.testing.assert_allclose(out_R, head.apply({"params": {"v": v_FxBxK}}, changed_RxF, w_RxF, jnp.float32(F)), rtol=1e-6)
    assert params["params"]["v"].shape == (F, N_BINS, 3) and 0 < float(jnp.abs(params["params"]["v"]).max()) < 0.1


def test_the_pairwise_term_adds_to_the_model_and_its_prior():
    x_RxF = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)
    plain = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, gates="none"), F)
    paired = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, gates="none", pairwise=2), F)
    params = paired.init(jax.random.key(1), x_RxF)
    assert params["params"]["pairwise"]["v"].shape == (F, N_BINS, 2)
    without = {"params": {k: v for k, v in params["params"].items() if k != "pairwise"}}
    assert not np.allclose(paired.apply(params, x_RxF)[0], plain.apply(without, x_RxF)[0])
    cfg = LossConfig(additive_l2=0.0, additive_smooth=0.0, pairwise_l2=2.0, prior_rows=4)
    np.testing.assert_allclose(additive_prior(params, cfg), 2.0 * (params["params"]["pairwise"]["v"] ** 2).sum() / 4, rtol=1e-6)
    assert float(additive_prior(without, cfg)) == 0.0
