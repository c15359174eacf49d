"""Earlier weekly rounds of a Numerai directory, to rehearse `dynjax update` on data at hand."""

import shutil
from pathlib import Path

import polars as pl

from dynjax.data.eras import era_numbers
from dynjax.data.errors import DataError


def earlier_round(data_dir: str | Path, out: str | Path, n_val: int) -> Path:
    """The round before `data_dir` had `n_val` more validation eras: its first `n_val` validation
    eras, and the next one as the live file (labelled "X", targets unknown), written to `out`."""
    data_dir, out = Path(data_dir), Path(out)
    val = pl.read_parquet(data_dir / "validation.parquet")
    names = val["era"].cast(pl.String).unique()
    eras = [name for _, name in sorted(zip(era_numbers(names, data_dir / "validation.parquet"), names))]
    if not 1 <= n_val < len(eras):
        raise DataError(data_dir / "validation.parquet", f"an earlier round needs 1..{len(eras) - 1} of its "
                        f"{len(eras)} validation eras, got {n_val}")
    out.mkdir(parents=True)
    for name in ("train.parquet", "features.json"):
        shutil.copy(data_dir / name, out / name)
    val.filter(pl.col("era").is_in(eras[:n_val])).write_parquet(out / "validation.parquet")
    targets = [c for c in val.columns if c.startswith("target")]
    live = val.filter(pl.col("era") == eras[n_val]).with_columns(
        pl.lit("X").alias("era"), pl.lit("live").alias("data_type"), *[pl.lit(None, pl.Float32).alias(t) for t in targets])
    live.write_parquet(out / "live.parquet")
    return out
