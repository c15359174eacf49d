"""Reference models: Numerai's benchmark-model and meta-model files, read, and written for synthetic data.

Numerai ships `train_`, `validation_` and `live_benchmark_models.parquet` (`id`,
`era`, one column per benchmark model, e.g. `v52_lgbm_ender20`) and `meta_model.parquet`
(`id`, `era`, `numerai_meta_model`); a model is scored by what it adds beyond them (BMC,
MMC). `dynjax synth` writes the same files: a ridge on the training eras as the benchmark
(`synthetic_ridge`), and a meta model that blends it with a noisy view of the true signal
(many users, some of whom found part of the signal).
"""

from pathlib import Path

import numpy as np
import polars as pl

from dynjax.data.bins import MISSING, float_view_np
from dynjax.data.errors import DataError, preview

TRAIN_BENCHMARK_FILE = "train_benchmark_models.parquet"  # what `tune.metric=bmc` scores the folds against
BENCHMARK_FILE = "validation_benchmark_models.parquet"
LIVE_BENCHMARK_FILE = "live_benchmark_models.parquet"
META_FILE = "meta_model.parquet"
META_COLUMN = "numerai_meta_model"
SYNTH_BENCHMARK = "synthetic_ridge"
_FIT_ROWS = 100_000  # training rows the synthetic benchmark is fitted on (every k-th row)
_CHUNK_ROWS = 50_000
_RIDGE = 1e-2  # per row: X'X / n + ridge I
_META_NOISE = 2.0  # the meta model's noisy signal: noise std over the signal's


def benchmark_column(columns: list[str], wanted: str = "") -> str:
    """The benchmark BMC is measured against: `wanted`, else the first `*lgbm*` column, else the first."""
    models = [c for c in columns if c not in ("id", "era", "data_type")]
    if not models:
        raise ValueError("the benchmark file holds no benchmark model column (only id / era)")
    if wanted:
        if wanted not in models:
            raise ValueError(f"eval.benchmark={wanted!r} is not a column of the benchmark file; it has {preview(models)}")
        return wanted
    return next((c for c in models if "lgbm" in c.lower()), models[0])


def read_reference(path: str | Path, column: str = "") -> tuple[str, pl.DataFrame]:
    """`(column, frame of id and reference)` from a benchmark or meta-model file; DataError naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such reference-model file")
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # noqa: BLE001  (polars raises several kinds for a bad file)
        raise DataError(path, f"unreadable parquet ({type(err).__name__}: {err})") from None
    if "id" not in frame.columns:
        raise DataError(path, "no id column")
    try:
        column = benchmark_column(frame.columns, column)
    except ValueError as err:
        raise DataError(path, str(err)) from None
    if not frame.schema[column].is_numeric():
        raise DataError(path, f"column {column} is {frame.schema[column]}, not numeric")
    return column, frame.select(pl.col("id").cast(pl.String), pl.col(column).cast(pl.Float64).alias("reference")).drop_nulls()


def reference_models(data_dir: str | Path, eval_cfg) -> dict[str, tuple[str, pl.DataFrame]]:  # eval_cfg: EvalConfig
    """`{"bmc": (column, frame), "mmc": ...}` of the benchmark and meta-model files that exist
    (named in `eval_cfg`, else Numerai's file names in the data directory)."""
    found = {}
    for tag, named, default, column in (("bmc", eval_cfg.benchmarks, BENCHMARK_FILE, eval_cfg.benchmark),
                                        ("mmc", eval_cfg.meta_model, META_FILE, "")):
        path = Path(named) if named else Path(data_dir) / default
        if named or path.is_file():
            found[tag] = read_reference(path, column)
    return found


def write_synthetic_references(out: Path, features: list[str], seed: int) -> None:
    """The benchmark files and the meta model of a synthetic set in `out` (after its splits and truth)."""
    w_F, b = _fit_ridge(out / "train.parquet", features)
    rng = np.random.default_rng([seed, 3])
    for split, name in (("train", TRAIN_BENCHMARK_FILE), ("validation", BENCHMARK_FILE), ("live", LIVE_BENCHMARK_FILE)):
        path = out / f"{split}.parquet"
        if path.is_file():
            _predict_ridge(path, features, w_F, b).rename({"reference": SYNTH_BENCHMARK}).write_parquet(out / name)
    bench = pl.read_parquet(out / BENCHMARK_FILE)
    signal = pl.read_parquet(out / "truth" / "signal.parquet").select("id", "signal")
    both = bench.join(signal, on="id")
    noisy = both["signal"].to_numpy() + rng.normal(0.0, _META_NOISE * both["signal"].std(), both.height)
    rank = lambda c: (pl.col(c).rank("average").over("era") / pl.len().over("era"))
    meta = both.with_columns(pl.Series("noisy", noisy)).select(
        "id", "era", (0.5 * rank(SYNTH_BENCHMARK) + 0.5 * rank("noisy")).alias(META_COLUMN))
    meta.write_parquet(out / META_FILE)


def _fit_ridge(path: Path, features: list[str]) -> tuple[np.ndarray, float]:
    """Ridge of the main target on the float view of every feature, over every k-th labelled training row."""
    lazy = pl.scan_parquet(path)
    n = lazy.select(pl.len()).collect().item()
    sample = lazy.select(*features, "target").gather_every(max(1, -(-n // _FIT_ROWS))).collect()
    sample = sample.filter(pl.col("target").is_not_null() & pl.col("target").is_not_nan())
    y_N = sample["target"].to_numpy().astype(np.float64)
    xtx, xty = np.zeros((len(features), len(features))), np.zeros(len(features))
    for start in range(0, sample.height, _CHUNK_ROWS):
        x = float_view_np(_bins(sample.slice(start, _CHUNK_ROWS), features)).astype(np.float64)
        xtx += x.T @ x
        xty += x.T @ (y_N[start:start + _CHUNK_ROWS] - y_N.mean())
    w_F = np.linalg.solve(xtx / len(y_N) + _RIDGE * np.eye(len(features)), xty / len(y_N))
    return w_F, float(y_N.mean())


def _predict_ridge(path: Path, features: list[str], w_F: np.ndarray, b: float) -> pl.DataFrame:
    lazy = pl.scan_parquet(path)
    n = lazy.select(pl.len()).collect().item()
    parts = []
    for start in range(0, n, _CHUNK_ROWS):
        chunk = lazy.slice(start, _CHUNK_ROWS).select("id", "era", *features).collect()
        pred = float_view_np(_bins(chunk, features)) @ w_F + b
        parts.append(chunk.select("id", "era").with_columns(pl.Series("reference", pred)))
    return pl.concat(parts)


def _bins(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    x = frame.select(features).fill_null(MISSING).to_numpy()
    return x.astype(np.int8)
