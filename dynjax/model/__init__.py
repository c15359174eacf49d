"""The feature-attention model (Flax linen, pure functional). Shape legend: `dynjax/__init__.py`."""

from dynjax.model.attention_gam import FeatureAttentionModel
from dynjax.model.losses import era_loss, masked_mse, masked_pearson
from dynjax.model.normalizers import entmax15, softmax, sparsemax
from dynjax.model.selection import SelectionState, era_importance, init_selection, update_selection

__all__ = [
    "FeatureAttentionModel", "SelectionState", "entmax15", "era_importance", "era_loss", "init_selection",
    "masked_mse", "masked_pearson", "softmax", "sparsemax", "update_selection",
]
