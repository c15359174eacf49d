"""What a model adds beyond the others (BMC, MMC), and neutralisation of a split's eras.

BMC is each era's numerai-tools `correlation_contribution` of the predictions beyond a benchmark
model, MMC the same beyond the meta model: the gaussianised ranks, orthogonalised to the
reference, against the target (`era_contribution`, in numpy, tested equal). Neutralisation
subtracts `proportion` of each era's least-squares projection of the predictions on the float
view of the features (`dynjax.eval.neutral`).
"""

from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import ndtri
from scipy.stats import rankdata

from dynjax.data.errors import DataError, preview
from dynjax.data.features import read_feature_metadata, resolve_features
from dynjax.eval.neutral import neutralize_era
from dynjax.eval.scores import gaussianise, tie_kept_quantile


def contribution_per_era(truth: pl.DataFrame, sources: dict[str, pl.DataFrame], reference: pl.DataFrame,
                         tag: str) -> pl.DataFrame:
    """Per era of `truth` (`id`, `era`, `target`): `{tag}_{name}` of every source (`id`, `prediction`)
    beyond `reference` (`id`, `reference`), and `{tag}_corr_with_{name}`: the rank correlation with it.

    Every era at once: each column's tie-kept ranks and gaussianised ranks per era, then
    `Ranked.contribution` and `Ranked.rank_corr` as sums over each era's rows (tested equal).
    Eras with fewer than 3 rows or a constant reference are skipped."""
    # Internal column names: a source may be called anything, "target" included (a target ensemble's members).
    frame = truth.filter(pl.col("target").is_not_nan() & pl.col("target").is_not_null()).select(
        "id", pl.col("era").cast(pl.String), "target").join(reference.select("id", pl.col("reference").alias("_v_ref")), on="id")
    keys = {name: f"s{i}" for i, name in enumerate(sources)}
    for name, preds in sources.items():
        frame = frame.join(preds.select("id", pl.col("prediction").alias(f"_v_{keys[name]}")), on="id")
    columns = ["ref", *keys.values()]
    frame = frame.filter((pl.len().over("era") >= 3) & (pl.col("_v_ref").n_unique().over("era") >= 2))
    y = pl.col("target").cast(pl.Float64)
    t = pl.when(((y >= 0) & (y <= 1)).all().over("era")).then(y * 4).otherwise(y)  # `target_bins`, per era
    frame = frame.with_columns((t - t.mean().over("era")).alias("_t"),
                               *(pl.col(f"_v_{c}").rank("average").over("era").alias(f"_r_{c}") for c in columns),
                               *(tie_kept_quantile(f"_v_{c}").alias(f"_g_{c}") for c in columns))
    frame = frame.with_columns(pl.Series(f"_g_{c}", ndtri(frame[f"_g_{c}"].to_numpy())) for c in columns)
    m, t = pl.col("_g_ref"), pl.col("_t")
    sums = [pl.len().alias("_n"), (t * m).sum().alias("_tm"), (m * m).sum().alias("_mm")]
    for k in keys.values():
        p, v = pl.col(f"_g_{k}"), pl.col(f"_v_{k}")
        sums += [(t * p).sum().alias(f"_tp_{k}"), (p * m).sum().alias(f"_pm_{k}"),
                 pl.corr(f"_r_{k}", "_r_ref").alias(f"_rc_{k}"), (v.max() == v.min()).alias(f"_flat_{k}")]
    per_era = frame.group_by("era").agg(sums).sort("era")
    flat = {n: pl.col(f"_flat_{k}") for n, k in keys.items()}
    contribution = {f"{tag}_{n}": pl.when(flat[n]).then(0.0).otherwise(
        (pl.col(f"_tp_{k}") - pl.col("_tm") * pl.col(f"_pm_{k}") / pl.col("_mm")) / pl.col("_n")) for n, k in keys.items()}
    rank_corr = {f"{tag}_corr_with_{n}": pl.when(flat[n]).then(0.0).otherwise(pl.col(f"_rc_{k}")) for n, k in keys.items()}
    return per_era.select("era", **contribution, **rank_corr)


def era_contribution(pred_R: np.ndarray, reference_R: np.ndarray, y_R: np.ndarray) -> float:
    """One era's contribution beyond the reference: numerai-tools' `correlation_contribution` in numpy
    (tested equal); 0 for a constant prediction or reference."""
    return Ranked(pred_R).contribution(Ranked(reference_R), target_bins(y_R))


class Ranked:
    """One era's values with their tie-kept ranks and gaussianised ranks, computed once."""

    def __init__(self, values_R: np.ndarray):
        self.rank_R = rankdata(values_R, method="average")
        self.constant = bool(np.ptp(values_R) == 0)
        self.gauss_R = gaussianise(self.rank_R)

    def contribution(self, reference: "Ranked", t_R: np.ndarray) -> float:
        """The covariance of these gaussianised ranks, orthogonalised to the reference's, with the
        centred target bins (numerai-tools' `correlation_contribution`); 0 when either is constant."""
        if self.constant or reference.constant:
            return 0.0
        p_R, m_R = self.gauss_R, reference.gauss_R
        return float(t_R @ (p_R - m_R * (p_R @ m_R) / (m_R @ m_R)) / len(t_R))

    def rank_corr(self, other: "Ranked") -> float:
        """Pearson corr of the tie-kept ranks (0 when either is constant: it then has no ranking)."""
        if self.constant or other.constant:
            return 0.0
        return float(np.corrcoef(self.rank_R, other.rank_R)[0, 1])


def target_bins(y_R: np.ndarray) -> np.ndarray:
    """The target as numerai-tools' contribution reads it: in bins -2..2 when it lies in [0, 1], centred."""
    t_R = np.asarray(y_R, np.float64)
    t_R = t_R * 4 if ((t_R >= 0) & (t_R <= 1)).all() else t_R
    return t_R - t_R.mean()


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
