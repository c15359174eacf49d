"""The ridge baseline, on the same eras and the same walk-forward schedule as the model.

Ridge on the centred float view of the features (missing -> 0), fit from per-era
sufficient statistics (X'X, X'y of R sampled rows per era), so each walk-forward update
adds the newly resolved eras in O(F^2) instead of refitting from scratch.
"""

import numpy as np
import polars as pl
from scipy.linalg import solve

from dynjax.data.bins import float_view_np
from dynjax.data.timeline import Timeline
from dynjax.data.windows import window_rng
from dynjax.eval.scores import prediction_frame

RIDGE = 2


def ridge_walk_forward(timeline: Timeline, predicted: np.ndarray, embargo: int, *, alpha: float = 100.0,
                       rows_per_era: int = 512, seed: int = 0, skip: frozenset[str] = frozenset()) -> pl.DataFrame | None:
    """Predictions (`id`, `era`, `prediction`) of a ridge refit on all resolved eras before each era.

    Eras named in `skip` (predicted before) are neither solved for nor predicted; None if that is all.
    """
    n_features = timeline.splits[0].x_NxF.shape[1]
    xtx = np.zeros((n_features + 1, n_features + 1))
    xty = np.zeros(n_features + 1)
    added = 0  # resolved eras are a prefix of the timeline, so a count tracks what is folded in
    frames = []
    for e in predicted:
        resolved = timeline.resolved(int(e), embargo)
        for r in resolved[added:]:
            split, local = timeline.era(int(r))
            rows = split.index.labeled_rows(local)
            take = np.arange(rows.start, rows.stop)
            if len(take) > rows_per_era:
                take = np.sort(window_rng(seed, RIDGE, int(r)).choice(take, rows_per_era, replace=False))
            x = np.c_[float_view_np(split.x_NxF[take]), np.ones(len(take), np.float32)]
            y = split.y_NxT[take, 0] - 0.5
            xtx += x.T @ x
            xty += x.T @ y
        added = len(resolved)
        if timeline.name(int(e)) in skip:
            continue
        reg = alpha * np.eye(n_features + 1)
        reg[-1, -1] = 0.0  # no penalty on the intercept
        w = solve(xtx + reg, xty, assume_a="pos", check_finite=False)  # Cholesky: X'X + alpha I is positive definite
        split, local = timeline.era(int(e))
        rows = split.index.rows(local)
        pred = np.c_[float_view_np(split.x_NxF[rows]), np.ones(rows.stop - rows.start)] @ w + 0.5
        frames.append(prediction_frame(split.ids[rows.start:rows.stop], timeline.name(int(e)), pred))
    return pl.concat(frames) if frames else None
