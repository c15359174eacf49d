"""Era context on the host: summaries of resolved eras, and the embargoed windows of them.

Row ids are not stable across eras, so temporal structure lives at era level: each resolved
era is summarised by the correlation of every feature with its target. `context_window` is
the only way to build a sequence of summaries and it applies the embargo rule itself, so
era t never sees a target of an era later than t - 1 - embargo. The encoder that reads
these windows is `dynjax.model.context.EraContextEncoder`.
"""

from typing import Any

import numpy as np
from flax import struct

from dynjax.data.bins import float_view_np
from dynjax.data.eras import resolved_eras
from dynjax.data.numerai import EraData


@struct.dataclass
class EraContext:
    """What the model may know of an era besides its rows, all from resolved eras only.

    `summary_LxF` / `summary_mask_L`: the window of past summaries for the era encoder
    (`model.context`); `evidence_FxV`: per-feature evidence for the context-conditioned
    gates (`model.gates="context"`, see `dynjax.data.evidence`). Unused fields stay None.
    Inside a `Batch` every field carries a leading W axis.
    """

    summary_LxF: Any = None
    summary_mask_L: Any = None
    evidence_FxV: Any = None


def era_summaries(data: EraData, target: int = 0) -> np.ndarray:
    """Per era, each feature's Pearson correlation with the main target over labeled rows: [E, F]."""
    corr_ExF = np.zeros((data.index.n_eras, data.x_NxF.shape[1]), np.float32)
    for e in range(data.index.n_eras):
        rows = data.index.labeled_rows(e)
        if rows.stop - rows.start < 2:
            continue
        xf = float_view_np(data.x_NxF[rows])
        y = data.y_NxT[rows, target]
        xc, yc = xf - xf.mean(axis=0), y - y.mean()
        denom = np.sqrt((xc**2).sum(axis=0) * (yc**2).sum()) + 1e-12
        corr_ExF[e] = (xc * yc[:, None]).sum(axis=0) / denom
    return corr_ExF


def context_window(
    summary_ExF: np.ndarray, numbers_E: np.ndarray, t: int, embargo: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """The `length` most recent summaries usable at era t, oldest first, zero-padded at the end.

    Returns `(ctx_LxF, mask_L)`; valid entries come first so a recurrent encoder can stop
    at the sequence length.
    """
    usable = np.flatnonzero(resolved_eras(numbers_E, t, embargo))[-length:]
    ctx_LxF = np.zeros((length, summary_ExF.shape[1]), np.float32)
    ctx_LxF[: len(usable)] = summary_ExF[usable]
    return ctx_LxF, np.arange(length) < len(usable)


def window_context(
    summary_ExF: np.ndarray, numbers_E: np.ndarray, positions_W: np.ndarray, embargo: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Context of every era in a window, each built by `context_window` for its own era."""
    pairs = [context_window(summary_ExF, numbers_E, int(numbers_E[e]), embargo, length) for e in positions_W]
    return np.stack([c for c, _ in pairs]), np.stack([m for _, m in pairs])
