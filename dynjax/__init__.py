"""dynjax: an attention-weighted additive model with per-era feature selection for Numerai, in JAX/Flax.

Dimension legend, used in every tensor name (`x_WxRxF`, `y_NxT`, `emb_FxBxD`); one meaning a letter:
  N rows of a split (or of a sample of it), E eras, W eras in a window, R rows of one era (sampled,
  or a predict chunk), F features (or a subset of them), B bins per feature (0..4 plus the missing
  bin), T targets, D model width, H attention heads, M members of a run, G trials of a population
  sweep (1 for a run; `GM`: the G x M members a step stacks), K kinds of members, X Hedge's
  mixtures of them, U walk-forward updates, V the gates' evidence horizons, S splits of a
  timeline, P screened feature pairs (`BB`: a pair's bins),
  C candidate pairs of the screen, Q tuning folds, J a feature's imputation neighbours, Z missing
  cells to fill, I interaction terms of the synthetic signal, A the width of one attention head
  (D / H). Letters written together multiply.
"""

from dynjax.malloc import tune_malloc

tune_malloc()  # before numpy or JAX start threads: see dynjax/malloc.py

__version__ = "0.1.0"
