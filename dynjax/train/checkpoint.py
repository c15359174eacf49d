"""Orbax checkpoints of a run: one `CheckpointManager` per run directory.

Each checkpoint is an `args.Composite` of
  state: the run state (`train.state.RunState`): every ensemble member's params, EMA
         params, optimiser state and step; the selection state; the replay buffer (era
         positions and stored outputs); the root RNG key data (StandardSave);
  meta:  the walk-forward cursor, the phase and the run config (JsonSave).
Checkpoint step k = k walk-forward eras done (0: just after pretraining). The manager
keeps the latest N plus the best by holdout correlation.

Resume order: open the manager -> latest_step() -> restore `meta` (cursor, config) ->
rebuild model and optimiser from that config -> restore `state` into the abstract target
from `jax.eval_shape` -> continue the walk-forward at the cursor.
"""

from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

METRIC = "eval/corr_mean"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read back; names the step and directory."""


class RunCheckpoints:
    """Save and restore the walk-forward state of one run."""

    def __init__(self, directory: str | Path, keep: int = 3):
        self.directory = Path(directory).absolute()
        policy = pp.AnyPreservationPolicy([
            pp.LatestN(n=keep),
            pp.BestN(get_metric_fn=lambda m: m[METRIC], reverse=False, n=1, keep_checkpoints_without_metrics=False),
        ])
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(preservation_policy=policy, create=True),
            item_names=("state", "meta"),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, meta: dict, metric: float) -> None:
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            metrics={METRIC: float(metric)},
        )
        self.manager.wait_until_finished()

    def restore_meta(self, step: int) -> dict:
        try:
            return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as err:  # noqa: BLE001  (orbax and tensorstore raise many types)
            raise CheckpointError(f"{self.directory}/{step}: checkpoint metadata unreadable ({type(err).__name__}: {err})") from None

    def restore_state(self, step: int, abstract_state: Any) -> Any:
        """Restore into the shapes/dtypes of `abstract_state` (from `jax.eval_shape`)."""
        try:
            return self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))["state"]
        except Exception as err:  # noqa: BLE001  (orbax and tensorstore raise many types)
            raise CheckpointError(f"{self.directory}/{step}: checkpoint state unreadable ({type(err).__name__}: {err})") from None

    def close(self) -> None:
        self.manager.close()
