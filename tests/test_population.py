"""Covers dynjax.tune.population and the population paths of dynjax.tune.objective: a population
of trials trains each as it would train alone, refuses what trials cannot share, gives each
trial its own result and pruning."""

import json

import jax
import numpy as np
import optuna
import pytest

from dynjax.cli import main
from dynjax.config import RunConfig, override
from dynjax.data import load_numerai
from dynjax.data.synth import write_synthetic
from dynjax.train.run import make_run_context, sampling_rng, train_step, update_batch
from dynjax.tune.study import storage_url
from tests.test_tune import SPACE, TUNE_RUN


@pytest.fixture(scope="module")
def pop_data(tmp_path_factory):
    cfg = override(RunConfig(), TUNE_RUN)
    return cfg, load_numerai(write_synthetic(cfg.synth, tmp_path_factory.mktemp("pop")))


def test_a_population_trains_each_trial_as_it_would_train_alone(pop_data):
    cfg, data = pop_data
    cfg = override(cfg, ["train.ensemble=2", "optim.warmup_steps=0"])
    hyper = {"optim.learning_rate": [0.002, 0.008], "loss.sparsity_lambda": [0.05, 0.001], "optim.weight_decay": [0.0, 0.1]}
    pop = make_run_context(cfg, data, hyper)
    alone = [make_run_context(override(cfg, [f"{k}={v[g]}" for k, v in hyper.items()]), data) for g in range(2)]
    states = [run_states(run) for run in (pop, *alone)]
    for g, solo in enumerate(states[1:]):
        group = jax.tree.map(lambda a, g=g: a[2 * g: 2 * g + 2], states[0].train.params)
        # Up to float rounding (the population's schedule is peak x unit schedule), which Adam can blow up
        # to a few 1e-4 on a parameter whose gradient is ~0 (zero-initialised ones: the query, the additive
        # table); a wrong rate or weight would move params by ~1e-2.
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3), group, solo.train.params)
    # ...and really differ, by far more than that tolerance (the trials start from the same init, so
    # equal hyperparameters would leave them equal): their own learning rates and loss weights were used.
    first, second = (jax.tree.map(lambda a, g=g: a[2 * g], states[0].train.params) for g in (0, 1))
    assert max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second))) > 5e-3


def run_states(run):
    """Three update steps on the resolved eras 0..7."""
    state = run.fresh_state()
    for s in range(3):
        state, _ = train_step(run, state, update_batch(run, np.arange(8), sampling_rng(run, 2, s)), jax.random.key(0), update=True)
    return state


def test_population_refuses_a_shared_selection_mask(pop_data):
    cfg, data = pop_data
    with pytest.raises(ValueError, match="share one selection mask"):
        make_run_context(override(cfg, ["selection.mode=topk"]), data, {"optim.learning_rate": [0.001, 0.01]})
    with pytest.raises(ValueError, match="one value per trial"):
        make_run_context(cfg, data, {"model.dropout": [0.0, 0.1]})


@pytest.mark.parametrize("prune", [{1: 0}, {0: 0, 1: 0}])
def test_a_pruned_trial_stops_reporting_and_when_all_are_pruned_the_walk_forward_stops(pop_data, tmp_path, prune):
    """Trial g is pruned at fold `prune[g]`: it reports no later fold, the others go on; with
    every trial pruned the walk-forward ends there (2 folds of 3 eras: 6 scored eras in all)."""
    from dynjax.tune.objective import evaluate_population

    cfg, data = pop_data
    reports = []

    def report(g: int, fold: int, value: float) -> bool:
        reports.append((g, fold))
        return prune.get(g) != fold

    results = evaluate_population(cfg, {"optim.learning_rate": [0.002, 0.008]}, data, tmp_path / "run", report)
    if len(prune) == 1:
        assert reports == [(0, 0), (1, 0), (0, 1)]
        assert [r["pruned_fold"] for r in results] == [None, 0] and [len(r["fold_values"]) for r in results] == [2, 1]
        assert len(results[0]["corr_E"]) == 6
    else:
        assert reports == [(0, 0), (1, 0)] and [r["pruned_fold"] for r in results] == [0, 0]
        assert [len(r["corr_E"]) for r in results] == [3, 3]  # stopped after the first fold's eras


def test_population_tune_gives_every_trial_its_own_result(pop_data, tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({k: v for k, v in SPACE.items() if k != "data.window_eras"}))
    out = tmp_path / "tune"
    assert main(["tune", "--out", str(out), "--space", str(space), "--n-trials", "3", *TUNE_RUN, "tune.population=3",
                 "tune.pruner=none"]) == 0
    study = optuna.load_study(study_name="dynjax", storage=storage_url(out, None))
    assert len(study.trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert {t.user_attrs["population"] for t in study.trials} == {0}  # one population, one walk-forward
    assert len({t.params["optim.learning_rate"] for t in study.trials}) == 3
    assert len({t.value for t in study.trials}) == 3
