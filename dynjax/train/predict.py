"""`dynjax predict`: a Numerai submission for a live file from a run's latest checkpoint."""

import dataclasses
import json
from pathlib import Path

import jax
import polars as pl

from dynjax.config import RunConfig, from_dict
from dynjax.data import check_same_features, impute_splits, load_numerai, load_split
from dynjax.eval.scores import rank_per_era
from dynjax.train.checkpoint import CheckpointError, RunCheckpoints
from dynjax.train.outputs import era_ids, prediction_frame
from dynjax.train.run import make_run_context, predict_era


def predict_file(run_dir: str | Path, live_path: str | Path, out_csv: str | Path) -> int:
    """Predict every row of `live_path`; writes `id,prediction` (ranked into (0, 1) per era)."""
    run_dir = Path(run_dir)
    cfg = from_dict(RunConfig, json.loads((run_dir / "config.json").read_text()))
    ckpt = RunCheckpoints(run_dir / "checkpoints", keep=cfg.train.keep_checkpoints)
    step = ckpt.latest_step()
    if step is None:
        raise CheckpointError(f"{run_dir / 'checkpoints'}: no checkpoint to predict with")
    data_dir = Path(cfg.data.data_dir) if cfg.data.data_dir else run_dir / "data"
    data = load_numerai(data_dir, cfg.data.feature_spec, cfg.data.targets, live=False, min_era_rows=cfg.data.min_era_rows)
    check_same_features(data_dir / "train.parquet", live_path)
    live = load_split(live_path, data.train.features, cfg.data.targets, require_targets=False, min_era_rows=1)
    impute_splits(cfg.data.missing, data.train, data.validation, live, seed=cfg.seed)

    # The live eras follow the history on one timeline, so their era context is the run's own.
    run = make_run_context(cfg, dataclasses.replace(data, live=live))
    state = ckpt.restore_state(step, jax.eval_shape(run.fresh_state))
    ckpt.close()
    first_live = run.timeline.n_eras - live.index.n_eras
    frames = [prediction_frame(era_ids(run.timeline, e), run.timeline.name(e), predict_era(run, state, e)[0][0])
              for e in range(first_live, run.timeline.n_eras)]
    sub = rank_per_era(pl.concat(frames))
    sub.select("id", "prediction").write_csv(out_csv)
    return sub.height
