"""Covers dynjax.data.pairs (GA2M's pair screen) and the pair tables it adds to the model: the
screen keeps a planted product and neither its echo nor a U-shape's, keeps nothing where nothing
interacts, and a kept pair's table enters the prediction under both attention weights and the prior."""

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
import pytest

from dynjax.config import LossConfig, ModelConfig, RunConfig, override
from dynjax.data import pairs as pairs_module
from dynjax.data.bins import MISSING, N_BINS, Imputer
from dynjax.data.eras import build_era_index
from dynjax.data.numerai import EraData
from dynjax.data.pairs import bonferroni_t, screen_pairs, screen_rows
from dynjax.model import FeatureAttentionModel
from dynjax.model.heads import PairTableHead
from dynjax.model.losses import additive_prior
from dynjax.upload.live import LiveModel

E, R, F = 40, 400, 8


def split_with(signal, seed: int = 0) -> EraData:
    """E eras of R rows, F uniform bins; feature 5 mostly copies feature 0 and 6 copies 2 (an echo each);
    the target is `signal(z)` (z: bins centred) plus noise, per era."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, (E * R, F)).astype(np.int8)
    for echo, of in ((5, 0), (6, 2)):
        copy = rng.random(E * R) < 0.8
        x[copy, echo] = x[copy, of]
    x[rng.random(x.shape) < 0.02] = MISSING
    z = np.where(x == MISSING, 0.0, x - 2.0)
    y = signal(z) + rng.standard_normal(E * R)
    era = np.repeat(np.arange(E), R)
    names = np.array([f"{e:04d}" for e in era])
    index = build_era_index(names, era + 1, np.ones(E * R, bool))
    return EraData(x, y[:, None].astype(np.float32), pl.Series("id", [str(i) for i in range(E * R)]), index,
                   tuple(f"feature_{f}" for f in range(F)), ("target",), "test")


def test_the_screen_keeps_a_product_and_neither_its_echo_nor_a_u_shape():
    # A product of features 0 and 1, a main effect of 3 and a U-shaped one of 2 (whose square its echo 6 shares).
    split = split_with(lambda z: 0.15 * z[:, 0] * z[:, 1] + 0.2 * z[:, 3] + 0.2 * (z[:, 2] ** 2 - 2))
    pairs, t = screen_pairs(split, np.arange(E), max_pairs=8, max_rows=R)
    assert pairs.tolist() == [[0, 1]] and abs(t[0]) > bonferroni_t(F * (F - 1) // 2, E)
    # The echo (5, 1) passes the per-pair screen (its product correlates too): the joint fit drops it.
    loose, _ = screen_pairs(split, np.arange(E), max_pairs=8, max_rows=R, bound=1.0)
    assert [0, 1] in loose.tolist() and [1, 5] not in loose.tolist() and [2, 6] not in loose.tolist()


def test_nothing_interacts_nothing_is_kept():
    split = split_with(lambda z: 0.2 * z[:, 0] - 0.2 * z[:, 3] + 0.2 * (z[:, 2] ** 2 - 2))
    assert screen_pairs(split, np.arange(E), max_pairs=8, max_rows=R)[0].shape == (0, 2)
    assert screen_pairs(split, np.arange(E), max_pairs=0, max_rows=R)[0].shape == (0, 2)  # off


def test_a_sampled_screen_reads_a_fixed_draw_of_each_era():
    split = split_with(lambda z: 0.15 * z[:, 0] * z[:, 1])
    first, t1 = screen_pairs(split, np.arange(E), max_pairs=8, max_rows=R // 2)
    again, t2 = screen_pairs(split, np.arange(E), max_pairs=8, max_rows=R // 2)
    assert first.tolist() == again.tolist() == [[0, 1]]
    np.testing.assert_array_equal(t1, t2)


def test_the_screen_reads_fewer_rows_an_era_where_its_bytes_would_pass_the_budget(monkeypatch):
    assert screen_rows(1000, 3555, 2048) == 2**30 // (1000 * 3555)  # Numerai's size: about 300 an era
    assert screen_rows(360, 300, 2048) == 2048  # the diffuse setting's: every row it asks for
    split = split_with(lambda z: 0.15 * z[:, 0] * z[:, 1])
    half, t_half = screen_pairs(split, np.arange(E), max_pairs=8, max_rows=R // 2)
    monkeypatch.setattr(pairs_module, "SCREEN_BYTES", E * (R // 2) * F)
    cut, t_cut = screen_pairs(split, np.arange(E), max_pairs=8, max_rows=R)
    assert cut.tolist() == half.tolist() == [[0, 1]]
    np.testing.assert_array_equal(t_cut, t_half)  # the same fixed draw of R / 2 rows an era


def test_a_pair_table_adds_its_cell_under_both_weights():
    x_RxF = jax.random.randint(jax.random.key(0), (6, 5), 0, N_BINS).astype(jnp.int8)
    w_RxF = jax.nn.softmax(jax.random.normal(jax.random.key(1), (6, 5)), axis=1)
    head = PairTableHead((0, 3, 1, 4))
    table_PxBB = jax.random.normal(jax.random.key(2), (2, N_BINS * N_BINS))
    pair_w = lambda w: (w[:, [0, 1]], w[:, [3, 4]])  # each pair's first and second feature's weights
    assert head.init(jax.random.key(3), x_RxF, *pair_w(w_RxF), jnp.float32(5))["params"]["table"].shape == (2, N_BINS * N_BINS)
    out_R = head.apply({"params": {"table": table_PxBB}}, x_RxF, *pair_w(w_RxF), jnp.float32(5))
    x, w, t = np.asarray(x_RxF, int), 5 * np.asarray(w_RxF), np.asarray(table_PxBB)
    expected_R = sum(w[:, f] * w[:, g] * t[p, x[:, f] * N_BINS + x[:, g]] for p, (f, g) in enumerate(((0, 3), (1, 4))))
    np.testing.assert_allclose(out_R, expected_R, rtol=1e-5)
    dropped = head.apply({"params": {"table": table_PxBB}}, x_RxF, *pair_w(w_RxF.at[:, 3].set(0.0)), jnp.float32(5))
    np.testing.assert_allclose(dropped, w[:, 1] * w[:, 4] * t[1, x[:, 1] * N_BINS + x[:, 4]], rtol=1e-5)


def test_the_model_starts_as_the_gam_and_the_tables_enter_the_prior():
    x_RxF = jax.random.randint(jax.random.key(0), (6, 5), 0, N_BINS).astype(jnp.int8)
    plain = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, gates="none"), 5)
    paired = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, gates="none", pairs=2, pair_index=(0, 3)), 5)
    params = paired.init(jax.random.key(1), x_RxF)
    without = {"params": {k: v for k, v in params["params"].items() if k != "pairs"}}
    np.testing.assert_array_equal(paired.apply(params, x_RxF)[0], plain.apply(without, x_RxF)[0])  # zero tables
    params["params"]["pairs"]["table"] = jnp.ones((1, N_BINS * N_BINS))
    assert not np.allclose(paired.apply(params, x_RxF)[0], plain.apply(without, x_RxF)[0])
    cfg = LossConfig(additive_l2=0.0, additive_smooth=0.0, pair_l2=2.0, prior_rows=4)
    np.testing.assert_allclose(additive_prior(params, cfg), 2.0 * N_BINS * N_BINS / 4, rtol=1e-6)


def test_pair_settings_are_checked():
    with pytest.raises(ValueError, match="at most model.pairs=1 pairs"):
        override(RunConfig(), ["model.pairs=1", "model.pair_index=0,1,2,3"])
    with pytest.raises(ValueError, match="pairs of feature numbers"):
        override(RunConfig(), ["model.pairs=2", "model.pair_index=0,1,2"])


def test_the_live_model_adds_the_pair_terms_the_model_does():
    """The upload pickle's numpy arithmetic (`LiveModel`) against the model's own prediction, with
    tables large enough to move it."""
    model = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, gates="none", pairs=2, pair_index=(0, 3, 1, 2)), 5)
    x_RxF = jax.random.randint(jax.random.key(0), (20, 5), 0, N_BINS - 1).astype(jnp.int8)
    params = model.init(jax.random.key(1), x_RxF)
    params["params"]["pairs"]["table"] = jax.random.normal(jax.random.key(2), (2, N_BINS * N_BINS))
    params["params"]["query"] = jax.random.normal(jax.random.key(3), params["params"]["query"].shape)  # uneven attention
    tables = jax.device_get(model.apply(params, None, None, method="era_tables"))
    live = LiveModel(features=tuple(f"f{i}" for i in range(5)), normalizer="softmax",
                     logit_MxHxFxB=tables["logit_HxFxB"][None], gate_MxF=np.asarray(tables["gate_F"], np.float64)[None],
                     keep_MxF=np.asarray(tables["keep_F"])[None], beta_MxFxB=tables["beta_FxB"][None], weight_M=np.ones(1),
                     imputer=Imputer("bin"), pairs_Px2=np.array([[0, 3], [1, 2]]), pair_MxPxBB=tables["pair_PxBB"][None])
    pred_R = np.asarray(model.apply(params, x_RxF)[0])
    np.testing.assert_allclose(live.member_predictions(np.asarray(x_RxF))[0], pred_R, rtol=1e-5, atol=1e-6)
    assert np.ptp(pred_R) > 0.1  # the pair terms carry the prediction (the additive tables are zero)
