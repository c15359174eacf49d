"""The run report: per-era scores of the model, its frozen self, ridge and the oracle;
selection quality against ground truth; exposure; plots; the submission file."""

import functools
import json
from pathlib import Path

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from dynjax.config import EvalConfig, RunConfig
from dynjax.data.bins import float_view_np
from dynjax.data.eras import embargo_reason
from dynjax.data.numerai import NumeraiData
from dynjax.data.references import reference_models
from dynjax.data.timeline import make_timeline
from dynjax.eval.baseline import ridge_walk_forward
from dynjax.eval.contribution import contribution_per_era, neutralize_split, neutralizer_columns
from dynjax.eval.neutral import FeatureSpan, era_exposure
from dynjax.eval.plots import write_plots
from dynjax.eval.scores import payout, per_era_corr, rank_per_era, summarize
from dynjax.eval.truth import active_features, has_truth
from dynjax.train.members import mixture_labels, plan_members

WIDE = 1024  # features from which an era's matrices are large enough for BLAS's threads to pay


def era_blas(fn):
    """`fn` with numpy's and scipy's BLAS on one thread, unless the eras of its `NumeraiData` are wide.

    The report's linear algebra is per era (Gram matrices and Cholesky factors of an era's
    features): at a few hundred features BLAS's threads gain nothing and spin against each other
    and against any other process on the cores (the diffuse setting's report: 4.0-4.4 s on one
    thread; 7.6-8.0 s on two, and up to 56 s beside two other runs on the 2 cores). At Numerai's
    thousands an era's matrices are large enough to share out (`benchmarks/README.md`: the report)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        data = next(a for a in (*args, *kwargs.values()) if isinstance(a, NumeraiData))
        with threadpool_limits(limits=1 if data.train.x_NxF.shape[1] < WIDE else None, user_api="blas"):
            return fn(*args, **kwargs)
    return wrapped


@era_blas
def build_report(out: str | Path, data: NumeraiData, cfg: RunConfig, data_dir: str | Path, *,
                 timings: dict | None = None) -> dict:
    """Score a finished walk-forward run of `cfg` in `out`; writes metrics, tables, plots, submission."""
    out, eval_cfg, embargo = Path(out), cfg.eval, cfg.data.embargo_eras
    seed, rows_per_era = cfg.seed, cfg.data.rows_per_era
    val = data.validation
    truth_frame = pl.DataFrame({"id": val.ids, "era": val.era_column(), "target": val.y_NxT[:, 0]})
    splits = [s for s in (data.train, data.validation, data.live) if s is not None]
    timeline = make_timeline(*splits)
    predicted = np.arange(data.train.index.n_eras, timeline.n_eras)
    ridge = _ridge(out / "predictions_ridge.parquet", timeline, predicted, val, embargo, rows_per_era, seed)
    sources = {"dynjax": pl.read_parquet(out / "predictions.parquet"),
               "frozen": pl.read_parquet(out / "predictions_frozen.parquet"), "ridge": ridge}
    neutral_cols, proportion = None, eval_cfg.neutralize or eval_cfg.report_neutralize
    if proportion:  # the neutralised view, beside the raw one (submitted only with eval.neutralize)
        neutral_cols = neutralizer_columns(val.features, data_dir, eval_cfg.neutralize_features)
    exposure, neutral = exposure_and_neutral_view(val, sources["dynjax"], neutral_cols, proportion)
    if neutral is not None:
        sources["neutral"] = neutral
    references = reference_models(data_dir, eval_cfg)
    if "bmc" in references:
        sources["benchmark"] = references["bmc"][1].rename({"reference": "prediction"})
    if has_truth(data_dir):
        signal = pl.read_parquet(Path(data_dir) / "truth" / "signal.parquet").select("id", pl.col("signal").alias("prediction"))
        sources["oracle"] = signal
    per_era = None
    for name, preds in sources.items():
        scored = per_era_corr(truth_frame.join(preds.select("id", "prediction"), on="id"), "prediction")
        scored = scored.rename({"corr": f"corr_{name}"})
        per_era = scored if per_era is None else per_era.join(scored, on="era", how="left")
    selection = pl.read_parquet(out / "selection.parquet")
    per_era = per_era.join(_selection_per_era(selection, data_dir), on="era", how="left")
    per_era = per_era.join(exposure, on="era", how="left")
    scored = {n: sources[n] for n in ("dynjax", "frozen", "ridge", "neutral") if n in sources}
    for tag, (column, reference) in references.items():
        per_era = per_era.join(contribution_per_era(truth_frame, scored, reference, tag), on="era", how="left")
    if "mmc" in references or not eval_cfg.payout_mmc:
        per_era = per_era.with_columns(_payout_column(per_era, n, eval_cfg) for n in scored)
    per_era = per_era.sort("era")
    per_era.write_csv(out / "metrics_per_era.csv")

    metrics = {name: summarize(per_era[f"corr_{name}"].drop_nulls().to_numpy()) for name in sources}
    metrics["dynjax"].update(fnc_mean=_mean(per_era["fnc"]),
                             max_exposure_mean=float(per_era["max_exposure"].mean()))
    metrics["selection"] = {c: float(per_era[c].mean()) for c in ("n_selected", "recall", "precision", "topk_recall") if c in per_era.columns}
    metrics["dynjax"]["max_exposure_max"] = float(per_era["max_exposure"].max())
    if "neutral" in sources:
        metrics["neutral"].update(proportion=proportion, submitted=bool(eval_cfg.neutralize),
                                  features=eval_cfg.neutralize_features or "the run's",
                                  max_exposure_mean=float(per_era["max_exposure_neutral"].mean()),
                                  fnc_mean=_mean(per_era["fnc_neutral"]))
    for tag, (column, _) in references.items():
        metrics[tag] = {"reference": column, **{n: _stats(per_era[f"{tag}_{n}"]) for n in scored},
                        **{f"corr_with_{n}": float(per_era[f"{tag}_corr_with_{n}"].mean()) for n in scored}}
    metrics["payout"] = _payout_summary(per_era, scored, eval_cfg)
    metrics["embargo"] = {"eras": embargo, "target": cfg.data.targets[0], "why": embargo_reason(cfg.data.targets[0], embargo)}
    members = member_weights(out / "metrics.jsonl", policy_labels(cfg.train))
    if members:
        metrics["members"] = {**members, "scores": member_scores(out / "metrics.jsonl", mixture_labels(plan_members(cfg)))}
    metrics["timing"] = timings or {}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    metrics["plots"] = [str(p) for p in write_plots(out, per_era, selection)]
    if data.live is not None:
        live = sources["dynjax"].filter(pl.col("id").is_in(data.live.ids.implode()))
        if eval_cfg.neutralize:
            live = neutralize_split(live, data.live, neutral_cols, eval_cfg.neutralize)
        _write_submission(out, data.live, live)
    return metrics


def _payout_column(per_era: pl.DataFrame, name: str, eval_cfg: EvalConfig) -> pl.Series:
    """`payout_{name}` per era: Numerai's payout of the source's corr and MMC (`eval.payout_*`)."""
    corr_E = per_era[f"corr_{name}"].to_numpy()
    mmc_E = per_era[f"mmc_{name}"].fill_null(np.nan).to_numpy() if eval_cfg.payout_mmc else np.zeros(len(corr_E))
    return pl.Series(f"payout_{name}", payout(corr_E, mmc_E, eval_cfg.payout_corr, eval_cfg.payout_mmc)).fill_nan(None)


def _payout_summary(per_era: pl.DataFrame, scored: dict, eval_cfg: EvalConfig) -> dict:
    """The payout's formula and its per-era statistics per source, or why there is none."""
    rule = {"corr_multiplier": eval_cfg.payout_corr, "mmc_multiplier": eval_cfg.payout_mmc, "clip": eval_cfg.payout_clip}
    if "payout_dynjax" not in per_era.columns:
        return {**rule, "missing": "no meta model (meta_model.parquet in the data directory, or eval.meta_model): no MMC"}
    out = dict(rule)
    for n in scored:
        score_E = per_era[f"payout_{n}"].drop_nulls().to_numpy()
        s = summarize(score_E)
        out[n] = {"mean": s["corr_mean"], "std": s["corr_std"], "sharpe": s["corr_sharpe"], "max_drawdown": s["max_drawdown"],
                  "n_eras": s["n_eras"], "stake_mean": float(np.clip(score_E, -eval_cfg.payout_clip, eval_cfg.payout_clip).mean())}
    return out


def _mean(values: pl.Series) -> float:
    """Mean over the eras that have a value (an era with a constant prediction has no FNC)."""
    mean = values.fill_nan(None).mean()
    return float("nan") if mean is None else float(mean)


def _stats(values: pl.Series) -> dict[str, float]:
    s = summarize(values.drop_nulls().to_numpy())
    return {"mean": s["corr_mean"], "std": s["corr_std"], "sharpe": s["corr_sharpe"], "n_eras": s["n_eras"]}


def member_weights(log_path: Path, policies: list[str] | None = None) -> dict | None:
    """The members' Hedge weights over the walk-forward (`hedge/weight_m` in the training log), the
    frozen members' share of the prediction (`floor/frozen_share_0`) and, named by `policies`, the
    share of the updates each mixing policy chose (`hedge/policy_0`): mean over the updates and the
    last; None with one member. Each era counts once, by its last record: a log written before resumed
    runs rewound it (`MetricsLog.rewind`) may hold an era twice."""
    if not log_path.is_file():
        return None
    records = (json.loads(line) for line in log_path.read_text().splitlines() if '"hedge/weight_' in line)
    rows = list({r["era"]: r for r in records if r.get("phase") == "walk"}.values())
    if not rows or "hedge/weight_1" not in rows[0]:
        return None
    keys = sorted((k for k in rows[0] if k.startswith("hedge/weight_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    w_UxM = np.array([[r[k] for k in keys] for r in rows])
    share_U = np.array([r["floor/frozen_share_0"] for r in rows])
    out = {"weight_mean": w_UxM.mean(axis=0).tolist(), "weight_last": w_UxM[-1].tolist(), "updates": len(rows),
           "frozen_share_mean": float(share_U.mean()), "frozen_share_last": float(share_U[-1])}
    if policies and "hedge/policy_0" in rows[0]:
        chosen_U = np.array([r["hedge/policy_0"] for r in rows])
        out["policy_share"] = {label: float((chosen_U == p).mean()) for p, label in enumerate(policies)}
        out["policy_last"] = policies[int(chosen_U[-1])]
    return out


def policy_labels(train_cfg) -> list[str]:
    """"Hedge eta 30" / "Hedge eta 30, risk 10": the members' mixing policies (`train.hedge_etas`)."""
    return [f"Hedge eta {eta:g}" + (f", risk {risk:g}" if risk else "") for eta, risk in zip(train_cfg.hedge_etas, train_cfg.hedge_risks)]


def member_scores(log_path: Path, labels: list[str]) -> dict[str, dict]:
    """Each Hedge mixture's (each kind of member alone, and their equal mix) per-era statistics over
    the eras scored during the walk-forward (`hedge/corr_x` in the training log: out of sample,
    by the state before it trained on them), named by `labels`."""
    corr_by_era = {}
    for line in log_path.read_text().splitlines():
        if '"hedge/corr_' in line:
            r = json.loads(line)
            corr_by_era[r["era"]] = [r.get(f"hedge/corr_{x}") for x in range(len(labels))]  # a resumed run logs again
    corr_ExX = np.array(list(corr_by_era.values()), np.float64).reshape(-1, len(labels))
    return {label: summarize(c[np.isfinite(c)]) for label, c in zip(labels, corr_ExX.T)}


def _ridge(path: Path, timeline, predicted: np.ndarray, val, embargo: int, rows_per_era: int, seed: int) -> pl.DataFrame:
    """The ridge baseline's predictions: those of an earlier report are reused for the validation
    eras they cover (an update or `dynjax evaluate` fits only the eras added and the live ones)."""
    reuse = None
    if path.is_file():
        reuse = pl.read_parquet(path).filter(pl.col("era").is_in(list(val.index.names)) & pl.col("id").is_in(val.ids.implode()))
    skip = frozenset() if reuse is None else frozenset(reuse["era"].unique())
    fresh = ridge_walk_forward(timeline, predicted, embargo, rows_per_era=rows_per_era, seed=seed, skip=skip)
    ridge = pl.concat([f for f in (reuse, fresh) if f is not None])
    ridge.write_parquet(path)
    return ridge


def _selection_per_era(selection: pl.DataFrame, data_dir) -> pl.DataFrame:
    per_era = selection.group_by("era").agg(pl.col("selected").sum().alias("n_selected"))
    if not has_truth(data_dir):
        return per_era
    truth = active_features(data_dir)
    rows = []
    for (era,), part in selection.group_by("era"):
        active = truth.get(era, set())
        chosen = set(part.filter(pl.col("selected"))["feature"])
        top = set(part.sort("importance", descending=True)["feature"][: len(active)])
        hit = len(chosen & active)
        rows.append((era, hit / max(len(active), 1), hit / max(len(chosen), 1), len(top & active) / max(len(active), 1)))
    quality = pl.DataFrame(rows, schema=["era", "recall", "precision", "topk_recall"], orient="row")
    return per_era.join(quality, on="era")


def exposure_and_neutral_view(split, preds: pl.DataFrame, columns: np.ndarray | None,
                              proportion: float) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Per era of `split`: the predictions' feature-neutral corr and max feature exposure (`fnc`,
    `max_exposure`: numerai-tools' definitions, `dynjax.eval.neutral`); with `columns`, also their
    neutralised view (each era's rows neutralised against those features at `proportion`, as
    `neutralize_split`) and its figures (`fnc_neutral`, `max_exposure_neutral`). An era's features
    are factored once for all of it."""
    ids = pl.DataFrame({"id": split.ids})
    pred_N = ids.join(preds.select("id", "prediction"), on="id", how="left", maintain_order="left")["prediction"].to_numpy()
    neutral_N = None if columns is None else pred_N.copy()
    every = columns is None or np.array_equal(columns, np.arange(split.x_NxF.shape[1]))
    rows = []
    for e in range(split.index.n_eras):
        r, labeled = split.index.rows(e), split.index.labeled_rows(e)
        x_RxF = float_view_np(split.x_NxF[r])
        span = FeatureSpan(x_RxF)
        if neutral_N is not None and np.ptp(pred_N[r]) > 0:
            view = span if every else FeatureSpan(x_RxF[:, columns])
            neutral_N[r] = view.neutralize(pred_N[r], proportion)
        n = labeled.stop - labeled.start
        if n < 3:
            continue
        span = span if n == r.stop - r.start else FeatureSpan(x_RxF[:n])  # labelled rows come first
        scored = [era_exposure(p[labeled], split.y_NxT[labeled, 0], span) for p in (pred_N, neutral_N) if p is not None]
        rows.append((split.index.names[e], *(v for s in scored for v in (s["fnc"], s["max_exposure"]))))
    names = ["fnc", "max_exposure"] + (["fnc_neutral", "max_exposure_neutral"] if neutral_N is not None else [])
    exposure = pl.DataFrame(rows, schema=["era", *names], orient="row")
    if neutral_N is None:
        return exposure, None
    return exposure, preds.drop("prediction").join(ids.with_columns(pl.Series("prediction", neutral_N)), on="id",
                                                   how="left").select(preds.columns)


def _write_submission(out: Path, live, preds: pl.DataFrame) -> None:
    """Numerai submission: `id,prediction`, predictions ranked into (0, 1) per era."""
    sub = rank_per_era(pl.DataFrame({"id": live.ids}).join(preds, on="id", how="left"))
    sub.select("id", "prediction").write_csv(out / "submission.csv")


@era_blas
def score_predictions(data: NumeraiData, preds: pl.DataFrame) -> dict:
    """Validation scores of any model's predictions (`id`, `prediction`): corr mean / Sharpe /
    drawdown per era (numerai-tools), mean max feature exposure and feature-neutral corr."""
    val = data.validation
    truth = pl.DataFrame({"id": val.ids, "era": val.era_column(), "target": val.y_NxT[:, 0]})
    per_era = per_era_corr(truth.join(preds.select("id", "prediction"), on="id"), "prediction")
    exposure, _ = exposure_and_neutral_view(val, preds, None, 0.0)
    return {**summarize(per_era["corr"].to_numpy()), "max_exposure_mean": float(exposure["max_exposure"].mean()),
            "fnc_mean": float(exposure["fnc"].fill_nan(None).mean())}
