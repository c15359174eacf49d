"""Device-resident data: a timeline's int8 features and main target put on the devices once.

With `data.placement=device` the train step and predict take int32 row numbers into these
matrices (`Batch.rows_WxR`, a predict chunk's `rows_R`; -1 pads) and gather the rows inside
the jit, so a step moves a few kilobytes of indices instead of W x R x F int8 rows. The row
numbers are drawn by the same sampling streams as the host path's rows, and padding gathers
zeros as the host path pads, so both placements feed the model the same numbers.

The matrices are replicated on every device of the mesh (each data-parallel device gathers its
own rows locally); `auto` places them on the devices when they fit `data.device_share` of the
smallest device's memory (of the host's RAM on a CPU backend, where device memory is host memory).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dynjax.data.numerai import EraData

PLACEMENTS = ("auto", "device", "host")


@struct.dataclass
class Resident:
    """Every split of a timeline, stacked row-wise: `x_NxF` int8, `y_N` the main target (0 where unknown)."""

    x_NxF: jax.Array
    y_N: jax.Array


def resident_bytes(splits: tuple[EraData, ...]) -> int:
    """Device bytes of the stacked matrices (int8 features, float32 target)."""
    return sum(s.x_NxF.size + 4 * s.n_rows for s in splits)


def device_memory_bytes(devices: list) -> int:
    """The smallest device's memory (the allocator's limit; of this process's devices, the ones it
    can ask); a CPU backend's is the host's RAM."""
    devices = [d for d in devices if d.process_index == jax.process_index()] or devices
    limits = [(d.memory_stats() or {}).get("bytes_limit") for d in devices]
    if all(limits):
        return int(min(limits))
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def choose_placement(placement: str, n_bytes: int, devices: list, share: float) -> str:
    """"device" or "host": `auto` is device when `n_bytes` fit `share` of each device's memory."""
    if placement not in PLACEMENTS:
        raise ValueError(f"data.placement must be one of {PLACEMENTS}, got {placement!r}")
    if placement != "auto":
        return placement
    return "device" if n_bytes <= share * device_memory_bytes(devices) else "host"


def row_offsets(splits: tuple[EraData, ...]) -> np.ndarray:
    """Each split's first row in the stacked matrices: `[S]`."""
    return np.r_[0, np.cumsum([s.n_rows for s in splits])[:-1]].astype(np.int64)


def put_resident(splits: tuple[EraData, ...], put, sharding) -> Resident:
    """The splits' features and main target, stacked on the devices (`put(tree, shardings)`, the layout's).

    Split by split, so the host never holds a second copy of the features."""
    if sum(s.n_rows for s in splits) >= 2**31:
        raise ValueError("data.placement=device indexes rows with int32: more than 2**31 rows; use data.placement=host")
    x = put(splits[0].x_NxF, sharding)
    if len(splits) > 1:  # the concatenation keeps the parts' (replicated) sharding
        x = jnp.concatenate([x, *(put(s.x_NxF, sharding) for s in splits[1:])])
    y = np.concatenate([np.nan_to_num(s.y_NxT[:, 0]) for s in splits]).astype(np.float32)
    return Resident(x_NxF=x, y_N=put(y, sharding))


def gather_rows(data: Resident, rows_R: jax.Array) -> jax.Array:
    """The feature rows at `rows` (any leading shape); -1 gathers a zero row, as the host pads."""
    valid = rows_R >= 0
    x = jnp.take(data.x_NxF, jnp.maximum(rows_R, 0), axis=0)
    return jnp.where(valid[..., None], x, jnp.zeros((), x.dtype))


def gather_targets(data: Resident, rows_R: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(y, mask)` at `rows`: the main target, 0 and masked where a row is padding (-1)."""
    valid = rows_R >= 0
    return jnp.where(valid, jnp.take(data.y_N, jnp.maximum(rows_R, 0)), 0.0), valid
