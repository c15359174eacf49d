"""Scoring with Numerai's own `numerai-tools`."""

from dynjax.eval.scores import per_era_corr, summarize, to_pandas

__all__ = ["per_era_corr", "summarize", "to_pandas"]
