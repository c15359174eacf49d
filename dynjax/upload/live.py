"""The model Numerai runs for you: a callable over a live pandas frame, numpy and pandas only.

`dynjax export` pickles a `LiveModel` as source and plain values (`dynjax.upload.portable`:
this module, `dynjax.data.bins` and `dynjax.data.errors` travel inside the pickle as source,
the model as `to_state()`), so Numerai's image loads and calls it in any Python from 3.10 on,
without dynjax, flax, optax or orbax. It computes the prediction
`dynjax predict` makes, from per-(feature, bin) tables the export evaluated once for the
era after the run's history (`FeatureAttentionModel.era_tables`):

    att_RxF  = mean_h normalise_f(logit[h, f, x_rf])  over the kept features
    pred_R   = 0.5 + n_kept * sum_f att_rf * gate_f * beta[f, x_rf]     per member
               + sum_p u_rf u_rg pair[p, x_rf, x_rg],  u = n_kept * att * gate   (the screened pairs (f, g), model.pairs)
    output   = rank per era of  sum_n weight_n * tie-kept rank(pred_nR)   (neutralised first with eval.neutralize)

over the members n, the walk-forward's and then the frozen ones (the safe expert), weighted as the run weighs them.

The arithmetic is float64 here and float32 in dynjax, so the two agree to ~1e-7 before
ranking; each member's scores are rounded to float32 before they are ranked, so scores that tie
in dynjax (a member still close to 0.5) tie here too, and only a score within dynjax's rounding
error of a float32 boundary can still swap places with its neighbour.
"""

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from dynjax.data.bins import MAX_BIN, MISSING, Imputer, fill_block, float_view_np
from dynjax.data.errors import preview

_MASKED = -1e30  # a masked feature's logit for the sorting normalisers (finite: no inf - inf in their sums)
_CHUNK_ROWS = 1024  # rows per pass: bounds the [R, F] float64 temporaries (~22 MB each at F 2,748)


@dataclass(frozen=True, eq=False)
class LiveModel:
    """`model(live_features) -> pd.DataFrame` with one `prediction` column in (0, 1), indexed like the input."""

    features: tuple[str, ...]
    normalizer: str  # "softmax", "sparsemax" or "entmax15"
    logit_MxHxFxB: np.ndarray  # per member, float32
    gate_MxF: np.ndarray
    keep_MxF: np.ndarray  # selection mask and open gates
    beta_MxFxB: np.ndarray
    weight_M: np.ndarray  # the members' weights (Hedge's, scaled by the frozen share), summing to one
    imputer: Imputer
    neutralize: float = 0.0  # `eval.neutralize`: proportion of per-era neutralisation
    neutral_cols: np.ndarray | None = None  # the features (indices into `features`) neutralised against
    feature_columns: tuple[str, ...] | None = None  # every feature column of the training file (None: unknown)
    pairs_Px2: np.ndarray | None = None  # the screened feature pairs (model.pairs), shared by the members
    pair_MxPxBB: np.ndarray | None = None  # each member's table per pair over its two bins (flattened, f's bin major)
    info: dict = field(default_factory=dict)  # what was exported: run, target, embargo, era, dynjax and Python versions

    def __call__(self, live_features: pd.DataFrame) -> pd.DataFrame:
        check_columns(live_features, self.features, self.feature_columns)
        x_NxF = bins(live_features, self.features)
        eras = _era_labels(live_features)
        out = np.empty(len(x_NxF))
        for era in pd.unique(eras):
            rows = np.flatnonzero(eras == era)
            x_RxF = impute(self.imputer, x_NxF[rows])
            score_R = self.combine(self.member_predictions(x_RxF))
            if self.neutral_cols is not None:
                score_R = neutralize(score_R, x_RxF[:, self.neutral_cols], self.neutralize)
            out[rows] = rank01(score_R)
        return pd.DataFrame({"prediction": out}, index=live_features.index)

    def to_state(self) -> dict:
        """The model as plain Python values (arrays as dtype, shape and bytes): what the pickle stores."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["imputer"] = {f.name: getattr(self.imputer, f.name) for f in fields(Imputer)}
        return plain(state)

    @classmethod
    def from_state(cls, state: dict) -> "LiveModel":
        """The model from `to_state()`'s values, in whatever Python and numpy load them."""
        values = unplain(state)
        return cls(**{**values, "imputer": Imputer(**values["imputer"])})

    def member_predictions(self, x_RxF: np.ndarray) -> np.ndarray:
        """Every member's raw prediction of one era's rows, `[M, R]`, as dynjax's members make them."""
        pred_MxR = np.empty((len(self.weight_M), len(x_RxF)))
        for start in range(0, len(x_RxF), _CHUNK_ROWS):
            chunk = x_RxF[start:start + _CHUNK_ROWS]
            for m in range(len(self.weight_M)):
                pred_MxR[m, start:start + len(chunk)] = self._member(m, chunk)
        # At dynjax's float32 resolution: scores that tie there (a member that barely moves from 0.5)
        # tie here too, rather than ranking on digits dynjax never had.
        return pred_MxR.astype(np.float32).astype(np.float64)

    def combine(self, pred_MxR: np.ndarray) -> np.ndarray:
        """Hedge-weighted mean of the members' tie-kept ranks (one member: its raw prediction)."""
        if len(pred_MxR) == 1:
            return pred_MxR[0]
        ranks_RxM = pd.DataFrame(pred_MxR.T).rank(method="average").to_numpy()
        return ranks_RxM @ (self.weight_M / self.weight_M.sum())

    def _member(self, m: int, x_RxF: np.ndarray) -> np.ndarray:
        keep_F = self.keep_MxF[m]
        n_feat, n_bins = self.beta_MxFxB.shape[1:]
        flat_RxF = np.arange(n_feat) * n_bins + x_RxF.astype(np.int64)
        att_RxF = np.zeros(x_RxF.shape)
        if keep_F.any():
            for logit_FxB in self.logit_MxHxFxB[m]:
                logit_RxF = np.where(keep_F, logit_FxB.reshape(-1)[flat_RxF].astype(np.float64), -np.inf)
                att_RxF += NORMALIZERS[self.normalizer](logit_RxF)
            att_RxF /= self.logit_MxHxFxB.shape[1]
        beta_RxF = self.beta_MxFxB[m].reshape(-1)[flat_RxF].astype(np.float64)
        u_RxF = keep_F.sum() * att_RxF * self.gate_MxF[m]
        pred_R = 0.5 + (u_RxF * beta_RxF).sum(axis=1)
        if self.pairs_Px2 is not None and len(self.pairs_Px2):
            f_P, g_P = self.pairs_Px2[:, 0], self.pairs_Px2[:, 1]
            cell_RxP = x_RxF[:, f_P].astype(np.int64) * n_bins + x_RxF[:, g_P]
            value_RxP = self.pair_MxPxBB[m][np.arange(len(f_P)), cell_RxP].astype(np.float64)
            pred_R = pred_R + (u_RxF[:, f_P] * u_RxF[:, g_P] * value_RxP).sum(axis=1)
        return pred_R


def check_columns(frame: pd.DataFrame, features: tuple[str, ...], training: tuple[str, ...] | None) -> None:
    """ValueError unless the frame carries the training file's `feature*` columns (as `dynjax predict`)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"dynjax live model: expected a pandas DataFrame of live features, got {type(frame).__name__}")
    live = {str(c) for c in frame.columns if str(c).startswith("feature")}
    expected = set(training if training is not None else features)
    missing, extra = sorted(expected - live), sorted(live - expected) if training is not None else []
    if missing or extra:
        raise ValueError(f"dynjax live model: the live feature columns differ from the training file's: "
                         f"missing {preview(missing) or 'none'}; extra {preview(extra) or 'none'}")


def bins(frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """The frame's feature columns (checked by `check_columns`) as int8 bins, null as the missing bin."""
    if len(frame) == 0:
        raise ValueError("dynjax live model: the live features frame is empty (no rows to predict)")
    bad = [f"{c} ({frame[c].dtype})" for c in features
           if not pd.api.types.is_numeric_dtype(frame[c].dtype) or pd.api.types.is_bool_dtype(frame[c].dtype)]
    if bad:
        raise ValueError(f"dynjax live model: feature columns must be numeric bins 0..{MAX_BIN}; these are not: {preview(bad)}")
    # Column by column: no [N, F] float64 copy of the frame (6,000 x 2,748 would be 132 MB per temporary).
    x_NxF = np.empty((len(frame), len(features)), np.int8)
    wrong = []
    for j, name in enumerate(features):
        values = frame[name].to_numpy(np.float64, na_value=np.nan)
        seen = ~np.isnan(values)
        if np.any(seen & ((values != np.round(values)) | (values < 0) | (values > MAX_BIN))):
            wrong.append(name)
            continue
        x_NxF[:, j] = np.where(seen, values, MISSING)
    if wrong:
        raise ValueError(f"dynjax live model: feature values must be integer bins 0..{MAX_BIN} (or null); "
                         f"other values in {preview(wrong)}")
    return x_NxF


def impute(imputer: Imputer, x_RxF: np.ndarray) -> np.ndarray:
    """One era's rows with `MISSING` replaced as the run's imputer does (a copy)."""
    x_RxF = x_RxF.copy()
    fill_block(imputer, x_RxF)
    return x_RxF


def neutralize(score_R: np.ndarray, x_RxF: np.ndarray, proportion: float) -> np.ndarray:
    """numerai-tools' `neutralize` of one era (least squares on the features' float view and a constant),
    in numpy: numerai-tools 0.4, in Numerai's image, imports torch (tested equal)."""
    if proportion == 0 or np.ptp(score_R) == 0:
        return score_R
    n_RxF = np.hstack([float_view_np(x_RxF).astype(np.float64), np.ones((len(score_R), 1))])
    coef_F = np.linalg.lstsq(n_RxF, score_R, rcond=1e-6)[0]
    return score_R - proportion * (n_RxF @ coef_F)


def rank01(score_R: np.ndarray) -> np.ndarray:
    """Tie-kept ranks scaled into (0, 1): `(average rank - 0.5) / n`, as `dynjax predict` writes."""
    return (pd.Series(score_R).rank(method="average").to_numpy() - 0.5) / len(score_R)


def softmax(z_RxF: np.ndarray) -> np.ndarray:
    e = np.exp(z_RxF - z_RxF.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sparsemax(z_RxF: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the simplex (Martins & Astudillo 2016), by sorting."""
    z = np.where(np.isfinite(z_RxF), z_RxF, _MASKED)
    s = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    cum = np.cumsum(s, axis=-1)
    support = (1 + k * s > cum).sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cum, support - 1, axis=-1) - 1) / support
    return np.maximum(z - tau, 0.0)


def entmax15(z_RxF: np.ndarray) -> np.ndarray:
    """1.5-entmax (Peters et al. 2019), exact by sorting."""
    z = np.where(np.isfinite(z_RxF), z_RxF, _MASKED) / 2
    z = z - z.max(axis=-1, keepdims=True)
    s = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    mean = np.cumsum(s, axis=-1) / k
    mean_sq = np.cumsum(s * s, axis=-1) / k
    delta = (1 - k * (mean_sq - mean * mean)) / k
    tau_k = mean - np.sqrt(np.maximum(delta, 0.0))
    support = (tau_k <= s).sum(axis=-1, keepdims=True)
    tau = np.take_along_axis(tau_k, support - 1, axis=-1)
    return np.maximum(z - tau, 0.0) ** 2


NORMALIZERS = {"softmax": softmax, "sparsemax": sparsemax, "entmax15": entmax15}


def plain(value):
    """`value` with every array as `{"ndarray": (dtype, shape, bytes)}`: no numpy class in the pickle,
    so a pickle written with numpy 2 loads with numpy 1.26 (Numerai's Python 3.10 image)."""
    if isinstance(value, np.ndarray):
        return {"ndarray": (value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def unplain(value):
    """`plain`'s inverse."""
    if isinstance(value, dict):
        if set(value) == {"ndarray"}:
            dtype, shape, data = value["ndarray"]
            return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()
        return {k: unplain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(unplain(v) for v in value)
    return value


def _era_labels(frame: pd.DataFrame) -> np.ndarray:
    """Each row's era (a live file without an `era` column is one era)."""
    if "era" in frame.columns:
        return frame["era"].astype(str).to_numpy()
    return np.zeros(len(frame), dtype=object)
