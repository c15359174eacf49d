"""A compact description of loaded splits: sizes, eras, missingness, targets, the embargo schedule."""

import numpy as np

from dynjax.data.bins import MISSING
from dynjax.data.eras import last_resolved_era, resolved_eras
from dynjax.data.numerai import EraData, NumeraiData


def describe_split(split: EraData) -> dict:
    """Rows, eras, era sizes, missing rate, and main-target coverage of one split."""
    sizes = split.index.sizes
    n_missing = sum(int((split.x_NxF[s : s + 65536] == MISSING).sum()) for s in range(0, split.n_rows, 65536))
    y = split.y_NxT[:, 0]
    return {
        "rows": split.n_rows,
        "eras": split.index.n_eras,
        "first_era": split.index.names[0],
        "last_era": split.index.names[-1],
        "rows_per_era_min": int(sizes.min()),
        "rows_per_era_max": int(sizes.max()),
        "features": len(split.features),
        "feature_bytes_int8": int(split.x_NxF.nbytes),
        "missing_rate": n_missing / max(1, split.x_NxF.size),
        "labeled_rows": int(split.index.n_labeled.sum()),
        "target_mean": float(np.nanmean(y)) if np.isfinite(y).any() else float("nan"),
    }


def walk_forward_schedule(data: NumeraiData, embargo: int) -> dict:
    """Which eras the walk-forward predicts and how much resolved history each one sees."""
    if data.validation is None:
        return {"predicted_eras": 0}
    val = data.validation.index
    all_numbers = np.r_[data.train.index.numbers, val.numbers]
    known = [int(resolved_eras(all_numbers, t, embargo).sum()) for t in val.numbers]
    return {
        "embargo": embargo,
        "predicted_eras": val.n_eras,
        "first_predicted": val.names[0],
        "last_resolved_at_first": last_resolved_era(int(val.numbers[0]), embargo),
        "resolved_eras_at_first": known[0],
        "resolved_eras_at_last": known[-1],
    }


def describe(data: NumeraiData, embargo: int) -> dict:
    splits = {"train": data.train, "validation": data.validation, "live": data.live}
    out = {name: describe_split(s) for name, s in splits.items() if s is not None}
    out["schedule"] = walk_forward_schedule(data, embargo)
    return out
