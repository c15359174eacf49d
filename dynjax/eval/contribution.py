"""What a model adds beyond the others (BMC, MMC) and per-era feature neutralisation, via numerai-tools.

BMC is each era's `correlation_contribution` of the predictions beyond a benchmark model,
MMC the same beyond the meta model: the gaussianised ranks, orthogonalised to the
reference, against the target. Neutralisation subtracts `proportion` of each era's least-
squares projection of the predictions on the float view of the features (`neutralize`).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from numerai_tools.scoring import correlation_contribution, neutralize

from dynjax.data.bins import float_view_np
from dynjax.data.errors import DataError, preview
from dynjax.data.features import read_feature_metadata, resolve_features
from dynjax.eval.scores import to_pandas


def contribution_per_era(truth: pl.DataFrame, sources: dict[str, pl.DataFrame], reference: pl.DataFrame,
                         tag: str) -> pl.DataFrame:
    """Per era of `truth` (`id`, `era`, `target`): `{tag}_{name}` of every source (`id`, `prediction`)
    beyond `reference` (`id`, `reference`), and `{tag}_corr_with_{name}`: the rank correlation with it."""
    frame = truth.filter(pl.col("target").is_not_nan() & pl.col("target").is_not_null()).join(reference, on="id")
    for name, preds in sources.items():
        frame = frame.join(preds.select("id", pl.col("prediction").alias(name)), on="id")
    names = list(sources)
    rows = []
    for (era,), part in frame.sort("era").group_by("era", maintain_order=True):
        if part.height < 3 or part["reference"].n_unique() < 2:
            continue
        pdf = to_pandas(part)
        varied = [n for n in names if pdf[n].nunique() > 1]  # a constant prediction contributes nothing
        bmc = correlation_contribution(pdf[varied], pdf["reference"], pdf["target"]) if varied else {}
        ranks = pdf[["reference", *names]].rank(method="average")
        rows.append((era, *(float(bmc[n]) if n in varied else 0.0 for n in names),
                     *(float(ranks["reference"].corr(ranks[n])) if n in varied else 0.0 for n in names)))
    schema = {"era": pl.String, **{f"{tag}_{n}": pl.Float64 for n in names},
              **{f"{tag}_corr_with_{n}": pl.Float64 for n in names}}
    return pl.DataFrame(rows, schema=schema, orient="row")


def era_contribution(pred_R: np.ndarray, reference_R: np.ndarray, y_R: np.ndarray) -> float:
    """One era's contribution beyond the reference (0 for a constant prediction or reference)."""
    if np.ptp(pred_R) == 0 or np.ptp(reference_R) == 0:
        return 0.0
    index = pd.RangeIndex(len(y_R))
    preds = pd.DataFrame({"prediction": np.asarray(pred_R, np.float64)}, index=index)
    return float(correlation_contribution(preds, pd.Series(reference_R, index=index), pd.Series(y_R, index=index))["prediction"])


def neutralizer_columns(split_features: tuple[str, ...], data_dir: str | Path | None, feature_set: str) -> np.ndarray:
    """Indices (into the run's features) of `eval.neutralize_features`: "" is every feature the run reads."""
    if not feature_set:
        return np.arange(len(split_features))
    path = Path(data_dir or ".") / "features.json"
    wanted = resolve_features(read_feature_metadata(path), feature_set)
    position = {f: j for j, f in enumerate(split_features)}
    absent = [f for f in wanted if f not in position]
    if absent:
        raise DataError(path, f"eval.neutralize_features={feature_set!r} holds features the run does not read: "
                        f"{preview(absent)} (neutralise against a subset of data.feature_set)")
    return np.array([position[f] for f in wanted])


def run_neutralizers(cfg, features: tuple[str, ...], run_dir: str | Path) -> np.ndarray | None:
    """`neutralizer_columns` of a run's config (None when neutralisation is off); a named set is read
    from the run's data directory (the embedded default's is `run_dir/data`)."""
    if not cfg.eval.neutralize:
        return None
    data_dir = cfg.data.data_dir or Path(run_dir) / "data"
    return neutralizer_columns(features, data_dir, cfg.eval.neutralize_features)


def neutralize_era(pred_R: np.ndarray, x_RxF: np.ndarray, proportion: float) -> np.ndarray:
    """One era's predictions neutralised against its features' float view (numerai-tools)."""
    if proportion == 0 or np.ptp(pred_R) == 0:
        return np.asarray(pred_R, np.float64)
    df = pd.DataFrame({"prediction": np.asarray(pred_R, np.float64)})
    out = neutralize(df, pd.DataFrame(float_view_np(x_RxF).astype(np.float64)), proportion)
    return out["prediction"].to_numpy()


def neutralize_split(preds: pl.DataFrame, split, columns: np.ndarray, proportion: float) -> pl.DataFrame:
    """`preds` (`id`, `prediction`, ...) with the rows of every era of `split` neutralised within their era."""
    if proportion == 0:
        return preds
    by_id = preds.select("id", "prediction")
    parts = []
    for e in range(split.index.n_eras):
        r = split.index.rows(e)
        ids = split.ids[r.start:r.stop]
        era = pl.DataFrame({"id": ids, "_row": np.arange(r.start, r.stop)}).join(by_id, on="id")
        if era.height == 0:
            continue
        rows = era["_row"].to_numpy()
        neutral = neutralize_era(era["prediction"].to_numpy(), split.x_NxF[rows][:, columns], proportion)
        parts.append(era.select("id").with_columns(pl.Series("prediction", neutral)))
    neutral = pl.concat(parts)
    return preds.drop("prediction").join(neutral, on="id", how="left").select(preds.columns)
