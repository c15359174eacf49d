"""Covers dynjax.eval.plots: the three run plots are written as PNG files."""

import numpy as np
import polars as pl

from dynjax.eval.plots import write_plots


def test_writes_three_pngs(tmp_path):
    eras = [f"{e:04d}" for e in range(6)]
    per_era = pl.DataFrame({"era": eras, "corr_dynjax": np.linspace(0, 0.1, 6), "corr_ridge": np.full(6, 0.02)})
    selection = pl.DataFrame({
        "era": [e for e in eras for _ in range(4)],
        "feature": [f"feature_{j}" for _ in eras for j in range(4)],
        "importance": np.random.default_rng(0).random(24),
        "selected": [j < 2 for _ in eras for j in range(4)],
    })
    paths = write_plots(tmp_path, per_era, selection)
    assert [p.name for p in paths] == ["cumulative_corr.png", "importance_heatmap.png", "selected_count.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
