"""One era timeline over several splits (train, then validation, then live), in era order.

The walk-forward treats the splits as one history: era positions are global, and each
maps back to its split and local position, so nothing is concatenated on the host (real
validation data alone is ~9 GB of int8 features); rows have global numbers too (the split's
first row plus the local row), the rows of the splits stacked on the device
(`dynjax.data.resident`).
"""

from dataclasses import dataclass

import numpy as np

from dynjax.data.eras import resolved_eras
from dynjax.data.numerai import EraData
from dynjax.data.resident import row_offsets


@dataclass(frozen=True, eq=False)
class Timeline:
    splits: tuple[EraData, ...]
    numbers_E: np.ndarray  # era numbers, strictly increasing
    split_E: np.ndarray  # which split holds the era
    local_E: np.ndarray  # the era's position inside its split
    offsets_S: np.ndarray  # each split's first row in the splits' rows stacked

    @property
    def n_eras(self) -> int:
        return len(self.numbers_E)

    def era(self, e: int) -> tuple[EraData, int]:
        """(split, local position) of global era position `e`."""
        return self.splits[int(self.split_E[e])], int(self.local_E[e])

    def row_offset(self, e: int) -> int:
        """The first row of era position `e`'s split among the stacked rows of every split."""
        return int(self.offsets_S[int(self.split_E[e])])

    def name(self, e: int) -> str:
        split, local = self.era(e)
        return split.index.names[local]

    def resolved(self, e: int, embargo: int) -> np.ndarray:
        """Global positions of eras whose targets are known when era position `e` is predicted."""
        return self.resolved_at(int(self.numbers_E[e]), embargo)

    def resolved_at(self, t: int, embargo: int) -> np.ndarray:
        """Global positions of eras whose targets are known when era number `t` is predicted."""
        return np.flatnonzero(resolved_eras(self.numbers_E, t, embargo))


def make_timeline(*splits: EraData) -> Timeline:
    """Chain splits whose eras follow each other; raises if eras overlap or go back in time."""
    numbers = np.concatenate([s.index.numbers for s in splits])
    if np.any(np.diff(numbers) <= 0):
        raise ValueError("splits overlap or are out of era order: " + ", ".join(
            f"{s.source} [{s.index.names[0]}..{s.index.names[-1]}]" for s in splits))
    split_E = np.concatenate([np.full(s.index.n_eras, i) for i, s in enumerate(splits)])
    local_E = np.concatenate([np.arange(s.index.n_eras) for s in splits])
    return Timeline(tuple(splits), numbers, split_E, local_E, row_offsets(splits))
