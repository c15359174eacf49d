"""dynjax: TFT-style feature attention with dynamic per-era feature selection for Numerai.

Dimension legend, used in every tensor name (`x_WxRxF`, `y_NxT`, `emb_FxBxD`):
  N rows of a split, E eras, W eras in a window, R rows sampled per era,
  F features, B bins per feature (0..4 plus the missing bin), T targets,
  K neighbours / latent factors, D model width, H attention heads, M ensemble members,
  G trials of a population, C Hedge's mixtures of the members.
"""

__version__ = "0.1.0"
