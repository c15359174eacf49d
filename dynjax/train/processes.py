"""Multi-process (multi-host) runs: `jax.distributed` from flags or the environment, and which
process writes.

Every process runs the same program on the same data: it builds the same host batches from the
same sampling streams and supplies its own devices' shards of them, so the global arrays are
those of a one-process run (`sharding.Layout.put`). Orbax checkpoints are written by all
processes together; predictions, reports and logs by process 0 alone.
"""

import os

import jax
from jax.experimental import multihost_utils


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               *, auto: bool = False) -> bool:
    """Join a multi-process run when one is asked for; True if this process is part of one.

    Flags first, then the usual environment variables (`JAX_COORDINATOR_ADDRESS`,
    `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`); `auto` leaves everything to JAX's cluster detection
    (SLURM, Open MPI, TPU pods, Kubernetes). Nothing asked for: one process, nothing done.
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    if not (auto or coordinator or num_processes or process_id is not None):
        return False
    if not auto and (coordinator is None or num_processes is None or process_id is None):
        raise ValueError("a multi-process run needs the coordinator address, the number of processes and this "
                         f"process's id (got {coordinator!r}, {num_processes!r}, {process_id!r}); pass --coordinator, "
                         "--num-processes and --process-id, or --distributed for cluster auto-detection")
    jax.distributed.initialize(coordinator, num_processes, process_id)
    return True


def is_writer() -> bool:
    """Process 0 writes the run's files (predictions, reports, logs)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait for every process here (a no-op in a one-process run)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise ValueError(f"{name}={value!r} is not a non-negative integer")
    return int(value)
