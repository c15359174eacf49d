"""Covers experiments.record's settings: NAME@SEED is another draw of a named synthetic setting."""

import pytest

from dynjax.data.synth import SETTINGS
from experiments.record import setting_order, setting_overrides


def test_a_redraw_is_the_setting_with_another_data_seed():
    assert setting_overrides("switching") == SETTINGS["switching"]
    assert setting_overrides("switching@101") == {**SETTINGS["switching"], "seed": 101}
    assert setting_overrides("default@7") == {"seed": 7}


@pytest.mark.parametrize("bad", ["nosuch", "nosuch@1", "switching@", "switching@x"])
def test_unknown_settings_and_bad_seeds_are_refused(bad):
    with pytest.raises(ValueError, match="unknown setting"):
        setting_overrides(bad)


def test_redraws_sort_after_their_setting_in_the_settings_order():
    names = ["noisy@2", "switching@101", "default", "noisy", "switching"]
    assert sorted(names, key=setting_order) == ["default", "switching", "switching@101", "noisy", "noisy@2"]
