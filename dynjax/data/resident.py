"""Device-resident data: a timeline's int8 features and main target put on the devices once.

With `data.placement=device` the train step and predict take int32 row numbers into these
matrices (`Batch.rows_WxR`, a predict chunk's `rows_R`; -1 pads) and gather the rows inside
the jit, so a step moves a few kilobytes of indices instead of W x R x F int8 rows. The row
numbers are drawn by the same sampling streams as the host path's rows, and padding gathers
zeros as the host path pads, so both placements feed the model the same numbers.

The matrices are replicated on every device of the mesh (each data-parallel device gathers its
own rows locally); `auto` places them on the devices when they fit `data.device_share` of the
smallest device's memory, or, on a CPU backend, where device memory is host memory, when they fit
it twice over beside the host's own copy (at Numerai's size, 9.8 GB of int8, on a 24 GB host: host).
"""

import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dynjax.data.numerai import EraData

PLACEMENTS = ("auto", "device", "host")
BLOCK_BYTES = 2**28  # bytes of rows sent per write when the matrices are put on the devices


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
    """"device" or "host": `auto` is device when the bytes it adds fit `share` of each device's memory:
    `n_bytes`, twice over on a CPU backend, where the devices' copy lies in the host RAM beside the
    host's own (the run keeps it for the era context and the report)."""
    if placement not in PLACEMENTS:
        raise ValueError(f"data.placement must be one of {PLACEMENTS}, got {placement!r}")
    if placement != "auto":
        return placement
    copies = 2 if all(d.platform == "cpu" for d in devices) else 1
    return "device" if copies * n_bytes <= share * device_memory_bytes(devices) else "host"


def row_offsets(splits: tuple[EraData, ...]) -> np.ndarray:
    """Each split's first row in the stacked matrices: `[S]`."""
    return np.r_[0, np.cumsum([s.n_rows for s in splits])[:-1]].astype(np.int64)


def put_resident(splits: tuple[EraData, ...], put, sharding, block_bytes: int = BLOCK_BYTES) -> Resident:
    """The splits' features and main target, stacked on the devices (`put(tree, shardings)`, the layout's).

    The stacked matrix is allocated once and filled in place, a block of about `block_bytes` at a
    time, so the devices never hold more than it and one block (a concatenation of the splits would
    hold every part beside the whole: at Numerai's size on a CPU backend, three copies of the data
    in host RAM), and the host never a second copy."""
    n_rows = sum(s.n_rows for s in splits)
    if n_rows >= 2**31:
        raise ValueError("data.placement=device indexes rows with int32: more than 2**31 rows; use data.placement=host")
    n_features = splits[0].x_NxF.shape[1]
    x = jnp.zeros((n_rows, n_features), splits[0].x_NxF.dtype, device=sharding)
    for start, block in row_blocks(splits, max(1, block_bytes // max(n_features, 1))):
        x = _write_rows(x, put(block, sharding), start)
    y = np.concatenate([np.nan_to_num(s.y_NxT[:, 0]) for s in splits]).astype(np.float32)
    return Resident(x_NxF=x, y_N=put(y, sharding))


def row_blocks(splits: tuple[EraData, ...], rows: int):
    """`(first row, block)` over the splits' features stacked row-wise, in blocks of `rows` rows
    (the last shorter; two block shapes in all, so two compilations of the write)."""
    offsets = row_offsets(splits)
    ends = offsets + np.array([s.n_rows for s in splits])
    for start in range(0, int(ends[-1]), rows):
        stop = min(start + rows, int(ends[-1]))
        parts = [s.x_NxF[max(start - o, 0):stop - o] for s, o, e in zip(splits, offsets, ends) if o < stop and e > start]
        yield start, parts[0] if len(parts) == 1 else np.concatenate(parts)


@partial(jax.jit, donate_argnums=0)
def _write_rows(x_NxF: jax.Array, block_BxF: jax.Array, start) -> jax.Array:
    """`x` with `block` written at row `start`, in place (its buffer donated)."""
    return jax.lax.dynamic_update_slice_in_dim(x_NxF, block_BxF, start, axis=0)


def gather_rows(data: Resident, rows_R: jax.Array) -> jax.Array:
    """The feature rows at `rows` (any leading shape); -1 gathers a zero row, as the host pads."""
    valid = rows_R >= 0
    x = jnp.take(data.x_NxF, jnp.maximum(rows_R, 0), axis=0)
    return jnp.where(valid[..., None], x, jnp.zeros((), x.dtype))


def gather_targets(data: Resident, rows_R: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(y, mask)` at `rows`: the main target, 0 and masked where a row is padding (-1)."""
    valid = rows_R >= 0
    return jnp.where(valid, jnp.take(data.y_N, jnp.maximum(rows_R, 0)), 0.0), valid
