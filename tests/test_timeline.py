"""Covers dynjax.data.timeline: chaining splits in era order and the embargo over the chain."""

import pytest

from dynjax.data import load_numerai
from dynjax.data.timeline import make_timeline


def test_chain_maps_global_positions_back_to_splits(synth_dir):
    data = load_numerai(synth_dir)
    tl = make_timeline(data.train, data.validation, data.live)
    assert tl.n_eras == data.train.index.n_eras + data.validation.index.n_eras + 1
    first_val = data.train.index.n_eras
    split, local = tl.era(first_val)
    assert split is data.validation and local == 0 and tl.name(first_val) == data.validation.index.names[0]
    # First validation era (17): targets up to era 12 are known, i.e. all 12 train eras.
    assert tl.resolved(first_val, 4).tolist() == list(range(12))


def test_overlapping_splits_are_refused(synth_dir):
    data = load_numerai(synth_dir)
    with pytest.raises(ValueError, match="out of era order"):
        make_timeline(data.validation, data.train)
