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
    stats: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # `bin_stats` per position (train.recall)

    def most_like(self, resolved: np.ndarray, k: int, probe: int) -> np.ndarray:
        """The `k` eras of `resolved` (timeline positions, in order) whose mean target per feature bin
        is most like the latest `probe` resolved eras' pooled (cosine), in timeline order."""
        sum_ExFxB, count_ExFxB, _ = self.stats
        profile = lambda s, c: (s / np.maximum(c, 1.0)).ravel()
        latest = resolved[-probe:]
        probe_D = profile(sum_ExFxB[latest].sum(0), count_ExFxB[latest].sum(0))
        profiles_ExD = (sum_ExFxB[resolved] / np.maximum(count_ExFxB[resolved], 1.0)).reshape(len(resolved), -1)
        cos_E = profiles_ExD @ probe_D / (np.linalg.norm(profiles_ExD, axis=1) * np.linalg.norm(probe_D) + 1e-12)
        return np.sort(resolved[np.argsort(-cos_E, kind="stable")[:k]])

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
    """The evidence of every era of `splits`, if the config's model reads it (and the eras' bin
    statistics, if the walk-forward recalls eras by them: `train.recall`)."""
    if not (reads_context(cfg.model) or cfg.train.recall):
        return EraFeatures(cfg, None, None)
    stats = tuple(np.concatenate(parts) for parts in zip(*(bin_stats(s) for s in splits)))
    kept = stats if cfg.train.recall else None
    if not reads_context(cfg.model):
        return EraFeatures(cfg, None, None, kept)
    # One pass over the cumulative statistics for every position and the era after the history.
    at_T = np.r_[timeline.numbers_E, next_number]
    evidence, next_evidence = np.split(
        timeline_evidence(stats, timeline.numbers_E, cfg.data.embargo_eras, cfg.model.evidence_eras, at_T), [timeline.n_eras])
    return EraFeatures(cfg, evidence, EraContext(next_evidence[0]), kept)
