"""Numerai data: loading, era index and embargo, era windows, missing values, synthetic data."""

from dynjax.data.bins import MISSING, N_BINS, Imputer
from dynjax.data.eras import EraIndex, last_resolved_era, resolved_eras, sliding_windows
from dynjax.data.errors import DataError
from dynjax.data.features import FeatureMetadata, read_feature_metadata, resolve_features
from dynjax.data.missing import fit_imputer, float_view, impute_inplace
from dynjax.data.numerai import (
    EraData,
    NumeraiData,
    check_same_features,
    impute,
    impute_splits,
    load_numerai,
    load_split,
    take_eras,
)
from dynjax.data.windows import Batch, era_chunks, sample_window, window_rng

__all__ = [
    "MISSING",
    "N_BINS",
    "Batch",
    "DataError",
    "EraData",
    "EraIndex",
    "FeatureMetadata",
    "Imputer",
    "NumeraiData",
    "check_same_features",
    "era_chunks",
    "fit_imputer",
    "float_view",
    "impute",
    "impute_inplace",
    "impute_splits",
    "last_resolved_era",
    "load_numerai",
    "load_split",
    "read_feature_metadata",
    "resolve_features",
    "resolved_eras",
    "sample_window",
    "sliding_windows",
    "take_eras",
    "window_rng",
]
