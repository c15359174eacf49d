"""Covers dynjax.train.replay: reservoir insertion, stored outputs, sampling, resolved eras only."""

import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.data.eras import resolved_eras
from dynjax.train.replay import (
    empty_buffer,
    offer,
    reservoir_slot,
    sample_replay,
    similarity_weights,
)


def _outputs(eras):
    return np.stack([np.full((1, 4), float(e)) for e in eras])


def test_reservoir_holds_capacity_and_outputs_follow_their_era():
    buffer = offer(empty_buffer(5, 4), np.arange(40), _outputs, seed=0)
    era_C = np.asarray(buffer.era_C)
    assert int(buffer.n_seen) == 40 and len(set(era_C)) == 5 and (era_C >= 0).all()
    np.testing.assert_array_equal(np.asarray(buffer.out_CxGxR)[:, 0, 0], era_C)  # each slot stores its own era's outputs
    assert era_C.max() >= 5  # later eras do get in


def test_insertion_is_a_function_of_seed_and_era_so_resumes_match():
    whole = offer(empty_buffer(4, 4), np.arange(30), _outputs, seed=3)
    half = offer(empty_buffer(4, 4), np.arange(12), _outputs, seed=3)
    resumed = offer(half, np.arange(12, 30), _outputs, seed=3)
    np.testing.assert_array_equal(whole.era_C, resumed.era_C)
    np.testing.assert_array_equal(whole.out_CxGxR, resumed.out_CxGxR)
    other = offer(empty_buffer(4, 4), np.arange(30), _outputs, seed=4)
    assert not np.array_equal(whole.era_C, other.era_C)


def test_reservoir_is_uniform_over_offered_eras():
    counts = np.zeros(20)
    for seed in range(400):
        era_C = np.asarray(offer(empty_buffer(4, 1), np.arange(20), lambda e: np.zeros((len(e), 1, 1)), seed).era_C)
        counts[era_C] += 1
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()
    assert reservoir_slot(2, 4, 0, 2) == 2  # not full yet: the next free slot


def test_eras_must_be_offered_in_timeline_order():
    buffer = offer(empty_buffer(3, 2), np.arange(4), lambda e: np.zeros((len(e), 1, 2)), 0)
    with pytest.raises(ValueError, match="offered out of order"):
        offer(buffer, np.array([7]), lambda e: np.zeros((len(e), 1, 2)), 0)


def test_sampling_never_returns_an_era_unresolved_at_the_predicted_era():
    numbers = np.r_[np.arange(1, 31), np.arange(36, 60)]  # a gap, like train -> validation
    embargo, buffer, rng = 4, empty_buffer(8, 2), np.random.default_rng(0)
    for t in numbers[10:]:
        resolved = np.flatnonzero(resolved_eras(numbers, int(t), embargo))
        buffer = offer(buffer, resolved[int(buffer.n_seen):], lambda e: np.zeros((len(e), 1, 2)), seed=1)
        slots = sample_replay(buffer, 6, rng)
        assert (numbers[np.asarray(buffer.era_C)[slots]] <= t - 1 - embargo).all()


def test_sampling_without_replacement_and_by_weight():
    buffer = offer(empty_buffer(6, 2), np.arange(6), lambda e: np.zeros((len(e), 1, 2)), 0)
    slots = sample_replay(buffer, 6, np.random.default_rng(0))
    assert sorted(slots.tolist()) == list(range(6))
    weights = np.array([0, 0, 1.0, 0, 0, 0])
    assert set(sample_replay(buffer, 3, np.random.default_rng(0), weights).tolist()) == {2}
    with pytest.raises(ValueError, match="empty"):
        sample_replay(empty_buffer(3, 2), 1, np.random.default_rng(0))


def test_similar_sampling_prefers_eras_that_look_like_the_latest_resolved_ones():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(30), rng.standard_normal(30)
    summary = np.stack([a + 0.1 * rng.standard_normal(30) if e % 2 else b + 0.1 * rng.standard_normal(30) for e in range(10)])
    buffer = offer(empty_buffer(8, 1), np.arange(8), lambda e: np.zeros((len(e), 1, 1)), 0)
    w = similarity_weights(buffer, summary, np.array([8, 9]), temperature=0.1)  # latest: era 9 ~ a, era 8 ~ b
    w_odd = similarity_weights(buffer, summary, np.array([9]), temperature=0.1)
    era_C = np.asarray(buffer.era_C)
    assert w.sum() == pytest.approx(1.0) and w_odd[era_C % 2 == 1].sum() > 0.99
    assert jnp.isfinite(jnp.asarray(w)).all()
