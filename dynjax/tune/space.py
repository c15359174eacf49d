"""Search spaces: config paths with ranges or choices, read from JSON, sampled per Optuna trial.

    {"optim.learning_rate": {"low": 1e-3, "high": 1e-2, "log": true},
     "train.steps_per_update": {"low": 4, "high": 16, "step": 4},
     "data.window_eras": {"choices": [8, 16, 24]}}

A range samples floats or ints by the type of the config field it names; `choices` are
categorical. A trial's parameters become `path=value` overrides of the base `RunConfig`, so
every trial is an ordinary config (`dynjax walk-forward --config`).
"""

import dataclasses
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from dynjax.config import RunConfig, override

# Every path changes what the default config does (a test holds it to that): the optimiser, the
# context gates' sparsity penalty and the gated member's threshold (the dense member keeps -1000),
# the additive prior, dropout in the token GRN, the updates' size and window, the safe expert's Hedge rate.
DEFAULT_SPACE: dict[str, dict] = {
    "optim.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
    "optim.weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "loss.sparsity_lambda": {"low": 2e-3, "high": 0.2, "log": True},
    "model.gate_thresholds": {"choices": ["-1000,3.5", "-1000,5", "-1000,7"]},
    "loss.additive_l2": {"low": 1e3, "high": 1e5, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.3},
    "train.steps_per_update": {"low": 4, "high": 16, "step": 4},
    "data.window_eras": {"choices": [8, 16, 24]},
    "train.hedge_eta": {"low": 5.0, "high": 60.0, "log": True},
}


def load_space(path: str | Path | None) -> dict[str, dict]:
    """The search space in a JSON file (None: `DEFAULT_SPACE`)."""
    if path is None:
        return DEFAULT_SPACE
    try:
        space = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"search space {path}: {err}") from None
    if not isinstance(space, dict) or not space:
        raise ValueError(f"search space {path}: expected a JSON object of config paths, got {type(space).__name__}")
    return space


def check_space(space: dict[str, dict], base: RunConfig) -> None:
    """Every path names a config field and every entry is a valid range or choice list."""
    for path, spec in space.items():
        kind = field_type(base, path)
        if not isinstance(spec, dict):
            raise ValueError(f"search space {path}: expected an object with low/high or choices, got {spec!r}")  # noqa: TRY004 (the CLI reports ValueErrors)
        if "choices" in spec:
            if not isinstance(spec["choices"], list) or not spec["choices"]:
                raise ValueError(f"search space {path}: choices must be a non-empty list")
            continue
        if kind not in (int, float) or not {"low", "high"} <= set(spec):
            raise ValueError(f"search space {path}: a {getattr(kind, '__name__', kind)} field needs choices, "
                             "a numeric one low and high")
        unknown = set(spec) - {"low", "high", "log", "step"}
        if unknown or not spec["low"] <= spec["high"]:
            raise ValueError(f"search space {path}: bad range {spec} (keys low, high, log, step; low <= high)")


def fit_space(space: dict[str, dict], base: RunConfig, fits: Callable[[RunConfig], bool]) -> tuple[dict[str, dict], list[str]]:
    """The space without the values whose config `fits` refuses (the folds' data cannot hold it),
    each path tried alone on `base`, and a line per value removed; ValueError when a path keeps none."""
    fitted, removed = {}, []
    for path, spec in space.items():
        ok = lambda value: fits(apply_params(base, {path: value}))  # noqa: B023 (called within the iteration)
        if "choices" in spec:
            kept = [c for c in spec["choices"] if ok(c)]
            removed += [f"{path}={c}" for c in spec["choices"] if c not in kept]
            spec = {**spec, "choices": kept} if kept else None
        elif field_type(base, path) is int:
            step = int(spec.get("step", 1))
            values = range(int(spec["low"]), int(spec["high"]) + 1, step)
            kept = [v for v in values if ok(v)]
            removed += [f"{path}={v}" for v in values if v not in kept]
            spec = {**spec, "low": kept[0], "high": kept[-1]} if kept and kept == list(range(kept[0], kept[-1] + 1, step)) else (
                {"choices": kept} if kept else None)
        if spec is None:
            raise ValueError(f"search space {path}: no value the training eras can hold (tune.folds x tune.fold_eras "
                             "scored eras plus a pretraining window, the embargo and the holdout of each)")
        fitted[path] = spec
    return fitted, removed


def field_type(cfg: Any, path: str) -> type:
    """The annotated type of the config field at `a.b` (ValueError for an unknown path)."""
    *parents, name = path.split(".")
    for part in parents:
        if not dataclasses.is_dataclass(cfg) or part not in {f.name for f in dataclasses.fields(cfg)}:
            raise ValueError(f"search space: unknown config path {path!r}")
        cfg = getattr(cfg, part)
    if not dataclasses.is_dataclass(cfg) or name not in {f.name for f in dataclasses.fields(cfg)}:
        raise ValueError(f"search space: unknown config path {path!r}")
    return typing.get_type_hints(type(cfg))[name]


def suggest(trial: optuna.Trial, space: dict[str, dict], base: RunConfig) -> dict[str, Any]:
    """Sample one value per path."""
    params = {}
    for path, spec in space.items():
        if "choices" in spec:
            params[path] = trial.suggest_categorical(path, spec["choices"])
        elif field_type(base, path) is int:
            params[path] = trial.suggest_int(path, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)),
                                             log=bool(spec.get("log", False)))
        else:
            params[path] = trial.suggest_float(path, float(spec["low"]), float(spec["high"]), step=spec.get("step"),
                                               log=bool(spec.get("log", False)))
    return params


def as_overrides(params: dict[str, Any]) -> list[str]:
    return [f"{path}={json.dumps(value)}" for path, value in params.items()]


def apply_params(base: RunConfig, params: dict[str, Any]) -> RunConfig:
    """The base config with a trial's parameters."""
    return override(base, as_overrides(params))


def base_params(space: dict[str, dict], base: RunConfig) -> dict[str, Any] | None:
    """The base config's own value of every path, if each lies in the space (None otherwise)."""
    params = {}
    for path, spec in space.items():
        value = base
        for part in path.split("."):
            value = getattr(value, part)
        inside = value in spec["choices"] if "choices" in spec else spec["low"] <= value <= spec["high"]
        if not inside:
            return None
        params[path] = value
    return params
