"""Per-era `numerai_corr` (numerai-tools) and the summary statistics of a run."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import polars as pl
from numerai_tools.scoring import sharpe_ratio, tie_kept_rank
from scipy.special import ndtri
from scipy.stats import rankdata


def prediction_frame(ids, era: str | Sequence[str], prediction: np.ndarray) -> pl.DataFrame:
    """`{id, era, prediction}` rows; `era` is one name for every row or one per row."""
    prediction = np.asarray(prediction, np.float64)
    eras = [era] * len(prediction) if isinstance(era, str) else list(era)
    return pl.DataFrame({"id": ids, "era": pl.Series(eras, dtype=pl.String), "prediction": prediction})


def per_era_corr(frame: pl.DataFrame, prediction: str, target: str = "target") -> pl.DataFrame:
    """Numerai's correlation of `prediction` with `target` in every era with a known target
    (numerai-tools' `numerai_corr`, tested equal), every era at once.

    `frame` needs `era`, the prediction and the target columns; rows with a null/NaN target are
    left out, and eras with fewer than two such rows are skipped. An era whose prediction is
    constant (every feature dropped: no position) scores 0.
    """
    scored = frame.select(pl.col("era").cast(pl.String), pl.col(prediction).cast(pl.Float64).fill_null(np.nan).alias("p"),
                          pl.col(target).cast(pl.Float64).alias("y"))
    scored = scored.filter(pl.col("y").is_not_nan() & pl.col("y").is_not_null())
    scored = scored.with_columns(q=tie_kept_quantile("p"), t=pl.col("y") - pl.col("y").mean().over("era"))
    scored = scored.with_columns(pl.Series("g15", power15(ndtri(scored["q"].to_numpy()))),
                                 pl.Series("t15", power15(scored["t"].to_numpy())))
    per_era = scored.group_by("era").agg(n=pl.len(), corr=pl.corr("g15", "t15"), nan=pl.col("p").is_nan().any(),
                                         flat=pl.col("p").max() == pl.col("p").min())
    corr = pl.when("nan").then(np.nan).when("flat").then(0.0).otherwise("corr")  # rankdata's NaN propagates
    return per_era.filter(pl.col("n") >= 2).select("era", corr.alias("corr")).sort("era")


def tie_kept_quantile(column: str, era: str = "era") -> pl.Expr:
    """numerai-tools' `tie_kept_rank` within each era: average ranks 1..R, less a half, over R."""
    return ((pl.col(column).rank("average") - 0.5) / pl.len()).over(era)


def power15(v: np.ndarray) -> np.ndarray:
    """numerai_corr's signed power 1.5, which weighs the tails."""
    return np.sign(v) * np.abs(v) ** 1.5


def gaussian_ranks(values_R: np.ndarray) -> np.ndarray:
    """numerai-tools' tie-kept rank into (0, 1), then the normal quantile: its `gaussian(tie_kept_rank(.))`."""
    return gaussianise(rankdata(values_R, method="average"))


def gaussianise(rank_R: np.ndarray) -> np.ndarray:
    """Average ranks 1..R mapped into (0, 1) as numerai-tools' `tie_kept_rank`, then the normal quantile."""
    return ndtri((rank_R - 0.5) / len(rank_R))  # scipy's norm.ppf, without its argument checks


def fast_numerai_corr(pred_R: np.ndarray, y_R: np.ndarray) -> float:
    """numerai-tools' `numerai_corr` of one era in numpy: tie-kept rank, gaussianise, ^1.5, Pearson
    with the centred target ^1.5 (tested equal)."""
    g_R = gaussian_ranks(pred_R)
    t_R = np.asarray(y_R, np.float64) - np.mean(y_R)
    return float(np.corrcoef(power15(g_R), power15(t_R))[0, 1])


def to_pandas(frame: pl.DataFrame, index: str = "id") -> pd.DataFrame:
    """pandas view for numerai-tools, indexed by `index` (via numpy: no pyarrow needed)."""
    cols = {c: frame[c].to_numpy() for c in frame.columns if c != index}
    return pd.DataFrame(cols, index=pd.Index(frame[index].to_numpy(), name=index))


def rank_per_era(frame: pl.DataFrame, column: str = "prediction") -> pl.DataFrame:
    """Numerai's tie-kept ranks (numerai-tools' `tie_kept_rank`) within each era, into (0, 1): the
    submission range, and the ranking the ensemble mixes its members by."""
    eras = frame["era"].to_numpy()
    order = np.argsort(eras, kind="stable")
    starts = np.flatnonzero(np.r_[True, eras[order][1:] != eras[order][:-1]])
    values = frame[column].cast(pl.Float64).to_numpy()
    ranked = np.empty(len(frame))
    for rows in np.split(order, starts[1:]):
        ranked[rows] = tie_kept_rank(pd.DataFrame({column: values[rows]}))[column].to_numpy()
    return frame.with_columns(pl.Series(column, ranked))


def payout(corr_E: np.ndarray, mmc_E: np.ndarray, corr_multiplier: float, mmc_multiplier: float) -> np.ndarray:
    """The score Numerai pays on, per era: `corr_multiplier * corr + mmc_multiplier * mmc`. The stake
    moves by it times the payout factor, clipped (`eval.payout_clip`)."""
    return corr_multiplier * np.asarray(corr_E) + mmc_multiplier * np.asarray(mmc_E)


def summarize(corr_E: np.ndarray) -> dict[str, float]:
    """Mean, std, Sharpe, max drawdown of the cumulative per-era score and the share of eras below zero:
    what a Numerai stake lives through."""
    corr_E = np.asarray(corr_E, np.float64)
    if corr_E.size == 0:
        return {"corr_mean": float("nan"), "corr_std": float("nan"), "corr_sharpe": float("nan"), "max_drawdown": float("nan"),
                "below_zero": float("nan"), "n_eras": 0}
    cum = np.cumsum(corr_E)
    drawdown = np.max(np.maximum.accumulate(np.r_[0.0, cum])[1:] - cum)
    std = float(corr_E.std())  # numerai-tools' sharpe_ratio uses the population std
    return {
        "corr_mean": float(corr_E.mean()),
        "corr_std": std,
        "corr_sharpe": float(sharpe_ratio(pd.Series(corr_E))) if std > 0 else float("nan"),
        "max_drawdown": float(drawdown),
        "below_zero": float((corr_E < 0).mean()),
        "n_eras": int(corr_E.size),
    }
