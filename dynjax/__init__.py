"""dynjax: TFT-style feature attention with dynamic per-era feature selection for Numerai.

Dimension legend, used in every tensor name (`x_WxRxF`, `y_NxT`, `emb_FxBxD`):
  N rows of a split (also the stacked members of a step, G x M: `pred_NxR`), E eras,
  W eras in a window, R rows sampled per era (or in a predict chunk), F features,
  B bins per feature (0..4 plus the missing bin), T targets, K neighbours / latent factors,
  D model width, H attention heads, M ensemble members, G trials of a population (1 for a
  run), C slots of the replay buffer (its capacity), X Hedge's mixtures of the members,
  V the gates' evidence horizons, S splits of a timeline, L past eras an era's context reads.
"""

__version__ = "0.1.0"
