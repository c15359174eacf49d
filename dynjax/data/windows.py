"""Era windows: the unit of training work, `x: int8[W, R, F]`, `y: f32[W, R]`, `mask: bool[W, R]`,
or (device-resident data, `dynjax.data.resident`) the same rows as `rows: int32[W, R]`."""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from flax import struct

from dynjax.data.context import EraContext
from dynjax.data.numerai import EraData


@struct.dataclass
class Batch:
    """The train step's input: one window of W eras with R rows each (padded rows have
    `mask_WxR == False`), plus what the model may know of each era besides its rows.

    Optional fields are None when the run does not use them (no placeholders): `context`
    holds every era's `EraContext` with a leading W axis. With device-resident data the rows
    travel as `rows_WxR` (row numbers into `Resident`, -1 for padding) and `x`, `y` and `mask`
    are None until the step gathers them.
    """

    x_WxRxF: Any = None  # int8
    y_WxR: Any = None  # float32, 0 where masked
    mask_WxR: Any = None  # bool
    context: EraContext | None = None
    rows_WxR: Any = None  # int32 row numbers into device-resident data (-1: padding)


def window_rng(seed: int, *path: int) -> np.random.Generator:
    """A sampling stream determined by (seed, step, ...), so resumed runs resample identically."""
    return np.random.default_rng([seed, *path])


def sample_window(
    data: EraData,
    positions_W: np.ndarray,
    rows_per_era: int,
    rng: np.random.Generator,
    target: int = 0,
) -> Batch:
    """Sample R labeled rows from each era of the window (all of them, padded, if fewer)."""
    return sample_eras([(data, int(e)) for e in positions_W], rows_per_era, rng, target)


def sample_eras(
    eras: Sequence[tuple[EraData, int]],
    rows_per_era: int,
    rng: np.random.Generator | Sequence[np.random.Generator],
    target: int = 0,
    offsets: Sequence[int] | None = None,
) -> Batch:
    """`sample_window` over eras that may come from different splits: `(split, position)` pairs.

    `rng` is one stream for the window, or one per era.
    With `offsets` (each era's split's first row in the device-resident matrices) the batch
    holds only those rows' numbers, `rows_WxR`: the same draws, gathered on the device.
    """
    w, r = len(eras), rows_per_era
    rngs = [rng] * w if isinstance(rng, np.random.Generator) else list(rng)
    if offsets is not None:
        rows_WxR = np.full((w, r), -1, np.int32)
        for i, ((data, e), era_rng, offset) in enumerate(zip(eras, rngs, offsets, strict=True)):
            rows = era_rows(data, e, r, era_rng)
            rows_WxR[i, : len(rows)] = offset + rows
        return Batch(rows_WxR=rows_WxR)
    x_WxRxF = np.zeros((w, r, eras[0][0].x_NxF.shape[1]), np.int8)
    y_WxR = np.zeros((w, r), np.float32)
    mask_WxR = np.zeros((w, r), bool)
    for i, ((data, e), era_rng) in enumerate(zip(eras, rngs, strict=True)):
        rows = era_rows(data, e, r, era_rng)
        x_WxRxF[i, : len(rows)] = data.x_NxF[rows]
        y_WxR[i, : len(rows)] = data.y_NxT[rows, target]
        mask_WxR[i, : len(rows)] = True
    return Batch(x_WxRxF, y_WxR, mask_WxR)


def era_rows(data: EraData, position: int, rows_per_era: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row numbers of up to R labeled rows of one era, drawn without replacement."""
    start, n = int(data.index.offsets[position]), int(data.index.n_labeled[position])
    return start + np.sort(rng.choice(n, rows_per_era, replace=False) if n > rows_per_era else np.arange(n))


def era_chunks(data: EraData, position: int, chunk_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray, slice]]:
    """All rows of one era in fixed-size chunks `(x_RxF, mask_R, rows)` for prediction.

    A fixed chunk size keeps the predict function's input shape constant across eras.
    """
    rows = data.index.rows(position)
    for start in range(rows.start, rows.stop, chunk_rows):
        stop = min(start + chunk_rows, rows.stop)
        x_RxF = np.zeros((chunk_rows, data.x_NxF.shape[1]), np.int8)
        x_RxF[: stop - start] = data.x_NxF[start:stop]
        mask_R = np.arange(chunk_rows) < stop - start
        yield x_RxF, mask_R, slice(start, stop)


def era_row_chunks(data: EraData, position: int, chunk_rows: int, offset: int) -> Iterator[tuple[np.ndarray, np.ndarray, slice]]:
    """`era_chunks` as row numbers into device-resident data, `(rows_R, mask_R, rows)` (-1 pads)."""
    rows = data.index.rows(position)
    for start in range(rows.start, rows.stop, chunk_rows):
        stop = min(start + chunk_rows, rows.stop)
        rows_R = np.full(chunk_rows, -1, np.int32)
        rows_R[: stop - start] = offset + np.arange(start, stop)
        yield rows_R, rows_R >= 0, slice(start, stop)
