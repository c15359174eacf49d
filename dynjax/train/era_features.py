"""What the model may know of each era besides its rows, built once per run on the host.

`EraFeatures` holds the per-era summaries (each feature's corr with the target, for the era
encoder) and the context gates' evidence, for every timeline position
and the era after the history, and is the one place that says whether the model reads an era
context at all (`reads_context`). Every context it hands out sees resolved eras only: the
embargo is applied where the summaries and evidence are windowed (`dynjax.data.context`,
`dynjax.data.evidence`).
"""

from dataclasses import dataclass

import jax
import numpy as np

from dynjax.config import ModelConfig, RunConfig
from dynjax.data.context import EraContext, context_window, era_summaries, window_context
from dynjax.data.evidence import bin_stats, timeline_evidence
from dynjax.data.numerai import EraData
from dynjax.data.timeline import Timeline


def reads_context(cfg: ModelConfig) -> bool:
    """Whether the model reads an era context: the encoder's summaries, or the context gates' evidence."""
    return cfg.context or cfg.gates == "context"


@dataclass(frozen=True, eq=False)
class EraFeatures:
    cfg: RunConfig
    numbers_E: np.ndarray  # era numbers of the timeline positions
    summary_ExF: np.ndarray | None  # per-era feature-target correlations (the era encoder's input)
    evidence_ExFxV: np.ndarray | None  # gate inputs per timeline position (embargo applied)
    next_context: EraContext | None  # the era after the history's (resolved eras only, like any era's)

    def at(self, positions: np.ndarray) -> EraContext | None:
        """Context of the eras at `positions` (leading axis = len(positions)); None if the model reads none."""
        cfg = self.cfg.model
        if not reads_context(cfg):
            return None
        positions = np.asarray(positions)
        summary = (window_context(self.summary_ExF, self.numbers_E, positions, self.cfg.data.embargo_eras, cfg.context_eras)
                   if cfg.context else (None, None))
        return EraContext(*summary, self.evidence_ExFxV[positions] if cfg.gates == "context" else None)

    def of(self, e: int) -> EraContext | None:
        """Context of the era at timeline position `e`, without a leading axis."""
        context = self.at(np.array([int(e)]))
        return None if context is None else jax.tree.map(lambda a: a[0], context)


def make_era_features(cfg: RunConfig, splits: list[EraData], timeline: Timeline, next_number: int) -> EraFeatures:
    """Summaries and evidence of every era of `splits` that the config's model reads."""
    summary_ExF = np.concatenate([era_summaries(s) for s in splits]) if cfg.model.context else None
    evidence, next_evidence = None, None
    if cfg.model.gates == "context":
        stats = tuple(np.concatenate(parts) for parts in zip(*(bin_stats(s) for s in splits)))
        # One pass over the cumulative statistics for every position and the era after the history.
        at_T = np.r_[timeline.numbers_E, next_number]
        evidence, next_evidence = np.split(
            timeline_evidence(stats, timeline.numbers_E, cfg.data.embargo_eras, cfg.model.evidence_eras, at_T), [timeline.n_eras])
    next_context = None
    if reads_context(cfg.model):
        summary = (context_window(summary_ExF, timeline.numbers_E, next_number, cfg.data.embargo_eras, cfg.model.context_eras)
                   if cfg.model.context else (None, None))
        next_context = EraContext(*summary, next_evidence[0] if next_evidence is not None else None)
    return EraFeatures(cfg, timeline.numbers_E, summary_ExF, evidence, next_context)
