"""What the model may know of each era besides its rows, built once per run on the host.

`EraFeatures` holds the context gates' evidence for every timeline position and the era after
the history, and is the one place that says whether the model reads an era context at all
(`reads_context`). Every context it hands out sees resolved eras only: the embargo is applied
where the evidence is windowed (`dynjax.data.evidence`).
"""

from dataclasses import dataclass

import jax
import numpy as np

from dynjax.config import ModelConfig, RunConfig
from dynjax.data.context import EraContext
from dynjax.data.evidence import bin_stats, timeline_evidence
from dynjax.data.numerai import EraData
from dynjax.data.timeline import Timeline


def reads_context(cfg: ModelConfig) -> bool:
    """Whether the model reads an era context: the context gates' evidence."""
    return cfg.gates == "context"


@dataclass(frozen=True, eq=False)
class EraFeatures:
    cfg: RunConfig
    evidence_ExFxV: np.ndarray | None  # gate inputs per timeline position (embargo applied)
    next_context: EraContext | None  # the era after the history's (resolved eras only, like any era's)

    def at(self, positions: np.ndarray) -> EraContext | None:
        """Context of the eras at `positions` (leading axis = len(positions)); None if the model reads none."""
        if not reads_context(self.cfg.model):
            return None
        return EraContext(self.evidence_ExFxV[np.asarray(positions)])

    def of(self, e: int) -> EraContext | None:
        """Context of the era at timeline position `e`, without a leading axis."""
        context = self.at(np.array([int(e)]))
        return None if context is None else jax.tree.map(lambda a: a[0], context)


def make_era_features(cfg: RunConfig, splits: list[EraData], timeline: Timeline, next_number: int) -> EraFeatures:
    """The evidence of every era of `splits`, if the config's model reads it."""
    if not reads_context(cfg.model):
        return EraFeatures(cfg, None, None)
    stats = tuple(np.concatenate(parts) for parts in zip(*(bin_stats(s) for s in splits)))
    # One pass over the cumulative statistics for every position and the era after the history.
    at_T = np.r_[timeline.numbers_E, next_number]
    evidence, next_evidence = np.split(
        timeline_evidence(stats, timeline.numbers_E, cfg.data.embargo_eras, cfg.model.evidence_eras, at_T), [timeline.n_eras])
    return EraFeatures(cfg, evidence, EraContext(next_evidence[0]))
