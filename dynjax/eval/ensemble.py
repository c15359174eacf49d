"""Ensembles of finished runs: per-era rank averaging (Numerai's target ensembling) and scores."""

import polars as pl

from dynjax.eval.scores import per_era_corr, rank_per_era, summarize


def rank_average(members: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """`{id, era, prediction}`: each member's predictions ranked into (0, 1) within each era
    (tie-kept average ranks), then averaged over members. Every member must cover the same ids."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    ranked = None
    for name, frame in members.items():
        part = rank_per_era(frame.select("id", "era", "prediction")).rename({"prediction": name})
        if ranked is not None and not part["id"].sort().equals(ranked["id"].sort()):
            raise ValueError(f"ensemble member {name!r} predicts other rows than the first member")
        ranked = part if ranked is None else ranked.join(part.drop("era"), on="id")
    names = list(members)
    return ranked.select("id", "era", pl.mean_horizontal(names).alias("prediction"))


def score_members(truth: pl.DataFrame, members: dict[str, pl.DataFrame], target: str = "target") -> tuple[dict, pl.DataFrame]:
    """Summary and per-era Numerai corr of each prediction frame against `truth[target]`."""
    per_era, summary = None, {}
    for name, frame in members.items():
        scored = per_era_corr(truth.join(frame.select("id", "prediction"), on="id"), "prediction", target)
        summary[name] = summarize(scored["corr"].to_numpy())
        scored = scored.rename({"corr": name})
        per_era = scored if per_era is None else per_era.join(scored, on="era", how="full", coalesce=True)
    return summary, per_era.sort("era")


