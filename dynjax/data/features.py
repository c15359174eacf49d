"""`features.json`: feature sets and target names in Numerai's layout."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dynjax.data.errors import DataError, preview


@dataclass(frozen=True)
class FeatureMetadata:
    """Parsed `features.json`: named feature sets and the listed targets."""

    feature_sets: dict[str, tuple[str, ...]]
    targets: tuple[str, ...]
    source: str


def read_feature_metadata(path: str | Path) -> FeatureMetadata:
    """Read `features.json`, checking it has Numerai's `feature_sets` layout."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found (expected Numerai's features.json)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err})") from None
    sets = raw.get("feature_sets") if isinstance(raw, dict) else None
    if not isinstance(sets, dict) or not sets:
        raise DataError(path, 'missing the "feature_sets" mapping of set name -> feature list')
    bad = [name for name, feats in sets.items() if not _is_name_list(feats)]
    if bad:
        raise DataError(path, f"feature sets that are not lists of names: {preview(bad)}")
    targets = raw.get("targets", [])
    if not _is_name_list(targets):
        raise DataError(path, '"targets" must be a list of column names')
    return FeatureMetadata(
        feature_sets={name: tuple(feats) for name, feats in sets.items()},
        targets=tuple(targets),
        source=str(path),
    )


def resolve_features(meta: FeatureMetadata, spec: str | Sequence[str]) -> tuple[str, ...]:
    """Feature names for a set name (`small`, `medium`, `all`, ...) or an explicit list."""
    if isinstance(spec, str):
        if spec not in meta.feature_sets:
            known = ", ".join(sorted(meta.feature_sets))
            raise DataError(meta.source, f"unknown feature set {spec!r}; known sets: {known}")
        names = meta.feature_sets[spec]
    else:
        names = tuple(spec)
        universe = set().union(*meta.feature_sets.values())
        unknown = [n for n in names if n not in universe]
        if unknown:
            raise DataError(meta.source, f"unknown feature names: {preview(unknown)}")
    if not names:
        raise DataError(meta.source, f"feature set {spec!r} is empty")
    dupes = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    if dupes:
        raise DataError(meta.source, f"feature names listed twice: {preview(dupes)}")
    return tuple(names)


def _is_name_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
