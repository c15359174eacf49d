"""Orbax checkpoints of a run: one `CheckpointManager` per run directory.

Each checkpoint is an `args.Composite` of
  state: the run state (`train.state.RunState`): every ensemble member's params, EMA
         params, optimiser state and step; the selection state; the root RNG key data; the
         Hedge scores (StandardSave);
  meta:  the walk-forward cursor, the run config and the history record (JsonSave).
Checkpoints are written in the background (Orbax's async saving): a save returns once the
arrays are on the host, so the next era trains while the previous checkpoint is written.
Checkpoint step k = k walk-forward eras done (0: just after pretraining). The manager
keeps the latest N, the best by the resolved walk-forward eras' corr, and step 0 (the model frozen after
pretraining, which the report compares against, also for eras an update adds).

Resume order: open the manager -> `restore_latest` (meta: cursor, config, history; then
`state` into the abstract target from `jax.eval_shape`), falling back past a corrupt or
half-written latest checkpoint with a warning -> check the data against the history ->
continue the walk-forward at the cursor (`dynjax.train.walk_forward.Checkpointed`).
"""

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

METRIC = "eval/corr_mean"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read back; names the step and directory."""


def state_unreadable(where: str, err: Exception) -> CheckpointError:
    """The error for a state that cannot be restored: one written by another version of dynjax (whose
    run state has other parts) says so and names them; anything else keeps Orbax's reason."""
    text = str(err)
    if "tree structures do not match" in text or "Structure mismatch" in text:
        # Orbax names each differing path on a line of its own, or as a tuple of keys
        parts = re.findall(r"^([\w.\[\]'-]+):$", text, re.MULTILINE) or [
            ".".join(k.strip(" '") for k in path.split(",") if k.strip()) for path in re.findall(r"path \(([^)]*)\)", text)]
        return CheckpointError(f"{where}: its run state has other parts than this dynjax's ({', '.join(parts[:8])}"
                               f"{', ...' if len(parts) > 8 else ''}): another version wrote it; continue it with the "
                               f"code that wrote it (git log names the commits), or start the run again")
    return CheckpointError(f"{where} unreadable ({type(err).__name__}: {text})")


class RunCheckpoints:
    """Save and restore the walk-forward state of one run."""

    def __init__(self, directory: str | Path, keep: int = 3):
        self.directory = Path(directory).absolute()
        policy = pp.AnyPreservationPolicy([
            pp.LatestN(n=keep),
            pp.BestN(get_metric_fn=lambda m: m[METRIC], reverse=False, n=1, keep_checkpoints_without_metrics=False),
            pp.CustomSteps(steps=[0]),
        ])
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(preservation_policy=policy, create=True),
            item_names=("state", "meta"),
        )

    def latest_step(self) -> int | None:
        self.manager.wait_until_finished()
        return self.manager.latest_step()

    def save(self, step: int, state: Any, meta: dict, metric: float) -> None:
        """Start saving checkpoint `step`; the writing finishes in the background.

        Orbax copies the arrays to host memory before it returns, so the caller may donate
        `state` to the next train step; the next save (or any read, or `close`) waits for it.
        """
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            metrics={METRIC: float(metric)},
        )

    def restore_meta(self, step: int) -> dict:
        self.manager.wait_until_finished()
        try:
            return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as err:  # noqa: BLE001  (orbax and tensorstore raise many types)
            raise CheckpointError(f"{self.directory}/{step}: checkpoint metadata unreadable ({type(err).__name__}: {err})") from None

    def restore_state(self, step: int, abstract_state: Any) -> Any:
        """Restore into the shapes/dtypes of `abstract_state` (from `jax.eval_shape`)."""
        self.manager.wait_until_finished()
        try:
            return self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))["state"]
        except Exception as err:  # noqa: BLE001  (orbax and tensorstore raise many types)
            raise state_unreadable(f"{self.directory}/{step}: checkpoint state", err) from None

    def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict] | None:
        """`(step, state, meta)` of the newest readable checkpoint; None if there is none.

        A newer checkpoint that cannot be read (corrupt, half-written) is moved aside to
        `<directory>.corrupt/` with a warning, so the run continues from the one before it and
        can save that step again. CheckpointError if no checkpoint is readable (then nothing moves).
        """
        unreadable = []
        self.manager.wait_until_finished()
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                meta, state = self.restore_meta(step), self.restore_state(step, abstract_state)
            except CheckpointError as err:
                unreadable.append((step, err))
                continue
            for bad, err in unreadable:
                aside = self.set_aside(bad)
                warnings.warn(f"{err}; moved it to {aside} and restored checkpoint {step} instead", stacklevel=2)
            return step, state, meta
        if unreadable:
            raise CheckpointError(f"{self.directory}: no readable checkpoint ({'; '.join(str(e) for _, e in unreadable)})")
        return None

    def set_aside(self, step: int) -> Path:
        """Move checkpoint `step` out of the manager's directory (kept, not deleted)."""
        aside = self.directory.with_name(self.directory.name + ".corrupt") / str(step)
        aside.parent.mkdir(exist_ok=True)
        if aside.exists():
            shutil.rmtree(aside)
        shutil.move(self.directory / str(step), aside)
        self.manager.reload()
        return aside

    def close(self) -> None:
        self.manager.close()
