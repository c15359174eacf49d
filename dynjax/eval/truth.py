"""Ground truth of synthetic data (`truth/` beside the parquet files): active sets and oracle scores."""

from pathlib import Path

import numpy as np
import polars as pl

from dynjax.eval.scores import per_era_corr, summarize


def has_truth(data_dir: str | Path) -> bool:
    return (Path(data_dir) / "truth" / "signal.parquet").is_file()


def active_features(data_dir: str | Path) -> dict[str, set[str]]:
    """Era name -> the features that carry signal in that era."""
    active = pl.read_parquet(Path(data_dir) / "truth" / "active.parquet")
    return {era: set(part["feature"]) for (era,), part in active.group_by("era")}


def oracle_scores(data_dir: str | Path, split: str = "validation", target: str = "target") -> tuple[pl.DataFrame, dict]:
    """Per-era corr of the noise-free signal with the target: the attainable correlation."""
    data_dir = Path(data_dir)
    signal = pl.read_parquet(data_dir / "truth" / "signal.parquet")
    rows = pl.read_parquet(data_dir / f"{split}.parquet", columns=["id", "era", target])
    per_era = per_era_corr(rows.join(signal.drop("era"), on="id"), "signal", target)
    return per_era, summarize(per_era["corr"].to_numpy())


def selection_recall(selected: dict[str, set[str]], truth: dict[str, set[str]]) -> np.ndarray:
    """Per era (in `selected`'s order): fraction of truly active features that were selected."""
    return np.array([len(feats & truth[era]) / max(1, len(truth[era])) for era, feats in selected.items()])
