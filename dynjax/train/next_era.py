"""The model as it stands for the era after the history, with all that predicting it needs.

After its last walk-forward era a run takes one more update (on the eras resolved by the
next era, exactly as the walk-forward would at that era) and stores, in `out/next/`:
  state/       the run state after that update (Orbax), which predicts every live era;
  arrays.npz   the next era's context (summaries and gate evidence of resolved eras) and
               the fitted imputer's arrays;
  next.json    the next era's number, the last history era, the feature list, the training
               file's feature columns, the imputer strategy, the config.
`dynjax predict` reads only this and a live file, so it neither reloads training data nor
recomputes era summaries. The directory is replaced atomically (written next to it, then
renamed), so a run stopped while writing it keeps the previous one.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orbax.checkpoint as ocp

from dynjax.config import RunConfig, from_dict, to_dict
from dynjax.data.bins import Imputer
from dynjax.data.context import EraContext
from dynjax.train.checkpoint import CheckpointError, state_unreadable
from dynjax.train.processes import barrier, is_writer

NEXT = "next"
_CONTEXT_FIELDS = ("evidence_FxV",)
_IMPUTER_FIELDS = ("fill_F", "neighbors_FxJ", "coef_FxJ", "intercept_F")


@dataclass(frozen=True)
class NextEra:
    """What `out/next/` holds, read back (the state is restored on demand)."""

    directory: Path
    cfg: RunConfig
    number: int  # the next era's number
    after: str  # the last walk-forward era's name
    features: tuple[str, ...]
    feature_columns: tuple[str, ...] | None  # every feature column of the training file (None: unknown)
    context: EraContext | None
    imputer: Imputer | None

    def restore_state(self, abstract_state: Any) -> Any:
        try:
            with ocp.StandardCheckpointer() as ckptr:
                return ckptr.restore(self.directory / "state", abstract_state)
        except Exception as err:  # noqa: BLE001  (orbax and tensorstore raise many types)
            raise state_unreadable(f"{self.directory / 'state'}: next-era state", err) from None


def save_next(out: Path, cfg: RunConfig, state: Any, *, number: int, after: str, features: tuple[str, ...],
              feature_columns: tuple[str, ...] | None, context: EraContext | None, imputer: Imputer | None) -> Path:
    """Write `out/next/` (replacing the previous one only once the new one is complete).

    In a multi-process run every process writes its part of the state; process 0 the rest."""
    final, tmp = out / NEXT, out / f"{NEXT}.tmp"
    if is_writer():
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier("dynjax: next-era directory made")
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save((tmp / "state").absolute(), state)
        ckptr.wait_until_finished()
    if not is_writer():
        barrier("dynjax: next-era state written")
        return final
    arrays = {f"context_{f}": np.asarray(getattr(context, f)) for f in _CONTEXT_FIELDS
              if context is not None and getattr(context, f) is not None}
    arrays |= {f"imputer_{f}": getattr(imputer, f) for f in _IMPUTER_FIELDS
               if imputer is not None and getattr(imputer, f) is not None}
    np.savez(tmp / "arrays.npz", **arrays)
    meta = {"number": int(number), "after": after, "features": list(features),
            "feature_columns": None if feature_columns is None else list(feature_columns),
            "imputer": None if imputer is None else imputer.strategy, "config": to_dict(cfg)}
    (tmp / "next.json").write_text(json.dumps(meta, indent=1) + "\n")
    old = out / f"{NEXT}.old"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    barrier("dynjax: next-era state written")
    return final


def load_next(run_dir: str | Path) -> NextEra:
    """`run_dir/next/`, or CheckpointError naming what is missing."""
    directory = Path(run_dir) / NEXT
    if not (directory / "next.json").is_file():
        raise CheckpointError(f"{directory}: no next-era state (the run has not finished its walk-forward; "
                              "resume it with dynjax walk-forward --resume)")
    try:
        meta = json.loads((directory / "next.json").read_text())
        with np.load(directory / "arrays.npz") as npz:
            arrays = dict(npz)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{directory}: next-era state unreadable ({type(err).__name__}: {err})") from None
    cfg = from_dict(RunConfig, meta["config"])
    context = None
    if any(k.startswith("context_") for k in arrays):
        context = EraContext(*(arrays.get(f"context_{f}") for f in _CONTEXT_FIELDS))
    imputer = None
    if meta["imputer"] is not None:
        imputer = Imputer(meta["imputer"], *(arrays.get(f"imputer_{f}") for f in _IMPUTER_FIELDS))
    columns = meta["feature_columns"]
    return NextEra(directory, cfg, int(meta["number"]), meta["after"], tuple(meta["features"]),
                   None if columns is None else tuple(columns), context, imputer)
