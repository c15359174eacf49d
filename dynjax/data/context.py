"""What the model may know of an era besides its rows: `EraContext`, built from resolved eras only.

Row ids are not stable across eras, so what changes from era to era lives at era level: the
context gates' per-feature evidence (`dynjax.data.evidence`, embargo applied where it is
windowed), built for every era by `dynjax.train.era_features`.
"""

from typing import Any

from flax import struct


@struct.dataclass
class EraContext:
    """`evidence_FxV`: per-feature evidence for the context-conditioned gates
    (`model.gates="context"`); None when the model reads none. Inside a `Batch` it carries a
    leading W axis."""

    evidence_FxV: Any = None
