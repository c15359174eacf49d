"""Era bookkeeping: Numerai's era order, row offsets per era, and the embargo rule."""

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from dynjax.data.errors import DataError, preview


def era_numbers(eras: pl.Series, source: object, *, live_after: int | None = None) -> np.ndarray:
    """Numeric era keys ("0001" -> 1, "era12" -> 12), the order Numerai sorts eras in.

    `live_after`: a live file, whose era label may be non-numeric ("X", "eraX": Numerai marks
    the live era so); such an era is placed right after era `live_after` (and after any
    numbered era of the file). Training and validation files keep the numeric rule.
    """
    as_text = eras.cast(pl.String)
    if as_text.null_count() or (as_text.str.len_chars() == 0).any():
        raise DataError(source, "column 'era' has empty or null values")
    numbers = as_text.str.extract(r"(\d+)$").cast(pl.Int64, strict=False)
    if numbers.null_count():
        bad = as_text.filter(numbers.is_null()).unique().sort().to_list()
        if live_after is None:
            raise DataError(source, f"era labels without a trailing era number: {preview(bad)}")
        if len(bad) > 1:
            raise DataError(source, f"a live file may hold one era without a number, got {len(bad)}: {preview(bad)}")
        numbers = numbers.fill_null(max(int(live_after), numbers.max() or 0) + 1)
    return numbers.to_numpy()


@dataclass(frozen=True, eq=False)
class EraIndex:
    """Eras of one split in order, with each era's contiguous block of rows.

    Rows are stored era by era; inside an era the rows with a main target come first, so
    `offsets[e] : offsets[e] + n_labeled[e]` are the rows training may sample.
    """

    names: tuple[str, ...]
    numbers: np.ndarray  # int64 [E]
    offsets: np.ndarray  # int64 [E + 1]
    n_labeled: np.ndarray  # int64 [E]

    @property
    def n_eras(self) -> int:
        return len(self.names)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def rows(self, e: int) -> slice:
        """Rows of the era at position `e`."""
        return slice(int(self.offsets[e]), int(self.offsets[e + 1]))

    def labeled_rows(self, e: int) -> slice:
        """Rows of the era at position `e` that have a main target."""
        start = int(self.offsets[e])
        return slice(start, start + int(self.n_labeled[e]))

    def position(self, era: str | int) -> int:
        """Position of an era given by name or number."""
        if isinstance(era, str):
            hits = [i for i, name in enumerate(self.names) if name == era]
        else:
            hits = np.flatnonzero(self.numbers == int(era)).tolist()
        if len(hits) == 0:
            raise KeyError(f"era {era!r} is not in this split")
        return int(hits[0])


def build_era_index(names: Sequence[str], numbers: np.ndarray, labeled: np.ndarray) -> EraIndex:
    """Index from per-row era names/numbers and label flags already sorted by era."""
    starts = np.flatnonzero(np.r_[True, numbers[1:] != numbers[:-1]]) if len(numbers) else np.array([], int)
    offsets = np.r_[starts, len(numbers)].astype(np.int64)
    n_labeled = np.add.reduceat(labeled.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
    return EraIndex(
        names=tuple(str(names[int(i)]) for i in starts),
        numbers=numbers[starts].astype(np.int64),
        offsets=offsets,
        n_labeled=n_labeled.astype(np.int64),
    )


DAYS_PER_ERA = 5  # eras are weekly: five trading days
_HORIZON_DAYS = re.compile(r"_(\d+)$")
DEFAULT_HORIZON_DAYS = 20  # Numerai's `target` is target_ender_20; a name without `_<days>` is taken as 20 days


def horizon_days(target: str) -> int:
    """Trading days a target looks ahead: its `_<days>` suffix (`target`: Numerai's 20-day main target)."""
    match = _HORIZON_DAYS.search(target)
    return int(match.group(1)) if match else DEFAULT_HORIZON_DAYS


def target_horizon(target: str) -> int:
    """Eras until a target resolves, the least embargo it allows (`target_ender_60`: 12, `target`: 4)."""
    return -(-horizon_days(target) // DAYS_PER_ERA)


def embargo_reason(target: str, embargo: int) -> str:
    """Why a run's embargo is what it is, for the printed schedule and the report."""
    why = f"{target} resolves {horizon_days(target)} trading days ({target_horizon(target)} eras) after its era"
    return why if embargo == target_horizon(target) else f"{why}; data.embargo sets {embargo}"


def last_resolved_era(t: int, embargo: int) -> int:
    """Latest era whose target is known when era `t` is predicted.

    A target looks its horizon ahead (20 trading days: 4 weekly eras; 60: 12; `target_horizon`),
    so era e's target resolves only after era e + embargo; at prediction time of era t that leaves
    eras <= t - 1 - embargo. This is the one place the rule lives; `DataConfig.embargo_eras` the
    one place the embargo is chosen.
    """
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0 eras, got {embargo}")
    return int(t) - 1 - int(embargo)


def resolved_eras(numbers_E: np.ndarray, t: int, embargo: int) -> np.ndarray:
    """Boolean mask of eras whose targets may be used when predicting era `t`."""
    return np.asarray(numbers_E) <= last_resolved_era(t, embargo)


def sliding_windows(positions: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Windows of `window` consecutive era positions, `stride` apart, in era order: [n, W]."""
    positions = np.asarray(positions, dtype=np.int64)
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    if len(positions) < window:
        return np.zeros((0, window), np.int64)
    starts = np.arange(0, len(positions) - window + 1, stride)
    return positions[starts[:, None] + np.arange(window)[None, :]]
