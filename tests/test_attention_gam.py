"""Covers dynjax.model.attention_gam: the whole model in every configuration against its per-row
formula, jit, masking, gates, the era context, bfloat16."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.config import ModelConfig
from dynjax.data import N_BINS
from dynjax.data.context import EraContext
from dynjax.model import FeatureAttentionModel
from dynjax.model.attention import head_mean, masked_logits
from dynjax.model.normalizers import get_normalizer

F, R = 11, 16
SMALL = {"d_model": 8, "n_heads": 2, "gates": "none"}  # the plain attention model; context gates have their own test
X = jax.random.randint(jax.random.key(0), (R, F), 0, N_BINS).astype(jnp.int8)


def _init(cfg):
    model = FeatureAttentionModel(cfg, F)
    params = model.init({"params": jax.random.key(2), "gates": jax.random.key(3)}, X, None, None)
    return model, params, None


@pytest.mark.parametrize("normalizer", ["softmax", "sparsemax", "entmax15"])
@pytest.mark.parametrize("kw", [{}, {"gates": "l0"}, {"gates": "l1"}])
def test_shapes_and_finiteness(normalizer, kw):
    model, params, ctx = _init(ModelConfig(**{**SMALL, "normalizer": normalizer, **kw}))
    pred, aux = model.apply(params, X, None, ctx)
    chex.assert_shape((pred, aux["att_RxF"], aux["weight_RxF"], aux["gate_F"]), ((R,), (R, F), (R, F), (F,)))
    chex.assert_tree_all_finite((pred, aux["att_RxF"]))
    np.testing.assert_allclose(aux["att_RxF"].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("normalizer", ["softmax", "entmax15"])
def test_the_model_is_its_formula_per_row(normalizer):
    """pred_r = 0.5 + n_kept * sum_f w_rf beta[f, x_rf], w = mean_h norm(logit[h, f, x_rf]) * gate, from the era's
    tables (`era_tables`, what the upload pickle reads) applied row by row in numpy."""
    model, params, _ = _init(ModelConfig(**SMALL, normalizer=normalizer))
    p = params["params"]
    p["additive"]["beta"] = jax.random.normal(jax.random.key(3), p["additive"]["beta"].shape)
    p["query"] = jax.random.normal(jax.random.key(4), p["query"].shape)
    mask_F = jnp.arange(F) != 2
    tables = model.apply(params, mask_F, method="era_tables")
    x = np.asarray(X, np.int64)
    logit_HxRxF = np.asarray(tables["logit_HxFxB"])[:, np.arange(F), x]
    norm = get_normalizer(normalizer)
    att_RxF = np.mean([np.asarray(norm(masked_logits(jnp.asarray(lg), mask_F))) for lg in logit_HxRxF], axis=0)
    w_RxF = att_RxF * np.asarray(tables["gate_F"])
    want_R = 0.5 + mask_F.sum() * (w_RxF * np.asarray(tables["beta_FxB"])[np.arange(F), x]).sum(axis=1)
    np.testing.assert_allclose(model.apply(params, X, mask_F)[0], want_R, rtol=1e-5, atol=1e-6)


def test_the_softmax_models_table_sums_give_the_per_row_models_values_and_gradients():
    """With softmax the prediction is two table sums per head (no row weights formed); against the
    per-row model in jnp (weights normalised per row, then the additive head and a pair), values and
    gradients agree, with row weights asked for or left out."""
    model = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, gates="l1", pairs=1, pair_index=(1, 6)), F)
    context = None
    params = model.init({"params": jax.random.key(2), "gates": jax.random.key(3)}, X, None, context)
    leaves, tree = jax.tree.flatten(params)
    params = jax.tree.unflatten(tree, [a + 0.3 * jax.random.normal(jax.random.key(i), a.shape) for i, a in enumerate(leaves)])
    mask_F = jnp.arange(F) != 2
    y_R = jax.random.uniform(jax.random.key(9), (R,))

    def per_row(p):
        t = model.apply(p, mask_F, context, method="era_tables")
        logit_HxRxF = t["logit_HxFxB"][:, jnp.arange(F), X.astype(jnp.int32)]
        att_RxF = head_mean(jax.nn.softmax(masked_logits(logit_HxRxF, t["keep_F"]), axis=-1))
        u_RxF = t["keep_F"].sum() * att_RxF * t["gate_F"]
        pair_R = u_RxF[:, 1] * u_RxF[:, 6] * t["pair_PxBB"][0, X[:, 1].astype(jnp.int32) * N_BINS + X[:, 6]]
        return 0.5 + (u_RxF * t["beta_FxB"][jnp.arange(F), X.astype(jnp.int32)]).sum(axis=1) + pair_R

    loss = lambda pred_R: ((pred_R - y_R) ** 2).sum()
    gate_F = model.apply(params, X, mask_F, context)[1]["gate_F"]
    assert float(jnp.abs(gate_F[jnp.array([1, 6])] - 1).min()) > 0.1  # gates that scale the pair's weights
    want_R, want_grad = jax.value_and_grad(lambda p: loss(per_row(p)))(params)
    for rows in (True, False):
        pred = lambda p, rows=rows: model.apply(p, X, mask_F, context, row_weights=rows)[0]
        np.testing.assert_allclose(pred(params), per_row(params), rtol=1e-5, atol=1e-6)
        got, grad = jax.value_and_grad(lambda p, pred=pred: loss(pred(p)))(params)
        np.testing.assert_allclose(got, want_R, rtol=1e-5)
        chex.assert_trees_all_close(grad, want_grad, rtol=2e-4, atol=1e-5)  # some gradients are at rounding level
    _, aux = model.apply(params, X, mask_F, context, row_weights=False)
    assert "att_RxF" not in aux and "weight_RxF" not in aux


def test_jit_and_no_jit_agree():
    model, params, ctx = _init(ModelConfig(**SMALL, normalizer="sparsemax"))
    eager = model.apply(params, X, None, ctx)[0]
    jitted = jax.jit(model.apply)(params, X, None, ctx)[0]
    np.testing.assert_allclose(eager, jitted, atol=1e-5)


def test_unselected_features_have_zero_weight_and_zero_gradient():
    model, params, _ = _init(ModelConfig(**SMALL))
    # The additive path and the query start at zero, which would leave the embeddings without a gradient at all.
    p = params["params"]
    p["additive"]["beta"] = jax.random.normal(jax.random.key(3), p["additive"]["beta"].shape)
    p["query"] = jax.random.normal(jax.random.key(4), p["query"].shape)
    mask = jnp.arange(F) >= 4

    def loss(p):
        pred, aux = model.apply(p, X, mask)
        return (pred**2).sum(), aux

    (_, aux), grads = jax.value_and_grad(loss, has_aux=True)(params)
    assert bool((aux["att_RxF"][:, ~mask] == 0).all())
    g_emb = grads["params"]["embed"]["emb"]
    assert bool((g_emb[:4] == 0).all()) and float(jnp.abs(g_emb[4:]).sum()) > 0
    # Changing an unselected feature's values changes nothing.
    np.testing.assert_allclose(model.apply(params, X.at[:, 0].set(0), mask)[0], model.apply(params, X, mask)[0], atol=1e-6)


def test_stochastic_gates_need_a_key_and_give_exact_zeros_in_weights():
    model, params, _ = _init(ModelConfig(**{**SMALL, "gates": "l0"}))
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: jnp.where(jnp.arange(F) < 3, -20.0, 20.0) if "log_alpha" in str(path) else v, params)
    _, aux = model.apply(params, X, deterministic=False, rngs={"gates": jax.random.key(5)})
    assert bool((aux["weight_RxF"][:, :3] == 0).all()) and bool((aux["weight_RxF"][:, 3:] > 0).all())


def test_bad_model_config():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        ModelConfig(d_model=10, n_heads=4)


@pytest.mark.parametrize("normalizer", ["softmax", "entmax15"])
def test_context_gates_drop_features_exactly_and_an_all_shut_era_is_finite(normalizer):
    cfg = ModelConfig(d_model=8, n_heads=2, normalizer=normalizer, gates="context", evidence_eras=(4, 16), gate_thresholds=(5.0,))
    model = FeatureAttentionModel(cfg, F)
    strong = jnp.where(jnp.arange(F) < 4, 5.0, 0.0)[:, None] * jnp.ones((1, 2))  # asinh(z) ~ 5 for features 0..3
    params = model.init({"params": jax.random.key(2), "gates": jax.random.key(3)}, X, None, EraContext(evidence_FxV=strong))

    def loss(p, evidence):
        pred, aux = model.apply(p, X, None, EraContext(evidence_FxV=evidence))
        return (pred**2).sum(), aux

    (_, aux), grads = jax.value_and_grad(loss, has_aux=True)(params, strong)
    assert bool((aux["weight_RxF"][:, 4:] == 0).all()) and bool((aux["weight_RxF"][:, :4] > 0).any())
    assert bool((grads["params"]["embed"]["emb"][4:] == 0).all())
    (value, aux), grads = jax.value_and_grad(loss, has_aux=True)(params, jnp.zeros((F, 2)))  # no evidence at all
    assert bool((aux["weight_RxF"] == 0).all())
    chex.assert_tree_all_finite((value, grads))
    with pytest.raises(ValueError, match="evidence_FxV"):
        model.apply(params, X)


def test_bfloat16_keeps_float32_params_and_predicts_close_to_float32():
    """model.dtype=bfloat16: tables and matmuls in bfloat16, params, optimiser state, outputs and
    attention weights float32; predictions close to the float32 model's on the same params."""
    from dynjax.config import OptimConfig
    from dynjax.train.state import create_train_state, make_optimizer

    x_RxF = np.random.default_rng(0).integers(0, 6, (64, 40)).astype(np.int8)
    models = {d: FeatureAttentionModel(ModelConfig(d_model=16, n_heads=2, gates="none", dtype=d), 40)
              for d in ("float32", "bfloat16")}
    state = create_train_state(models["bfloat16"], make_optimizer(OptimConfig()), jax.random.key(0))
    assert {a.dtype for a in jax.tree.leaves((state.params, state.opt_state)) if a.dtype != jnp.int32} == {jnp.dtype("float32")}
    # Params as after some training: at init the query is zero (uniform attention) and the additive table too.
    leaves, tree = jax.tree.flatten(state.params)
    noise = [0.05 * jax.random.normal(k, a.shape) for k, a in zip(jax.random.split(jax.random.key(1), len(leaves)), leaves)]
    params = jax.tree.unflatten(tree, [a + n for a, n in zip(leaves, noise)])
    out = {d: m.apply(params, x_RxF) for d, m in models.items()}
    (p32, aux32), (p16, aux16) = out["float32"], out["bfloat16"]
    assert p16.dtype == aux16["att_RxF"].dtype == jnp.float32
    np.testing.assert_allclose(aux16["att_RxF"].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p16, p32, rtol=1e-2, atol=5e-3)  # bfloat16: 8 mantissa bits, ~0.4% per op
    assert np.corrcoef(aux16["att_RxF"].ravel(), aux32["att_RxF"].ravel())[0, 1] > 0.99
    assert not np.array_equal(p16, p32)  # the bfloat16 path did run
