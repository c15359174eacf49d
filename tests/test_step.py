"""Covers dynjax.train.step: vmapped window == loop over eras, the one step factory (no recompiles,
learning, vmapped members == separate steps, host rows == device-resident rows), predict."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.config import LossConfig, ModelConfig, OptimConfig
from dynjax.data import load_numerai, sample_window, sliding_windows, window_rng
from dynjax.data.resident import Resident
from dynjax.data.windows import era_rows, sample_eras
from dynjax.model import FeatureAttentionModel, era_loss
from dynjax.model.losses import additive_prior
from dynjax.train import BatchSpec, make_optimizer, make_predict, make_step
from dynjax.train.sharding import make_layout
from dynjax.train.state import create_train_state, member_keys, train_state_init
from dynjax.train.step import make_window_loss, member_step
from tests.conftest import off_zero_init

W, R = 3, 16


@pytest.fixture(scope="module")
def setup(synth_dir):
    train = load_numerai(synth_dir).train
    n_features = train.x_NxF.shape[1]
    model = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, normalizer="entmax15", gates="none"), n_features)
    optimizer = make_optimizer(OPTIM)
    windows = sliding_windows(np.arange(train.index.n_eras), W)
    batches = [sample_window(train, w, R, window_rng(0, i)) for i, w in enumerate(windows)]
    return train, model, optimizer, batches, jnp.ones(n_features, bool)


OPTIM = OptimConfig(learning_rate=1e-2, warmup_steps=0, decay_steps=100)
SPEC = BatchSpec(windows=(W,), rows=R)


def _members(model, n: int):
    """`n` stacked fresh member states (member 0 the single model's), on the step's shardings as a run places them."""
    states = jax.vmap(train_state_init(model, make_optimizer(OPTIM)))(member_keys(jax.random.key(0), n))
    layout = make_layout("", model.n_features)
    return layout.put(states, layout.train_shardings(states))


def _step(model, n: int = 1, spec: BatchSpec = SPEC):
    return make_step(model, LossConfig(sparsity="none"), OPTIM, make_layout("", model.n_features), n, spec)


def test_vmapped_window_loss_equals_a_loop_over_eras(setup):
    _, model, optimizer, batches, all_F = setup
    params = create_train_state(model, optimizer, jax.random.key(0)).params
    cfg = LossConfig(corr_weight=0.5, sparsity="entropy", sparsity_lambda=0.01)
    mask_WxR = batches[0].mask_WxR.copy()
    mask_WxR[1, 10:] = False  # eras of different sizes
    batch = batches[0].replace(mask_WxR=mask_WxR)

    def loop_loss(params):
        totals = []
        for e in range(W):
            pred, aux = model.apply(params, batch.x_WxRxF[e], all_F)
            totals.append(era_loss(pred, batch.y_WxR[e], batch.mask_WxR[e], aux, cfg)[0])
        return jnp.mean(jnp.stack(totals))

    window_loss = lambda p: make_window_loss(model, cfg)(p, batch, all_F, jax.random.key(1))[0]
    vmapped, looped = (jax.jit(jax.value_and_grad(f)) for f in (window_loss, loop_loss))
    (loss_v, grad_v), (loss_l, grad_l) = vmapped(params), looped(params)
    np.testing.assert_allclose(loss_v, loss_l, rtol=1e-5)
    chex.assert_trees_all_close(grad_v, grad_l, rtol=1e-4, atol=1e-6)


def test_window_loss_adds_the_additive_prior_once_per_step(setup):
    _, model, optimizer, batches, all_F = setup
    params = create_train_state(model, optimizer, jax.random.key(0)).params
    beta = jax.random.normal(jax.random.key(2), params["params"]["additive"]["beta"].shape)
    params = {"params": {**params["params"], "additive": {"beta": beta}}}
    on = LossConfig(sparsity="none", additive_l2=50.0, additive_smooth=200.0, prior_rows=100)
    off = dataclasses.replace(on, additive_l2=0.0, additive_smooth=0.0)
    (loss_on, terms), (loss_off, _) = (make_window_loss(model, c)(params, batches[0], all_F, jax.random.key(1)) for c in (on, off))
    prior = float(additive_prior(params, on))
    assert prior > 0.1 and float(terms["prior"]) == pytest.approx(prior)
    assert float(loss_on) == pytest.approx(float(loss_off) + prior, rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(float(loss_on), rel=1e-5)


def test_no_recompiles_across_steps_and_windows(setup):
    _, model, _, batches, all_F = setup
    step, states = _step(model), _members(model, 1)
    for i, batch in enumerate(batches[:4]):
        mask = all_F.at[i].set(False)  # a new selection mask is data, not a new program
        states, _ = step(states, batch, mask, jax.random.key(1), None)
    assert int(states.step[0]) == 4 and step._cache_size() == 1


def test_a_batch_the_step_was_not_built_for_is_refused(setup):
    _, model, _, batches, all_F = setup
    per_member = jax.tree.map(lambda a: np.stack([a, a]), batches[0])  # one window per member
    with pytest.raises(ValueError, match="no leading member axis"):
        _step(model, 2)(_members(model, 2), per_member, all_F, jax.random.key(1), None)
    with pytest.raises(ValueError, match="row numbers"):
        _step(model, 2, dataclasses.replace(SPEC, resident=True))(_members(model, 2), batches[0], all_F,
                                                                 jax.random.key(1), None)


def test_steps_reduce_the_loss_on_a_fixed_window(setup):
    _, model, _, batches, all_F = setup
    step, states = _step(model), _members(model, 1)
    losses = []
    for _ in range(30):
        states, metrics = step(states, batches[0], all_F, jax.random.key(1), None)
        chex.assert_tree_all_finite(metrics)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.8 * losses[0]
    assert {"loss", "mse", "corr", "sparsity", "n_features", "grad_norm"} <= set(metrics)


def test_device_resident_rows_train_and_predict_as_host_rows(setup):
    """The same draws as row numbers (padding -1) gathered inside the jit: the same updates and
    predictions, to float32 rounding (XLA may order a reduction differently when the rows are a
    gather's output rather than an input; under the default codegen they are bit-identical, as
    the main job's predictions are: benchmarks/README.md). Adam turns rounding into a few 1e-6
    on a param whose gradient is ~0; a wrong row would move params by ~1e-2."""
    train, model, _, _, all_F = setup
    resident = Resident(x_NxF=jnp.asarray(train.x_NxF), y_N=jnp.asarray(np.nan_to_num(train.y_NxT[:, 0])))
    eras = [(train, e) for e in range(W)]
    rows_per_era = int(train.index.n_labeled[:W].max()) + 3  # more than an era holds: padded rows
    host_b = sample_window(train, np.arange(W), rows_per_era, window_rng(0, 9))
    device_b = sample_eras(eras, rows_per_era, window_rng(0, 9), offsets=[0] * W)
    assert device_b.x_WxRxF is None and (device_b.rows_WxR == -1).any()
    spec = BatchSpec(windows=(W,), rows=rows_per_era)
    host, device = _step(model, 2, spec), _step(model, 2, dataclasses.replace(spec, resident=True))
    a, b = _members(model, 2), _members(model, 2)
    for k in range(3):
        a, _ = host(a, host_b, all_F, jax.random.key(k), None)
        b, _ = device(b, device_b, all_F, jax.random.key(k), resident)
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-4, atol=1e-4)
    rows_R = np.full(64, -1, np.int32)
    rows_R[:40] = era_rows(train, 1, 40, window_rng(0, 1))
    x_RxF = np.zeros((64, train.x_NxF.shape[1]), np.int8)
    x_RxF[:40] = train.x_NxF[rows_R[:40]]
    layout = make_layout("", model.n_features)
    on_host = make_predict(model, layout, 2)(a.ema_params, x_RxF, rows_R >= 0, all_F, None, None)
    on_device = make_predict(model, layout, 2, resident=True)(b.ema_params, rows_R, rows_R >= 0, all_F, None, resident)
    chex.assert_trees_all_close(on_host, on_device, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("normalizer", ["softmax", "entmax15"])
def test_predict_sums_the_valid_rows_weights_and_masks_features(setup, normalizer):
    train, model, _, _, all_F = setup
    model = model.clone(cfg=ModelConfig(d_model=8, n_heads=2, normalizer=normalizer, gates="none"))
    params = _members(model, 1).params
    params["params"]["query"] = jax.random.normal(jax.random.key(4), params["params"]["query"].shape)  # weights not uniform
    predict = make_predict(model, make_layout("", model.n_features), 1)
    mask, valid_R = all_F.at[:5].set(False), np.arange(20) % 3 != 0
    pred, weight_sum, gate = predict(params, train.x_NxF[:20], valid_R, mask, None, None)
    chex.assert_shape((pred, weight_sum, gate), ((1, 20), (1, all_F.shape[0]), (1, all_F.shape[0])))
    want_R, aux = model.apply(jax.tree.map(lambda a: a[0], params), train.x_NxF[:20], mask)
    np.testing.assert_allclose(pred[0], want_R, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weight_sum[0], aux["weight_RxF"][valid_R].sum(axis=0), rtol=1e-5, atol=1e-6)
    assert bool((weight_sum[:, :5] == 0).all()) and float(weight_sum[0].std()) > 1e-4


@pytest.mark.parametrize("normalizer", ["softmax", "entmax15"])
def test_a_population_step_vmapped_over_model_states_equals_separate_steps(setup, normalizer):
    _, model, optimizer, batches, all_F = setup
    model = model.clone(cfg=ModelConfig(d_model=8, n_heads=2, normalizer=normalizer, gates="none"))
    keys = jax.random.split(jax.random.key(0), 3)
    pure = member_step(model, LossConfig(sparsity="none"), OPTIM)

    state = lambda k: off_zero_init(create_train_state(model, optimizer, k))
    population = jax.vmap(state)(keys)
    population, _ = jax.jit(jax.vmap(pure, in_axes=(0, None, None, None)))(population, batches[0], all_F, jax.random.key(1))
    single = jax.jit(pure)
    for i, k in enumerate(keys):
        alone, _ = single(state(k), batches[0], all_F, jax.random.key(1))
        # atol 1e-5: Adam's first step divides by |g| + eps, so a parameter whose gradient is at rounding
        # level moves by a few 1e-6 either way.
        chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], population.params), alone.params, rtol=1e-5, atol=1e-5)
