"""What a run writes: prediction frames, per-era parts, the metrics log, resolved-era scores.

Every prediction file of the project (walk-forward, frozen, ridge, live submission) is built
by `prediction_frame`, so they share one `{id, era, prediction}` layout.
"""

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from dynjax.data.eras import resolved_eras
from dynjax.data.timeline import Timeline
from dynjax.eval.jax_corr import era_corr
from dynjax.eval.scores import prediction_frame
from dynjax.train.processes import is_writer

PARTS = "predictions_parts"
LIVE = "live"  # the live eras' parts, a subdirectory of PARTS replaced each round


def era_ids(timeline: Timeline, e: int) -> pl.Series:
    """Ids of every row of the era at timeline position `e`."""
    split, local = timeline.era(e)
    rows = split.index.rows(local)
    return split.ids[rows.start:rows.stop]


class MetricsLog:
    """Slash-named metrics as JSON lines in the run directory, each with its wall-clock `time`."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, **record) -> None:
        """Append one record; device values are pulled here, so call it every few steps only."""
        clean = {k: float(v) if hasattr(v, "__float__") and not isinstance(v, (int, str)) else v for k, v in record.items()}
        clean["time"] = round(time.time(), 3)  # when: a run's time to quality (benchmarks/walk_forward.py)
        if not np.isfinite(clean.get("train/loss", 0.0)):
            raise FloatingPointError(f"non-finite training loss at {record.get('phase')} step/era "
                                     f"{record.get('step', record.get('era'))}: {clean['train/loss']} (the checkpoints "
                                     "before it are kept; try a lower optim.learning_rate)")
        if not is_writer():
            return
        with self.path.open("a") as f:
            f.write(json.dumps(clean) + "\n")

    def rewind(self, walked_again: set[str] | None) -> None:
        """Drop the records a resumed run writes again: those of the eras it walks again (by their
        `walked` era; "next" among them), or with None (pretraining anew) every record."""
        if not is_writer() or not self.path.is_file():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        kept = [] if walked_again is None else [ln for ln in lines if json.loads(ln).get("walked") not in walked_again]
        if len(kept) < len(lines):
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(kept))
            tmp.replace(self.path)  # atomic: a kill here leaves the old log or the new one


def write_part(out: Path, timeline: Timeline, e: int, pred: np.ndarray, importance_F: np.ndarray,
               selected_F: np.ndarray, *, live: bool = False) -> None:
    """One predicted era: its predictions, and its importances with the features it used (process 0 writes)."""
    if not is_writer():
        return
    name = timeline.name(e)
    split, _ = timeline.era(e)
    parts = out / PARTS / LIVE if live else out / PARTS
    prediction_frame(era_ids(timeline, e), name, pred).write_parquet(parts / f"{name}.parquet")
    pl.DataFrame({"era": [name] * len(importance_F), "feature": list(split.features),
                  "importance": np.asarray(importance_F, np.float64), "selected": np.asarray(selected_F, bool)}
                 ).write_parquet(parts / f"{name}.selection.parquet")


def collect_parts(out: Path, names: Sequence[str]) -> None:
    """`predictions.parquet` and `selection.parquet` from the parts of the walk-forward eras
    `names` and of the live eras (process 0 writes)."""
    if not is_writer():
        return
    parts, live = out / PARTS, out / PARTS / LIVE
    files = [parts / f"{n}" for n in names] + sorted(p.with_suffix("") for p in live.glob("*.parquet")
                                                        if not p.name.endswith(".selection.parquet"))
    pl.concat([pl.read_parquet(f"{f}.parquet") for f in files]).write_parquet(out / "predictions.parquet")
    pl.concat([pl.read_parquet(f"{f}.selection.parquet") for f in files]).write_parquet(out / "selection.parquet")


class ResolvedScores:
    """Per-era corr of walk-forward predictions whose targets have resolved (the checkpoint metric).

    Each era's corr is taken when it is predicted (from the loaded labels; it counts only once
    the era has resolved); eras predicted before a resume are read back from their parts once.
    `rows`: the padded length of every era's corr (the run's, `RunContext.corr_rows`).
    """

    def __init__(self, out: Path, timeline: Timeline, embargo: int, rows: int):
        self.parts, self.timeline, self.embargo, self.rows, self.corr = out / PARTS, timeline, embargo, rows, {}

    def add(self, e: int, pred: np.ndarray) -> None:
        """Score era position `e`'s prediction (labeled rows come first in an era)."""
        split, local = self.timeline.era(e)
        rows = split.index.labeled_rows(local)
        n = rows.stop - rows.start
        self.corr[e] = era_corr(np.asarray(pred)[:n], split.y_NxT[rows, 0], self.rows) if n > 1 else float("nan")

    def read(self, e: int) -> np.ndarray:
        """Era position `e`'s predictions from its part (an era predicted before a resume)."""
        return pl.read_parquet(self.parts / f"{self.timeline.name(e)}.parquet")["prediction"].to_numpy()

    def mean_until(self, e: int, done: np.ndarray) -> float:
        """Mean corr over predicted eras `done` that are resolved when era position `e` is predicted."""
        done = np.asarray(done)
        known = done[resolved_eras(self.timeline.numbers_E[done], int(self.timeline.numbers_E[e]), self.embargo)]
        for d in known:
            if int(d) not in self.corr:
                self.add(int(d), self.read(int(d)))
        corrs = [self.corr[int(d)] for d in known]
        corrs = [c for c in corrs if np.isfinite(c)]
        return float(np.mean(corrs)) if corrs else 0.0
