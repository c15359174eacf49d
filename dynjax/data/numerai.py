"""Load Numerai parquet files into int8 feature matrices ordered by era.

Features stay int8 from parquet to the arrays handed to JAX: columns are read a group at
a time (lazy scan, projection pushdown), nulls become the `MISSING` bin, and each group is
written straight into one preallocated `int8[N, F]` matrix, so peak memory stays near the
int8 size of the requested features.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from dynjax.data.bins import MAX_BIN, MISSING, Imputer
from dynjax.data.eras import EraIndex, build_era_index, era_numbers
from dynjax.data.errors import DataError, preview
from dynjax.data.features import FeatureMetadata, read_feature_metadata, resolve_features
from dynjax.data.missing import fit_imputer, impute_inplace

_INTEGER = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
_CHUNK_BYTES = 16 << 20


@dataclass(frozen=True, eq=False)
class EraData:
    """One split, rows sorted by era (labeled rows first within an era)."""

    x_NxF: np.ndarray  # int8, bins 0..4 and MISSING
    y_NxT: np.ndarray  # float32, NaN where a target is unknown
    ids: pl.Series
    index: EraIndex
    features: tuple[str, ...]
    targets: tuple[str, ...]
    source: str

    @property
    def n_rows(self) -> int:
        return self.x_NxF.shape[0]

    def era_column(self) -> np.ndarray:
        """Era name of every row (for writing predictions)."""
        return np.repeat(np.array(self.index.names), self.index.sizes)


@dataclass(frozen=True, eq=False)
class NumeraiData:
    """The splits of one data directory, loaded with one feature list."""

    train: EraData
    validation: EraData | None
    live: EraData | None
    metadata: FeatureMetadata = field(repr=False)
    imputer: Imputer | None = field(default=None, repr=False)  # set by `impute`: what filled the missing bins


def load_split(
    path: str | Path,
    features: Sequence[str],
    targets: Sequence[str] = ("target",),
    *,
    data_type: str | None = None,
    require_targets: bool = True,
    min_era_rows: int = 2,
    live_after: int | None = None,
) -> EraData:
    """Load one parquet split.

    Args:
      path: a Numerai parquet file (`train.parquet`, `validation.parquet`, `live.parquet`).
      features: feature columns to read, in the order of the returned matrix.
      targets: target columns; the first is the main target.
      data_type: keep only rows with this `data_type` (e.g. "validation").
      require_targets: training data: every target column must exist, rows with a NaN
        main target are kept but not labeled, and each era needs `min_era_rows` labeled
        rows. Without it (live data) absent targets read as NaN.
      min_era_rows: the fewest rows an era may have (one-row eras have no correlation).
      live_after: a live file: an era labelled without a number ("X") is placed after
        this era number (see `era_numbers`).
    Returns:
      An `EraData` with `x_NxF` int8, `y_NxT` float32 and the era index.
    """
    path = Path(path)
    features, targets = tuple(features), tuple(targets)
    lf = _scan(path)
    schema = lf.collect_schema()
    _check_schema(path, schema, features, targets, require_targets, data_type)

    present_targets = [t for t in targets if t in schema]
    meta_cols = ["id", "era", *present_targets] + (["data_type"] if data_type else [])
    meta = lf.select(meta_cols).collect()
    keep = np.ones(meta.height, bool)
    if data_type:
        keep = (meta["data_type"] == data_type).to_numpy()
    numbers = era_numbers(meta["era"], path, live_after=live_after)
    y_NxT = _targets(meta, targets, path)
    labeled = ~np.isnan(y_NxT[:, 0]) if targets else np.zeros(meta.height, bool)

    # Stable sort by era, labeled rows first inside an era; the same permutation also
    # drops rows of other data types, so each feature group is gathered exactly once.
    rows = np.flatnonzero(keep)
    perm = rows[np.lexsort((~labeled[rows], numbers[rows]))]
    ids = meta["id"].cast(pl.String).gather(perm)
    _check_ids(ids, path)
    index = build_era_index(meta["era"].cast(pl.String).gather(perm), numbers[perm], labeled[perm])
    _check_eras(index, path, min_era_rows, require_targets)
    del meta
    x_NxF, all_missing_F = _read_features(lf, path, features, perm)
    if require_targets and all_missing_F.any():
        names = [f for f, m in zip(features, all_missing_F) if m]
        raise DataError(path, f"features with no values at all (every row null): {preview(names)}")
    return EraData(x_NxF, y_NxT[perm], ids, index, features, targets, str(path))


def load_numerai(
    data_dir: str | Path,
    feature_set: str | Sequence[str] = "all",
    targets: Sequence[str] = ("target",),
    *,
    validation: bool = True,
    live: bool = True,
    min_era_rows: int = 2,
) -> NumeraiData:
    """Load `train.parquet`, `validation.parquet` and (if present) `live.parquet`.

    `validation=False` / `live=False` leave those files unread (hyperparameter search reads
    the training eras only).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(data_dir, "data directory not found")
    metadata = read_feature_metadata(data_dir / "features.json")
    features = resolve_features(metadata, feature_set)
    train = load_split(data_dir / "train.parquet", features, targets, min_era_rows=min_era_rows)
    validation_data = None
    if validation and (data_dir / "validation.parquet").exists():
        validation_data = load_split(
            data_dir / "validation.parquet", features, targets,
            data_type="validation", require_targets=False, min_era_rows=min_era_rows,
        )
    live_data = None
    if live and (data_dir / "live.parquet").exists():
        check_same_features(data_dir / "train.parquet", data_dir / "live.parquet")
        last = (validation_data or train).index.numbers[-1]
        live_data = load_split(
            data_dir / "live.parquet", features, targets, require_targets=False, min_era_rows=1, live_after=int(last)
        )
    return NumeraiData(train, validation_data, live_data, metadata)


def take_eras(split: EraData, start: int, stop: int) -> EraData:
    """The eras at positions `start:stop` of `split` as a split of their own (views, no copies)."""
    if not 0 <= start < stop <= split.index.n_eras:
        raise ValueError(f"era range {start}:{stop} outside the {split.index.n_eras} eras of {split.source}")
    idx = split.index
    rows = slice(int(idx.offsets[start]), int(idx.offsets[stop]))
    index = EraIndex(idx.names[start:stop], idx.numbers[start:stop], idx.offsets[start : stop + 1] - rows.start,
                     idx.n_labeled[start:stop])
    return EraData(split.x_NxF[rows], split.y_NxT[rows], split.ids[rows.start : rows.stop], index, split.features,
                   split.targets, f"{split.source} [{idx.names[start]}..{idx.names[stop - 1]}]")


def impute_splits(strategy: str, train: EraData, *others: EraData | None, seed: int = 0) -> Imputer:
    """Fit the imputer on `train`'s features and fill every split in place; returns the imputer."""
    imputer = fit_imputer(strategy, train.x_NxF, seed=seed)
    for split in (train, *others):
        if split is not None:
            impute_inplace(imputer, split.x_NxF, split.index)
    return imputer


def impute(data: NumeraiData, strategy: str, seed: int = 0) -> NumeraiData:
    """Every split of `data` filled in place by an imputer fitted on its training features; the
    returned data carries that imputer (a run stores it, so a live file is filled the same way)."""
    return replace(data, imputer=impute_splits(strategy, data.train, data.validation, data.live, seed=seed))


def check_same_features(reference: str | Path, other: str | Path) -> None:
    """Raise if two files do not carry the same `feature_*` columns."""
    check_feature_columns(feature_columns(reference), other, Path(reference).name)


def check_feature_columns(expected: Sequence[str], other: str | Path, reference: str = "the training file") -> None:
    """Raise if `other` does not carry exactly the `feature_*` columns `expected`."""
    ref_cols, other_cols = list(expected), feature_columns(other)
    if ref_cols != other_cols:
        only_ref = sorted(set(ref_cols) - set(other_cols))
        only_other = sorted(set(other_cols) - set(ref_cols))
        order = "" if only_ref or only_other else " (same names, another order)"
        raise DataError(
            other,
            f"feature columns differ from {reference}{order}: "
            f"missing {preview(only_ref) or 'none'}; extra {preview(only_other) or 'none'}",
        )


def feature_columns(path: str | Path) -> list[str]:
    """The `feature*` columns of a parquet file, in file order (reads its schema only)."""
    return [c for c in _scan(Path(path)).collect_schema() if c.startswith("feature")]


def _scan(path: Path) -> pl.LazyFrame:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        lf = pl.scan_parquet(path)
        lf.collect_schema()
    except Exception as err:  # noqa: BLE001  (polars raises several types for unreadable files)
        raise DataError(path, f"not a readable parquet file ({type(err).__name__}: {err})") from None
    return lf


def _check_schema(path, schema, features, targets, require_targets, data_type) -> None:
    required = ["id", "era"] + (list(targets) if require_targets else [])
    if data_type:
        required.append("data_type")
    missing = [c for c in required if c not in schema]
    if missing:
        raise DataError(path, f"missing required columns: {preview(missing)}")
    absent = [f for f in features if f not in schema]
    if absent:
        raise DataError(path, f"missing {len(absent)} requested feature columns: {preview(absent)}")
    not_int = [f"{f} ({schema[f]})" for f in features if schema[f] not in _INTEGER]
    if not_int:
        raise DataError(
            path, f"feature columns must hold integer bins 0..{MAX_BIN}; got {preview(not_int)}"
        )
    not_num = [f"{t} ({schema[t]})" for t in targets if t in schema and not schema[t].is_numeric()]
    if not_num:
        raise DataError(path, f"target columns must be numeric; got {preview(not_num)}")


def _targets(meta: pl.DataFrame, targets: Sequence[str], path: Path) -> np.ndarray:
    """float32 [N, T]; nulls and absent targets become NaN."""
    y_NxT = np.full((meta.height, len(targets)), np.nan, np.float32)
    for j, name in enumerate(targets):
        if name in meta.columns:
            y_NxT[:, j] = meta[name].cast(pl.Float32).fill_null(np.nan).to_numpy()
    return y_NxT


def _check_ids(ids: pl.Series, path: Path) -> None:
    if ids.null_count():
        raise DataError(path, "column 'id' has null values")
    if ids.n_unique() != len(ids):
        dupes = ids.filter(ids.is_duplicated()).unique().sort().to_list()
        raise DataError(path, f"duplicate ids: {preview(dupes)}")


def _check_eras(index: EraIndex, path: Path, min_rows: int, require_targets: bool) -> None:
    if index.n_eras == 0:
        raise DataError(path, "no rows to load")
    small = [n for n, size in zip(index.names, index.sizes) if size < min_rows]
    if small:
        raise DataError(path, f"eras with fewer than {min_rows} rows: {preview(small)}")
    if require_targets:
        unlabeled = [n for n, k in zip(index.names, index.n_labeled) if k < min_rows]
        if unlabeled:
            raise DataError(
                path, f"eras with fewer than {min_rows} rows with a main target: {preview(unlabeled)}"
            )


def _read_features(
    lf: pl.LazyFrame, path: Path, features: Sequence[str], perm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """int8 [len(perm), F] read a column group at a time, and which features are all null."""
    x_NxF = np.empty((len(perm), len(features)), np.int8)
    all_missing_F = np.zeros(len(features), bool)
    n_file_rows = max(1, lf.select(pl.len()).collect().item())
    group = max(1, _CHUNK_BYTES // n_file_rows)
    in_order = len(perm) == n_file_rows and bool(np.all(perm == np.arange(len(perm))))
    for start in range(0, len(features), group):
        cols = list(features[start : start + group])
        chunk = lf.select(cols).collect()
        _check_range(chunk, path)
        # The schema check guarantees integers, so this cast is lossless.
        filled = chunk.select(pl.all().cast(pl.Int8).fill_null(MISSING)).to_numpy()
        del chunk
        block = filled if in_order else filled[perm]
        all_missing_F[start : start + len(cols)] = (block == MISSING).all(axis=0)
        x_NxF[:, start : start + len(cols)] = block
    return x_NxF, all_missing_F


def _check_range(chunk: pl.DataFrame, path: Path) -> None:
    lo, hi = chunk.min().row(0), chunk.max().row(0)
    bad = [
        f"{c} [{a}..{b}]"
        for c, a, b in zip(chunk.columns, lo, hi)
        if a is not None and (a < 0 or b > MAX_BIN)
    ]
    if bad:
        raise DataError(path, f"feature values outside bins 0..{MAX_BIN}: {preview(bad)}")
