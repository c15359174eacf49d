"""Rehearsal for the walk-forward (DER++, after Dynamos): a buffer of resolved eras.

The buffer holds era positions, never copies of the data, and for each the outputs the
model gave at insertion on that era's *replay rows* (a fixed sample of R rows drawn from
`(seed, era)`, so a replayed era always shows the same rows and the stored outputs line up
with them). Eras are offered in timeline order as they resolve; resolved eras are a prefix
of the timeline, so `n_seen` is also the next position to offer, and nothing unresolved can
ever enter. Insertion is reservoir sampling with a stream per `(seed, era)`, so a resumed
run fills the buffer exactly as an uninterrupted one. The buffer is part of the checkpoint.

Sampling: "reservoir" draws uniformly from the buffer; "similar" draws the eras whose own
feature-target correlations look most like the pooled correlations of the latest resolved
eras (replay from the regime the data seems to be in, by evidence known at the time).
"""

import jax.numpy as jnp
import numpy as np
from flax import struct

from dynjax.data.windows import window_rng

INSERT, ROWS, SAMPLE = 11, 12, 13  # streams of the sampling rng


@struct.dataclass
class ReplayBuffer:
    era_C: jnp.ndarray  # int32 timeline positions, -1 for an empty slot
    out_CxGxR: jnp.ndarray  # float32: each trial's mean member output on the era's replay rows at insertion
    n_seen: jnp.ndarray  # int32: eras offered so far (= the next timeline position to offer)


def empty_buffer(capacity: int, rows: int, groups: int = 1) -> ReplayBuffer:
    """An empty buffer that stores the outputs of `groups` trials (1 for a run)."""
    return ReplayBuffer(jnp.full((capacity,), -1, jnp.int32), jnp.zeros((capacity, groups, rows), jnp.float32),
                        jnp.zeros((), jnp.int32))


def reservoir_slot(n_seen: int, capacity: int, seed: int, era: int) -> int:
    """Slot for the `n_seen`-th offered era (0-based), or -1 to skip it (Vitter's algorithm R)."""
    if n_seen < capacity:
        return n_seen
    j = int(window_rng(seed, INSERT, era).integers(n_seen + 1))
    return j if j < capacity else -1


def replay_rows_rng(seed: int, era: int) -> np.random.Generator:
    """The stream that picks an era's replay rows: the same rows at insertion and on every replay."""
    return window_rng(seed, ROWS, era)


def offer(buffer: ReplayBuffer, eras: np.ndarray, outputs_of, seed: int) -> ReplayBuffer:
    """Offer newly resolved eras (timeline order); `outputs_of(eras) -> [n, G, R]` for the admitted ones."""
    era_C, out_CxGxR = np.array(buffer.era_C), np.array(buffer.out_CxGxR)
    n_seen = int(buffer.n_seen)
    admitted = []
    for e in eras:
        if int(e) != n_seen:
            raise ValueError(f"replay buffer: era position {int(e)} offered out of order (expected {n_seen})")
        slot = reservoir_slot(n_seen, len(era_C), seed, int(e))
        if slot >= 0:
            era_C[slot] = e
            admitted.append((slot, int(e)))
        n_seen += 1
    # Only the last era to take a slot keeps it: compute outputs for those alone.
    final = {slot: e for slot, e in admitted}
    if final:
        slots = np.array(sorted(final))
        out_CxGxR[slots] = outputs_of(np.array([final[s] for s in slots]))
    return ReplayBuffer(jnp.asarray(era_C), jnp.asarray(out_CxGxR), jnp.asarray(n_seen, jnp.int32))


def sample_replay(buffer: ReplayBuffer, k: int, rng: np.random.Generator, weights_C: np.ndarray | None = None) -> np.ndarray:
    """Slots of `k` buffer entries, drawn by `weights_C` if given (without replacement while
    enough entries can be drawn)."""
    filled = np.flatnonzero(np.asarray(buffer.era_C) >= 0)
    if len(filled) == 0:
        raise ValueError("replay buffer is empty: no resolved era to replay")
    p, n_possible = None, len(filled)
    if weights_C is not None:
        w = np.asarray(weights_C, np.float64)[filled]
        p, n_possible = (w / w.sum(), int((w > 0).sum())) if w.sum() > 0 else (None, n_possible)
    return rng.choice(filled, k, replace=n_possible < k, p=p)


def similarity_weights(buffer: ReplayBuffer, summary_ExF: np.ndarray, recent: np.ndarray, temperature: float) -> np.ndarray:
    """Per slot: softmax of the correlation between the era's summary and the recent eras' mean summary."""
    era_C = np.asarray(buffer.era_C)
    profile_F = summary_ExF[recent].mean(axis=0)
    rows_CxF = summary_ExF[np.maximum(era_C, 0)]
    sim_C = _row_corr(rows_CxF, profile_F)
    logits = np.where(era_C >= 0, sim_C / temperature, -np.inf)
    w = np.exp(logits - logits.max())
    return w / w.sum()


def _row_corr(a_CxF: np.ndarray, b_F: np.ndarray) -> np.ndarray:
    a = a_CxF - a_CxF.mean(axis=1, keepdims=True)
    b = b_F - b_F.mean()
    return (a @ b) / (np.sqrt((a**2).sum(axis=1) * (b @ b)) + 1e-12)
