"""Run plots as PNG (matplotlib is the optional `viz` extra; without it, plots are skipped)."""

from pathlib import Path

import numpy as np
import polars as pl


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_plots(out: Path, per_era: pl.DataFrame, selection: pl.DataFrame, top: int = 30) -> list[Path]:
    """Cumulative per-era corr, importance heatmap of the top features, selected count per era."""
    if not have_matplotlib():
        return []
    # Figures without pyplot: no global state or GUI backend, and pyplot's import (~0.5 s) is not paid.
    from matplotlib.figure import Figure

    paths = []
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    for col in [c for c in per_era.columns if c.startswith("corr_")]:
        ax.plot(np.cumsum(np.nan_to_num(per_era[col].to_numpy())), label=col.removeprefix("corr_"))
    ax.set(xlabel="era", ylabel="cumulative corr", title="Cumulative per-era numerai_corr")
    ax.legend()
    paths.append(_save(fig, out / "cumulative_corr.png"))

    pivot = selection.pivot(on="feature", index="era", values="importance").sort("era")
    feats = pivot.drop("era").mean().transpose(include_header=True, column_names=["m"]).sort("m", descending=True)["column"][:top].to_list()
    fig = Figure(figsize=(10, 5))
    ax = fig.subplots()
    im = ax.imshow(pivot.select(feats).to_numpy().T, aspect="auto", cmap="viridis")
    ax.set(xlabel="era", ylabel="feature", title=f"Attention importance, top {len(feats)} features")
    ax.set_yticks(range(len(feats)), feats, fontsize=6)
    fig.colorbar(im, ax=ax)
    paths.append(_save(fig, out / "importance_heatmap.png"))

    counts = selection.group_by("era", maintain_order=True).agg(pl.col("selected").sum()).sort("era")
    fig = Figure(figsize=(9, 3))
    ax = fig.subplots()
    ax.plot(counts["selected"].to_numpy())
    ax.set(xlabel="era", ylabel="features selected", title="Selected features per era")
    paths.append(_save(fig, out / "selected_count.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
