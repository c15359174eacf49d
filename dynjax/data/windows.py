"""Era windows: the unit of training work, `x: int8[W, R, F]`, `y: f32[W, R]`, `mask: bool[W, R]`."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dynjax.data.numerai import EraData


@dataclass(frozen=True, eq=False)
class Batch:
    """One window of W eras with R rows each; padded rows have `mask_WxR == False`."""

    x_WxRxF: np.ndarray  # int8
    y_WxR: np.ndarray  # float32, 0 where masked
    mask_WxR: np.ndarray  # bool
    era_W: np.ndarray  # int64 era numbers


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
    eras: Sequence[tuple[EraData, int]], rows_per_era: int, rng: np.random.Generator, target: int = 0
) -> Batch:
    """`sample_window` over eras that may come from different splits: `(split, position)` pairs."""
    w, r = len(eras), rows_per_era
    x_WxRxF = np.zeros((w, r, eras[0][0].x_NxF.shape[1]), np.int8)
    y_WxR = np.zeros((w, r), np.float32)
    mask_WxR = np.zeros((w, r), bool)
    for i, (data, e) in enumerate(eras):
        start, n = int(data.index.offsets[e]), int(data.index.n_labeled[e])
        rows = start + np.sort(rng.choice(n, r, replace=False) if n > r else np.arange(n))
        x_WxRxF[i, : len(rows)] = data.x_NxF[rows]
        y_WxR[i, : len(rows)] = data.y_NxT[rows, target]
        mask_WxR[i, : len(rows)] = True
    era_W = np.array([data.index.numbers[e] for data, e in eras], np.int64)
    return Batch(x_WxRxF, y_WxR, mask_WxR, era_W)


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
