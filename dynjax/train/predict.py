"""`dynjax predict`: a Numerai submission for a live file from a run's latest checkpoint."""

import json
from pathlib import Path

import jax
import numpy as np
import polars as pl

from dynjax.config import RunConfig, from_dict
from dynjax.data import check_same_features, impute_splits, load_numerai, load_split
from dynjax.data.timeline import make_timeline
from dynjax.data.windows import era_chunks
from dynjax.eval.scores import rank_per_era
from dynjax.model.context import context_window, era_summaries
from dynjax.model.tft import FeatureAttentionModel
from dynjax.train.checkpoint import CheckpointError, RunCheckpoints
from dynjax.train.state import make_optimizer
from dynjax.train.step import make_predict
from dynjax.train.walk_forward import initial_run_state


def predict_file(run: str | Path, live_path: str | Path, out_csv: str | Path) -> int:
    """Predict every row of `live_path`; writes `id,prediction` (ranked into (0, 1) per era)."""
    run = Path(run)
    cfg = from_dict(RunConfig, json.loads((run / "config.json").read_text()))
    ckpt = RunCheckpoints(run / "checkpoints", keep=cfg.train.keep_checkpoints)
    step = ckpt.latest_step()
    if step is None:
        raise CheckpointError(f"{run / 'checkpoints'}: no checkpoint to predict with")
    data_dir = Path(cfg.data.data_dir) if cfg.data.data_dir else run / "data"
    data = load_numerai(data_dir, cfg.data.feature_spec, cfg.data.targets, live=False, min_era_rows=cfg.data.min_era_rows)
    check_same_features(data_dir / "train.parquet", live_path)
    live = load_split(live_path, data.train.features, cfg.data.targets, require_targets=False, min_era_rows=1)
    impute_splits(cfg.data.missing, data.train, data.validation, live, seed=cfg.seed)

    n_features = len(data.train.features)
    model = FeatureAttentionModel(cfg.model, n_features)
    optimizer = make_optimizer(cfg.optim)
    abstract = jax.eval_shape(lambda: initial_run_state(model, optimizer, jax.random.key(cfg.seed)))
    state = ckpt.restore_state(step, abstract)
    ckpt.close()
    history = make_timeline(*[s for s in (data.train, data.validation) if s is not None])
    summary_ExF = np.concatenate([era_summaries(s) for s in history.splits])
    predict = make_predict(model)
    frames = []
    for e in range(live.index.n_eras):
        ctx = context_window(summary_ExF, history.numbers_E, int(live.index.numbers[e]), cfg.data.embargo,
                             cfg.model.context_eras) if cfg.model.context else (None, None)
        preds = [np.asarray(predict(state.train.params, x, state.selection.mask_F, *ctx)[0])[m]
                 for x, m, _ in era_chunks(live, e, cfg.train.predict_chunk)]
        rows = live.index.rows(e)
        frames.append(pl.DataFrame({"id": live.ids[rows.start:rows.stop], "era": live.index.names[e], "prediction": np.concatenate(preds)}))
    sub = rank_per_era(pl.concat(frames))
    sub.select("id", "prediction").write_csv(out_csv)
    return sub.height
