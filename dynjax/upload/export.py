"""`dynjax export`: a run's next-era model as a Numerai model-upload pickle.

The run's `next/` state (params of every member and of the frozen ones, the selection mask,
the Hedge weights and frozen share, the next era's context, the imputer, the feature list) is evaluated
once into per-(feature, bin) tables (`FeatureAttentionModel.era_tables`) and packed into a
`dynjax.upload.live.LiveModel`, which `dynjax.upload.portable` writes as source and plain
values: the pickle needs numpy and pandas to load and run, in any Python from 3.10 on.
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dynjax.data.bins import Imputer
from dynjax.eval.contribution import run_neutralizers
from dynjax.train.next_era import NextEra, load_next
from dynjax.train.run import make_predictor, run_weights
from dynjax.upload.live import LiveModel
from dynjax.upload.portable import OLDEST_PYTHON, NotPortable, dumps, interpreter

# What the pickle needs where Numerai runs it (numerai-predict's images: Python 3.10-3.14).
NEEDS = f"Python >= {OLDEST_PYTHON[0]}.{OLDEST_PYTHON[1]}, numpy >= 1.26, pandas >= 2.2"


class ExportError(ValueError):
    """A model that would not run where Numerai runs it (nothing is written)."""


def live_model(nxt: NextEra, run_dir: str | Path) -> LiveModel:
    """The next-era model of a run, as numpy tables."""
    cfg = nxt.cfg
    predictor = make_predictor(cfg, len(nxt.features))
    state = nxt.restore_state(predictor.abstract_state())
    mask_F = state.selection.mask_F

    def tables(params):
        return predictor.model.apply(params, mask_F, nxt.context, method="era_tables")

    # The members, then the frozen ones (the safe expert), weighted as `dynjax predict` weighs them.
    stacked = jax.tree.map(lambda *a: jnp.concatenate(a), state.train.ema_params, state.frozen)
    members = jax.device_get(jax.vmap(tables)(stacked))
    weight_M = run_weights(predictor, state)
    return LiveModel(
        features=tuple(nxt.features), normalizer=cfg.model.normalizer,
        logit_MxHxFxB=np.asarray(members["logit_HxFxB"], np.float32), gate_MxF=np.asarray(members["gate_F"], np.float64),
        keep_MxF=np.asarray(members["keep_F"], bool), beta_MxFxB=np.asarray(members["beta_FxB"], np.float32),
        weight_M=np.asarray(weight_M, np.float64),
        imputer=nxt.imputer or Imputer(cfg.data.missing), feature_columns=nxt.feature_columns,
        neutralize=cfg.eval.neutralize, neutral_cols=run_neutralizers(cfg, nxt.features, run_dir),
        pairs_Px2=np.asarray(cfg.model.pair_index, np.int64).reshape(-1, 2) if cfg.model.pair_index else None,
        pair_MxPxBB=np.asarray(members["pair_PxBB"], np.float32) if cfg.model.pair_index else None,
        info=export_info(nxt, run_dir))


def export_info(nxt: NextEra, run_dir: str | Path) -> dict:
    """What the pickle records of its making (`model.info` where Numerai loads it)."""
    try:
        dynjax_version = version("dynjax")
    except PackageNotFoundError:
        dynjax_version = "unknown"
    cfg = nxt.cfg
    return {"run": str(Path(run_dir).resolve()), "target": cfg.data.targets[0], "embargo": cfg.data.embargo_eras,
            "era_number": nxt.number, "after_era": nxt.after, "dynjax": dynjax_version,
            "exported_with_python": interpreter(), "needs": NEEDS}


def export_run(run_dir: str | Path, out: str | Path) -> Path:
    """Write the pickle of `run_dir`'s next-era model to `out` (atomically); returns `out`.

    ExportError, before anything is written, when the model would not run in every image."""
    model = live_model(load_next(run_dir), run_dir)
    try:
        blob = dumps(model)
    except NotPortable as err:
        raise ExportError(f"the pickle would not run in every numerai-predict image: {err}") from None
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(out)
    return out
