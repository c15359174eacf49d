"""Population sweeps (`tune.population=N`): N trials that differ only in float hyperparameters
(`POPULATION_PATHS`) are trained as one vmapped population, one jitted step for all of them.

Optuna's ask-and-tell interface: the first trial of a population samples every parameter;
the others are enqueued with its non-float parameters fixed, so the sampler draws only their
floats. Each trial gets its own pruning reports and result; the walk-forward stops when all
of a population's trials are pruned. Trials whose fixed parameters differ (another worker
took an enqueued trial) are simply evaluated in separate populations.
"""

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import optuna
from optuna.trial import TrialState

from dynjax.config import POPULATION_PATHS, RunConfig, save_config
from dynjax.data.numerai import NumeraiData
from dynjax.tune.objective import evaluate_population
from dynjax.tune.space import apply_params, as_overrides, suggest
from dynjax.tune.trials import FINISHED, fresh_dir, record_result, trial_dir, trial_line


def optimize_population(study: optuna.Study, cfg: RunConfig, space: dict, data: NumeraiData, out: Path, *,
                        n_trials: int, timeout: float | None, log: Callable[[str], None], progress: Callable,
                        reference: Mapping[str, float] | None = None) -> None:
    """Ask populations of `tune.population` trials until the study holds `n_trials` finished ones."""
    start = time.perf_counter()
    while timeout is None or time.perf_counter() - start < timeout:
        left = n_trials - len(study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING)))
        if left <= 0:
            return
        for members in ask_population(study, cfg, space, min(cfg.tune.population, left)):
            trials, params = zip(*members)
            run_cfg = apply_params(cfg, params[0])
            for t, p in members:
                t.set_user_attr("overrides", as_overrides(p))
                t.set_user_attr("population", trials[0].number)
                own = fresh_dir(trial_dir(out, t.number))  # each trial's config; the run is the population's
                own.mkdir(parents=True)
                save_config(apply_params(cfg, p), own / "config.json")
            hyper_G = {path: [float(p.get(path, _value(cfg, path))) for p in params] for path in _floats(params)}
            began = time.perf_counter()

            def report(g: int, fold: int, value: float, trials=trials) -> bool:
                trials[g].report(value, fold)
                return not trials[g].should_prune()

            try:
                run_dir = fresh_dir(out / "trials" / f"population_{trials[0].number:04d}")
                results = evaluate_population(run_cfg, hyper_G or None, data, run_dir, report, progress, reference)
            except (FloatingPointError, ValueError) as err:
                for t in trials:
                    study.tell(t, state=TrialState.FAIL)
                log(f"population of trials {[t.number for t in trials]} failed: {err}")
                continue
            for t, result in zip(trials, results):
                record_result(t, result, time.perf_counter() - began)
                state = TrialState.PRUNED if result["pruned_fold"] is not None else TrialState.COMPLETE
                frozen = study.tell(t, result["value"] if state == TrialState.COMPLETE else None, state=state)
                log(trial_line(frozen))


def ask_population(study: optuna.Study, cfg: RunConfig, space: dict, size: int) -> list[list[tuple]]:
    """`size` new trials with their parameters, grouped by everything but their population floats."""
    first = study.ask()
    asked = [(first, suggest(first, space, cfg))]
    fixed = {k: v for k, v in asked[0][1].items() if k not in POPULATION_PATHS}
    for _ in range(size - 1):
        study.enqueue_trial(fixed, skip_if_exists=False)
        trial = study.ask()
        asked.append((trial, suggest(trial, space, cfg)))
    groups: dict[str, list[tuple]] = {}
    for trial, params in asked:
        key = repr(sorted((k, v) for k, v in params.items() if k not in POPULATION_PATHS))
        groups.setdefault(key, []).append((trial, params))
    return list(groups.values())


def _floats(params: tuple[dict, ...]) -> list[str]:
    """The population paths any trial sets (the others stay at the config's value in every trial)."""
    return [path for path in POPULATION_PATHS if any(path in p for p in params)]


def _value(cfg: RunConfig, path: str) -> float:
    section, name = path.split(".")
    return getattr(getattr(cfg, section), name)
