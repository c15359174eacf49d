"""Covers dynjax.train.members and the member axis of dynjax.train.step: what sets the members apart,
member 0 of a population step is the single model, an ensemble of one equals it, predictions
mixed by tie-kept ranks."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from dynjax.config import LossConfig, ModelConfig, OptimConfig, RunConfig, override
from dynjax.data import load_numerai, sample_window, window_rng
from dynjax.model import FeatureAttentionModel
from dynjax.train import BatchSpec, make_optimizer, make_predict, make_step
from dynjax.train.members import combine_members, mixture_labels, mixtures, plan_members
from dynjax.train.sharding import make_layout
from dynjax.train.state import create_train_state, member_keys
from dynjax.train.step import member_step, predict_fn
from tests.conftest import off_zero_init


@pytest.fixture(scope="module")
def setup(synth_dir):
    train = load_numerai(synth_dir).train
    n_features = train.x_NxF.shape[1]
    model = FeatureAttentionModel(ModelConfig(d_model=8, n_heads=2, dropout=0.1, gates="none"), n_features)
    optimizer = make_optimizer(OPTIM)
    batches = [sample_window(train, np.arange(i, i + 3), 16, window_rng(0, i)) for i in range(3)]
    return train, model, optimizer, batches, jnp.ones(n_features, bool)


OPTIM = OptimConfig(learning_rate=1e-2, warmup_steps=0, decay_steps=100, ema_decay=0.9)
LOSS = LossConfig(sparsity="none")


@pytest.fixture(scope="module")
def steps(setup):
    """The factory's population step of `n` members, and one member's pure step jitted alone (with EMA)."""
    _, model, _, _, _ = setup
    population = lambda n: make_step(model, LOSS, OPTIM, make_layout("", model.n_features), n, BatchSpec(windows=(3,), rows=16))
    return population, jax.jit(member_step(model, LOSS, OPTIM))


def _members(model, optimizer, n):
    states = jax.vmap(lambda k: create_train_state(model, optimizer, k))(member_keys(jax.random.key(0), n))
    layout = make_layout("", model.n_features)
    return layout.put(states, layout.train_shardings(states))


def test_member_zero_of_a_population_is_the_single_model_trained_alone_and_compiles_once(setup, steps):
    _, model, optimizer, batches, all_F = setup
    make, single = steps
    population = make(3)
    states, alone = off_zero_init(_members(model, optimizer, 3)), off_zero_init(create_train_state(model, optimizer, jax.random.key(0)))
    for i, batch in enumerate(batches):
        mask_F = all_F.at[i].set(False)  # a new mask each step must not recompile
        states, metrics = population(states, batch, mask_F, jax.random.key(7), None)
        alone, _ = single(alone, batch, mask_F, jax.random.key(7))
    # atol 1e-5: a parameter softmax is blind to (the token norm's bias shifts every logit alike) has a
    # gradient at rounding level, which Adam's steps (g / (|g| + eps)) scale up differently in the two programs.
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[0], states.ema_params), alone.ema_params, rtol=1e-5, atol=1e-5)
    assert not np.allclose(states.params["params"]["query"][0], states.params["params"]["query"][1])  # members differ
    assert metrics["loss"].shape == ()  # metrics are member means
    assert population._cache_size() == 1


def test_an_ensemble_of_one_equals_the_single_model(setup, steps):
    train, model, optimizer, batches, all_F = setup
    make, single = steps
    states, alone = _members(model, optimizer, 1), create_train_state(model, optimizer, jax.random.key(0))
    states, _ = make(1)(states, batches[0], all_F, jax.random.key(7), None)
    alone, _ = single(alone, batches[0], all_F, jax.random.key(7))
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[0], states.params), alone.params)
    predict = make_predict(model, make_layout("", model.n_features), 1)
    valid_R = np.ones(10, bool)
    pred_MxR, weight_sum_MxF, gate_MxF = predict(states.params, train.x_NxF[:10], valid_R, all_F, None, None)
    pred_R, _, _ = jax.jit(predict_fn(model))(alone.params, train.x_NxF[:10], valid_R, all_F)
    chex.assert_shape((pred_MxR, weight_sum_MxF, gate_MxF), ((1, 10), (1, all_F.shape[0]), (1, all_F.shape[0])))
    np.testing.assert_array_equal(combine_members(np.asarray(pred_MxR)), np.asarray(pred_R))


def test_combine_members_averages_numerai_tie_kept_ranks():
    pred_MxR = np.array([[0.1, 0.3, 0.2, 0.2], [5.0, 1.0, 2.0, 3.0]])
    # Tie-kept ranks into (0, 1), (rank - 0.5) / n: member 0 ranks [1, 4, 2.5, 2.5], member 1 [4, 1, 2, 3].
    expected = ((np.array([1, 4, 2.5, 2.5]) - 0.5) / 4 + (np.array([4, 1, 2, 3]) - 0.5) / 4) / 2
    np.testing.assert_allclose(combine_members(pred_MxR), expected)
    assert isinstance(combine_members(pred_MxR), np.ndarray) and pd.notna(combine_members(pred_MxR)).all()


def test_the_default_plans_a_dense_all_history_member_and_a_gated_recent_one():
    members = plan_members(RunConfig())
    assert members.horizons_M == (0, 16) and members.thresholds_M == (-1000.0, 5.0) and members.prior_M == (1.0, 0.0)
    assert members.kinds_M == (0, 1) and members.per_member_windows and members.gated_M().tolist() == [False, True]
    np.testing.assert_allclose(members.mixtures_XxM, [[1, 0], [0, 1], [0.5, 0.5]])  # each alone, then both
    three = plan_members(override(RunConfig(), ["train.ensemble=3", "train.horizons=0", "model.gates=l0"]))
    assert three.kinds_M == (0, 0, 0) and three.thresholds_M is None and not three.per_member_windows
    np.testing.assert_allclose(three.mixtures_XxM, [[1 / 3] * 3])  # one kind: its members share its weight
    np.testing.assert_allclose(mixtures((0, 1, 0), mean=False), [[0.5, 0, 0.5], [0, 1, 0]])


def test_mixture_labels_name_each_kind_then_the_equal_mix():
    labels = lambda *overrides: mixture_labels(plan_members(override(RunConfig(), list(overrides))))
    assert labels() == ["all eras, dense", "latest 16 eras, gated at z 5", "equal mix"]
    assert labels("train.hedge_mean=false") == ["all eras, dense", "latest 16 eras, gated at z 5"]
    assert labels("train.ensemble=3", "train.horizons=0,16,0", "model.gate_thresholds=-1000,3.5,-1000") == [
        "all eras, dense", "latest 16 eras, gated at z 3.5", "equal mix"]  # members 0 and 2 are one kind
    assert labels("model.gates=none", "train.horizons=") == ["latest window"]


def test_member_scores_read_each_resolved_era_once(tmp_path):
    """A resumed run logs an era's Hedge scores again: the report counts the era once, its last record."""
    import json

    from dynjax.eval.report import member_scores

    log = tmp_path / "metrics.jsonl"
    records = [{"phase": "hedge", "era": "0001", "hedge/corr_0": 0.1, "hedge/corr_1": -0.2},
               {"phase": "hedge", "era": "0002", "hedge/corr_0": 0.3, "hedge/corr_1": None},
               {"phase": "walk", "era": "0003", "hedge/weight_0": 0.5},
               {"phase": "hedge", "era": "0002", "hedge/corr_0": 0.3, "hedge/corr_1": None}]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    scores = member_scores(log, ["a", "b"])
    assert scores["a"]["n_eras"] == 2 and scores["a"]["corr_mean"] == pytest.approx(0.2)
    assert scores["b"]["n_eras"] == 1 and scores["b"]["below_zero"] == 1.0


def test_member_weights_count_each_walked_era_once(tmp_path):
    """A resumed run walks the eras since its latest checkpoint again and logs them again: the
    report's weights and policy shares count each update once, the last record of its era."""
    import json

    from dynjax.eval.report import member_weights

    walk = lambda era, w, policy: {"phase": "walk", "era": era, "hedge/weight_0": w, "hedge/weight_1": 1 - w,
                                   "hedge/policy_0": policy, "floor/frozen_share_0": 0.5}
    once = [walk("0001", 0.2, 0), walk("0002", 0.6, 1), walk("next", 1.0, 1)]
    again = [*once[:2], {"phase": "hedge", "era": "0001", "hedge/corr_0": 0.1}, *once[1:]]
    for name, records in (("once", once), ("again", again)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = member_weights(tmp_path / "again", ["a", "b"])
    assert summary == member_weights(tmp_path / "once", ["a", "b"])
    assert summary["updates"] == 3 and summary["weight_mean"][0] == pytest.approx(0.6)
    assert summary["policy_share"] == {"a": pytest.approx(1 / 3), "b": pytest.approx(2 / 3)}
