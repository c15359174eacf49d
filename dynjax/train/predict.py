"""`dynjax predict`: a Numerai submission for a live file, from a run's next-era state alone.

Only the live file and `run/next/` are read (no training or validation data): the live
file is checked against the training file's feature columns, filled by the run's own
imputer, and each of its eras is predicted as the era after the run's last, with the era
context the run stored for it, and neutralised as the run's `eval.neutralize` says. So
predicting the run's own live file reproduces its `submission.csv`.
"""

from pathlib import Path

import polars as pl

from dynjax.data import DataError, load_split
from dynjax.data.errors import preview
from dynjax.data.missing import fit_imputer, impute_inplace
from dynjax.data.numerai import check_feature_columns
from dynjax.eval.contribution import neutralize_era, run_neutralizers
from dynjax.eval.scores import prediction_frame, rank_per_era
from dynjax.train.checkpoint import CheckpointError
from dynjax.train.next_era import load_next
from dynjax.train.run import make_predictor, predict_rows

_NO_FIT = ("bin", "era_median")  # imputers with nothing fitted on the training data


def predict_file(run_dir: str | Path, live_path: str | Path, out_csv: str | Path) -> int:
    """Predict every row of `live_path`; writes `id,prediction` (ranked into (0, 1) per era)."""
    nxt = load_next(run_dir)
    cfg, live_path = nxt.cfg, Path(live_path)
    if nxt.feature_columns is not None:
        check_feature_columns(nxt.feature_columns, live_path)
    live = load_split(live_path, nxt.features, cfg.data.targets, require_targets=False, min_era_rows=1,
                      live_after=nxt.number - 1)
    early = [n for n, t in zip(live.index.names, live.index.numbers) if t < nxt.number]
    if early:
        raise DataError(live_path, f"eras {preview(early)} are not after the run's last era {nxt.after}: a live file "
                        "holds the eras to come (update the run with dynjax update to predict later history)")
    imputer = nxt.imputer
    if imputer is None and cfg.data.missing not in _NO_FIT:
        raise CheckpointError(f"{nxt.directory}: the run stored no fitted {cfg.data.missing!r} imputer (its data were "
                              "not imputed through dynjax.data.impute), so live features cannot be filled the same way")
    impute_inplace(imputer or fit_imputer(cfg.data.missing, live.x_NxF[:0]), live.x_NxF, live.index)

    predictor = make_predictor(cfg, len(nxt.features))
    state = nxt.restore_state(predictor.abstract_state())
    neutral_cols = run_neutralizers(cfg, nxt.features, run_dir)
    frames = []
    for j in range(live.index.n_eras):
        rows = live.index.rows(j)
        pred_GxR, _, _ = predict_rows(predictor, state, live, j, nxt.context)
        pred_R = pred_GxR[0]
        if neutral_cols is not None:  # as the run's submission.csv: numerai-tools' neutralize per era
            pred_R = neutralize_era(pred_R, live.x_NxF[rows][:, neutral_cols], cfg.eval.neutralize)
        frames.append(prediction_frame(live.ids[rows.start:rows.stop], live.index.names[j], pred_R))
    sub = rank_per_era(pl.concat(frames))
    sub.select("id", "prediction").write_csv(out_csv)
    return sub.height
