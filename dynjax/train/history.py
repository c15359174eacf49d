"""Fingerprints of what a run has learnt from, so that a resume or an update refuses changed history.

A checkpoint records a digest of the training split (ids, features, targets); for each
walk-forward era done, a digest of its ids and features; and for each such era whose
targets the state has trained on (resolved by the latest era done), a digest of its main
target. `dynjax update` continues the run on a newer data directory: the same eras must be
there, unchanged, except that targets may appear for eras not yet resolved (Numerai's
weekly resolution). Anything else would make the update differ from a fresh run over the
newer data, so it is refused with the era named.
"""

import hashlib
from dataclasses import dataclass, field

import numpy as np

from dynjax.data.eras import resolved_eras
from dynjax.data.numerai import EraData
from dynjax.data.timeline import Timeline


class ChangedHistory(ValueError):
    """Data that differ from what the run has already learnt from or predicted."""


def digest(*parts: np.ndarray | bytes) -> str:
    """A short hex digest of arrays (their bytes, shape and dtype) and byte strings."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            part = np.ascontiguousarray(part)
        h.update(memoryview(part).cast("B"))
    return h.hexdigest()


def rows_digest(split: EraData, rows: slice, *, targets: bool) -> str:
    """Digest of the ids and features of `rows` (and all their targets with `targets`)."""
    ids = "\x00".join(split.ids[rows.start : rows.stop].to_list()).encode()
    return digest(ids, split.x_NxF[rows], *([split.y_NxT[rows]] if targets else []))


def target_digest(split: EraData, local: int) -> str:
    """Digest of an era's main target (NaN where unknown)."""
    return digest(split.y_NxT[split.index.rows(local), 0])


@dataclass
class History:
    """What a run has used so far: see the module docstring. JSON in each checkpoint's meta."""

    train: str
    eras: list[list[str]] = field(default_factory=list)  # [name, digest] per walk-forward era done, in order
    targets: dict[str, str] = field(default_factory=dict)  # name -> main-target digest, eras trained on

    @classmethod
    def start(cls, timeline: Timeline) -> "History":
        train = timeline.splits[0]
        return cls(rows_digest(train, slice(0, train.n_rows), targets=True))

    def add(self, timeline: Timeline, predicted: np.ndarray, k: int, embargo: int) -> None:
        """Record the k-th walk-forward era, and the targets resolved when it was predicted."""
        e = int(predicted[k])
        split, local = timeline.era(e)
        self.eras.append([timeline.name(e), rows_digest(split, split.index.rows(local), targets=False)])
        done = predicted[: k + 1]
        for d in done[resolved_eras(timeline.numbers_E[done], int(timeline.numbers_E[e]), embargo)]:
            name = timeline.name(int(d))
            if name not in self.targets:
                self.targets[name] = target_digest(*timeline.era(int(d)))

    def to_json(self) -> dict:
        return {"train": self.train, "eras": self.eras, "targets": self.targets}

    @classmethod
    def from_json(cls, record: dict) -> "History":
        return cls(record["train"], [list(p) for p in record["eras"]], dict(record["targets"]))

    def check(self, timeline: Timeline, predicted: np.ndarray) -> None:
        """ChangedHistory unless `timeline` holds this history unchanged (new eras may follow)."""
        train = timeline.splits[0]
        if rows_digest(train, slice(0, train.n_rows), targets=True) != self.train:
            raise ChangedHistory(f"{train.source}: the training data differ from those the run was trained on "
                                 "(ids, features or targets); an update continues a run on the same history, so "
                                 "start a new run for changed data")
        if len(predicted) < len(self.eras):
            raise ChangedHistory(f"the run has already predicted {len(self.eras)} eras (up to {self.eras[-1][0]}) but "
                                 f"the data hold {len(predicted)} after the training eras: is this older data?")
        position = {}
        for k, (name, want) in enumerate(self.eras):
            e = int(predicted[k])
            split, local = timeline.era(e)
            if timeline.name(e) != name:
                raise ChangedHistory(f"{split.source}: walk-forward era {k + 1} is {timeline.name(e)!r} here, but the run "
                                     f"predicted era {name!r} there; an update's data must extend the run's eras")
            if rows_digest(split, split.index.rows(local), targets=False) != want:
                raise ChangedHistory(f"{split.source}: era {name}, already predicted, has different ids or features "
                                     "than when the run predicted it; start a new run for changed history")
            position[name] = e
        for name, want in self.targets.items():
            split, local = timeline.era(position[name])
            if target_digest(split, local) != want:
                raise ChangedHistory(f"{split.source}: the targets of era {name}, which the run has already trained on, "
                                     "have changed; start a new run for changed history")
