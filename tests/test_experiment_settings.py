"""Covers experiments.record's settings (NAME@SEED is another draw of a named synthetic setting) and experiments.neutral_view."""

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


def test_the_neutral_view_averages_the_variants_finished_runs_only(tmp_path):
    import json

    from experiments.neutral_view import view

    def run(name, corr, neutral_corr, **extra):
        out = tmp_path / "runs" / "noisy" / name
        out.mkdir(parents=True)
        block = lambda c: {"corr_mean": c, "corr_sharpe": 10 * c, "max_exposure_mean": c / 2}
        metrics = {"dynjax": block(corr), "neutral": {**block(neutral_corr), "proportion": 0.5}, **extra}
        (out / "metrics.json").write_text(json.dumps(metrics))

    run("default-s0", 0.2, 0.1)
    run("default-s1", 0.4, 0.3)
    run("other-s0", 0.9, 0.9)  # another variant
    (tmp_path / "runs" / "noisy" / "default-s2").mkdir()  # unfinished: no metrics.json
    r = view(tmp_path, "noisy", "default")
    assert r["seeds"] == 2 and r["proportion"] == 0.5
    assert r["raw"] == pytest.approx({"corr": 0.3, "sharpe": 3.0, "exposure": 0.15})
    assert r["neutral"] == pytest.approx({"corr": 0.2, "sharpe": 2.0, "exposure": 0.1})
    assert view(tmp_path, "switching", "default") is None
