"""Synthetic Numerai-format data with ground truth (`dynjax synth`).

Features are per-era quintile bins of latent Gaussian features that correlate in clusters
(each cluster is one named feature group in `features.json`). Two kinds of signal:

- `sparse`: the target is a noisy function of a few *active* features; which features are
  active (and with which weights and shapes) changes with a hidden regime that switches every
  few dozen eras and returns.
- `diffuse` (Numerai-like): small weights on most features, each drifting from era to era
  (AR(1) around a base weight), one feature group whose sign flips with a slow hidden regime,
  and pairwise (product) and threshold interactions; each feature alone correlates ~0.01 with
  the target.

Next to Numerai's files, `truth/` records the weights of every era's active features and the
noise-free signal of every row, so the attainable correlation and selection recall are known.
"""

import dataclasses
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from dynjax.data.references import write_synthetic_references

# Named synthetic settings (`dynjax synth --setting NAME`): overrides of `SynthConfig`'s defaults,
# which are the embedded default set of `dynjax walk-forward`. Every claim about the method is
# checked on all of them.
SETTINGS = {
    "default": {},
    "switching": {"seed": 1, "n_regimes": 4, "regime_eras": 10},  # short regimes: many switches in validation
    "wide": {"seed": 2, "n_features": 300, "n_factors": 30, "active_per_regime": 12},
    "noisy": {"seed": 3, "noise": 5.0, "regime_eras": 40},  # oracle corr ~0.17
    # Numerai-like: 300 features, ~1,500 rows an era, 360 + 120 eras, oracle corr ~0.1.
    "diffuse": {"seed": 4, "signal": "diffuse", "n_features": 300, "n_factors": 32, "rows_per_era": 1500,
                "n_train_eras": 360, "n_val_eras": 120, "noise": 8.5},
    # Recurring regimes: 3 sticky regimes of ~14 eras that return many times in training and validation,
    # so a static model that learned them all is strong (the frozen model and ridge are the yardsticks).
    "recurring": {"seed": 5, "n_train_eras": 240, "n_val_eras": 80, "rows_per_era": 900, "regime_eras": 14},
    # The diffuse kind at Numerai's signal-to-noise: oracle corr ~0.04, static LightGBM ~0.02.
    "numerai": {"seed": 6, "signal": "diffuse", "n_features": 300, "n_factors": 32, "rows_per_era": 1500,
                "n_train_eras": 360, "n_val_eras": 120, "noise": 21.0},
}

TARGET_NAMES = ("target", "target_ender_20", "target_ender_60", "target_jasper_20")
FIVE_BIN_QUANTILES = (0.05, 0.25, 0.75, 0.95)  # Numerai's 5/20/50/20/5 % target shape
SEVEN_BIN_QUANTILES = (0.05, 0.15, 0.35, 0.65, 0.85, 0.95)
SHAPES = ("linear", "u_shape", "threshold")
_SHAPE_TABLES = {  # effect of bins 0..4, centred
    "linear": np.array([-2.0, -1.0, 0.0, 1.0, 2.0]),
    "u_shape": np.array([2.0, -0.5, -1.0, -0.5, 0.0]),
    "threshold": np.array([-1.0, -1.0, -1.0, 1.5, 1.5]),
}


@dataclass(frozen=True, eq=False)
class Regime:
    """Active features of one regime, with their weights and response shapes."""

    features: np.ndarray  # int [A]
    weights: np.ndarray  # float [A]
    shapes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class DiffuseSignal:
    """A diffuse signal's ground truth: every era's weights and the interaction terms."""

    weight_ExF: np.ndarray  # per era number - 1: drifting weights, the flipping group's sign applied
    shapes: tuple[str, ...]  # response shape of each feature's bins
    flip_F: np.ndarray  # bool: the group whose sign flips
    pairs_Kx2: np.ndarray  # int feature pairs of the interaction terms
    threshold_I: np.ndarray  # bool: a threshold term (both in the top two bins) instead of a product
    coef_I: np.ndarray
    share: float  # of the signal's variance in the interactions


@dataclass(frozen=True, eq=False)
class Split:
    """Generated rows of one file, before writing."""

    eras: np.ndarray  # int era numbers per row
    x_NxF: np.ndarray  # int8 bins, -1 where null
    signal_N: np.ndarray
    y_NxT: np.ndarray


# `--layout v5.2`: Numerai's v5.2 shape (2,748 features, `medium` 780 of them, `small` 42, the eleven
# named groups) with names of Numerai's kind, three random words; `--layout v5.3`: v5.2's features
# and 807 new ones, the `quantum` set (3,555 in `all`). Flags still override their fields.
LAYOUTS = {"v5": {}, "v5.2": {"layout": "v5.2", "n_features": 2748, "n_groups": 11, "n_factors": 22},
           "v5.3": {"layout": "v5.3", "n_features": 3555, "n_groups": 11, "n_factors": 22}}
SIGNALS = ("sparse", "diffuse")


@dataclass(frozen=True)
class SynthConfig:
    """Synthetic Numerai-format data with known ground truth (`dynjax synth`)."""

    n_train_eras: int = 160
    n_val_eras: int = 48
    gap_eras: int = 4  # eras between train and validation that no file holds
    rows_per_era: int = 400  # mean; eras vary by +-20 %
    n_features: int = 120
    n_factors: int = 12  # latent factors that make features correlate in clusters
    n_regimes: int = 3
    active_per_regime: int = 8
    regime_eras: int = 24  # mean length of a regime in eras
    noise: float = 3.0  # target noise std over the unit-variance signal
    nan_rate: float = 0.01  # fraction of feature values that are null
    target_nan_rate: float = 0.0  # fraction of main-target values that are NaN
    small_frac: float = 0.15
    medium_frac: float = 0.5
    n_groups: int = 8  # named feature groups in features.json (one per latent factor cluster, as Numerai's)
    # signal="diffuse" (Numerai-like): small drifting weights on most features, one feature group whose
    # sign flips with a slow hidden regime, pairwise and threshold interactions; the regime fields above
    # (n_regimes, active_per_regime, regime_eras) are then unused.
    signal: str = "sparse"  # "sparse": a few active features per regime, regimes switch and return
    dense_frac: float = 0.85  # diffuse: share of features with a non-zero base weight
    drift: float = 0.2  # diffuse: stationary std of each weight's AR(1) drift, relative to the base weights'
    drift_eras: float = 20.0  # diffuse: the drift's time constant in eras
    flip_eras: int = 60  # diffuse: mean length of the flipping group's sign regime
    n_interactions: int = 24  # diffuse: pairwise (product) and threshold interaction terms
    interaction_share: float = 0.5  # diffuse: share of the signal's variance they carry
    layout: str = "v5"  # "v5.2" / "v5.3": Numerai-style feature names and that version's feature sets (`dynjax synth --layout`)
    seed: int = 0

    def __post_init__(self):
        _check(self.layout in LAYOUTS, f"unknown synthetic layout {self.layout!r}; choose from {tuple(LAYOUTS)}")
        _check(self.signal in SIGNALS, f"unknown synthetic signal {self.signal!r}; choose from {SIGNALS}")
        _check(self.n_groups >= 1 and 0 < self.dense_frac <= 1, "n_groups must be >= 1 and dense_frac in (0, 1]")
        _check(self.drift >= 0 and self.drift_eras > 0 and self.flip_eras >= 1, "drift >= 0, drift_eras > 0, flip_eras >= 1")
        _check(self.n_interactions >= 0 and 0 <= self.interaction_share < 1, "n_interactions >= 0, interaction_share in [0, 1)")
        _check(self.n_interactions == 0 or self.n_features >= 2, "interactions need two features")
        _check(self.n_train_eras >= 1 and self.n_val_eras >= 1, "need at least one train and one validation era")
        _check(self.rows_per_era >= 10, "rows_per_era must be >= 10")
        _check(1 <= self.active_per_regime <= self.n_features, "active_per_regime must be in 1..n_features")
        _check(self.n_regimes >= 1 and self.n_factors >= 1, "n_regimes and n_factors must be >= 1")
        _check(0 <= self.nan_rate < 1 and 0 <= self.target_nan_rate < 1, "NaN rates must be in [0, 1)")
        _check(self.noise >= 0 and self.gap_eras >= 0, "noise and gap_eras must be >= 0")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
# Numerai's named feature sets per layout, as counts of its full width (scaled with n_features). v5.3's
# `quantum` set is its 807 new features (the last ones); small and medium are drawn from the rest.
LAYOUT_SETS = {"v5.2": ({"small": 42, "medium": 780}, 2748), "v5.3": ({"small": 42, "medium": 780, "quantum": 807}, 3555)}
NEW_SETS = ("quantum",)
_ADJECTIVES = ("abating", "unadaptable", "leaky", "sodden", "ungrown", "plated", "braw", "gimlet", "tinted", "zonal",
               "bushy", "molten", "fickle", "hoary", "jovial", "lanky", "mellow", "nimble", "ornate", "pallid", "quaint",
               "rugged", "sallow", "tawny", "umbral", "vapid", "wistful", "yeasty", "zesty", "brisk", "civic", "dusky")
_NOUNS = ("eagle", "marten", "heron", "quince", "lantern", "saddle", "cobble", "falcon", "garnet", "harbor", "inlet",
          "juniper", "kestrel", "ledger", "mortar", "nettle", "orchard", "pewter", "quarry", "rampart", "sable", "thicket",
          "umber", "vessel", "willow", "yarrow", "zephyr", "bramble", "cinder", "dormer", "ember", "fathom")


def feature_names(n: int, layout: str = "v5", seed: int = 0) -> list[str]:
    """`feature_0000`...; with layouts v5.2 / v5.3 Numerai-style `feature_<adjective>_<adjective>_<noun>`, unique."""
    if layout not in LAYOUT_SETS:
        return [f"feature_{i:04d}" for i in range(n)]
    a, b = len(_ADJECTIVES), len(_NOUNS)
    if n > a * a * b:
        raise ValueError(f"layout {layout} names at most {a * a * b} features, not {n}")
    codes = np.random.default_rng([seed, 4]).permutation(a * a * b)[:n]
    return [f"feature_{_ADJECTIVES[c // (a * b)]}_{_ADJECTIVES[c // b % a]}_{_NOUNS[c % b]}" for c in codes]


LIVE_ERA = "X"  # Numerai labels the live era so, not by its number


def era_label(number: int, live: int | None = None) -> str:
    """"0042"; the live era (number `live`) is labelled `LIVE_ERA` as in Numerai's live files."""
    return LIVE_ERA if number == live else f"{number:04d}"


def make_regimes(cfg: SynthConfig, rng: np.random.Generator) -> list[Regime]:
    regimes = []
    for _ in range(cfg.n_regimes):
        feats = np.sort(rng.choice(cfg.n_features, cfg.active_per_regime, replace=False))
        weights = rng.choice([-1.0, 1.0], len(feats)) * rng.uniform(0.5, 1.5, len(feats))
        shapes = tuple(rng.choice(SHAPES, len(feats), p=[0.6, 0.25, 0.15]))
        regimes.append(Regime(feats, weights, shapes))
    return regimes


def regime_sequence(n_eras: int, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Regime of each era: persistent blocks of geometric length, switching to a new regime."""
    seq = np.zeros(n_eras, np.int64)
    current = int(rng.integers(cfg.n_regimes))
    for e in range(n_eras):
        if e and cfg.n_regimes > 1 and rng.random() < 1.0 / cfg.regime_eras:
            current = int((current + rng.integers(1, cfg.n_regimes)) % cfg.n_regimes)
        seq[e] = current
    return seq


def quantile_bins(values_NxI: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Per-column rank bins at the given cumulative quantiles (0..len(quantiles))."""
    n = len(values_NxI)
    order = np.argsort(values_NxI, axis=0, kind="stable")
    edges = np.asarray(quantiles) * n
    bin_of_rank = np.searchsorted(edges, np.arange(n) + 0.5).astype(np.int8)
    bins = np.empty(values_NxI.shape, np.int8)
    np.put_along_axis(bins, order, np.broadcast_to(bin_of_rank[:, None], values_NxI.shape), axis=0)
    return bins


def draw_diffuse(cfg: SynthConfig, group_F: np.ndarray, flips_E: np.ndarray, rng: np.random.Generator) -> DiffuseSignal:
    """Base weights on `dense_frac` of the features, their AR(1) drift over the eras, the sign of
    group 0 from `flips_E` (0: +1, 1: -1), and the interaction terms among active features."""
    n_eras, n_feat = len(flips_E), cfg.n_features
    active_F = rng.random(n_feat) < cfg.dense_frac
    base_F = rng.standard_normal(n_feat) * active_F
    phi = np.exp(-1.0 / cfg.drift_eras)
    drift_ExF = np.empty((n_eras, n_feat))
    drift_ExF[0] = cfg.drift * rng.standard_normal(n_feat)
    for e in range(1, n_eras):
        drift_ExF[e] = phi * drift_ExF[e - 1] + np.sqrt(1 - phi**2) * cfg.drift * rng.standard_normal(n_feat)
    flip_F = group_F == 0
    sign_ExF = np.where(flip_F & (flips_E[:, None] == 1), -1.0, 1.0)
    weight_ExF = sign_ExF * (base_F + drift_ExF) * active_F
    shapes = tuple(rng.choice(SHAPES, n_feat, p=[0.7, 0.15, 0.15]))
    candidates = np.flatnonzero(active_F) if active_F.sum() >= 2 else np.arange(n_feat)
    pairs_Kx2 = np.stack([rng.choice(candidates, 2, replace=False) for _ in range(cfg.n_interactions)]).reshape(-1, 2)
    threshold_I = rng.random(cfg.n_interactions) < 0.5
    coef_I = rng.choice([-1.0, 1.0], cfg.n_interactions) * rng.uniform(0.5, 1.5, cfg.n_interactions)
    return DiffuseSignal(weight_ExF, shapes, flip_F, pairs_Kx2, threshold_I, coef_I, cfg.interaction_share)


def diffuse_signal(bins_NxF: np.ndarray, sig: DiffuseSignal, era: int) -> np.ndarray:
    """Noise-free diffuse signal of one era's rows (era number `era`), standardised within the era."""
    table_FxB = sig.weight_ExF[era - 1][:, None] * np.stack([_SHAPE_TABLES[s] for s in sig.shapes])
    linear_N = np.take_along_axis(table_FxB, bins_NxF.T.astype(np.int64), axis=1).sum(axis=0)
    signal_N = _standardise(linear_N)
    if len(sig.coef_I) and sig.share > 0:
        a_NxI, b_NxI = bins_NxF[:, sig.pairs_Kx2[:, 0]], bins_NxF[:, sig.pairs_Kx2[:, 1]]
        product_NxI = (a_NxI - 2.0) * (b_NxI - 2.0) / 2.0
        both_high_NxI = ((a_NxI >= 3) & (b_NxI >= 3)).astype(np.float64)
        terms_NxI = np.where(sig.threshold_I, both_high_NxI - both_high_NxI.mean(axis=0), product_NxI)
        signal_N = np.sqrt(1 - sig.share) * signal_N + np.sqrt(sig.share) * _standardise(terms_NxI @ sig.coef_I)
    return _standardise(signal_N)


def _standardise(v_N: np.ndarray) -> np.ndarray:
    return (v_N - v_N.mean()) / (v_N.std() + 1e-12)


def regime_signal(bins_NxF: np.ndarray, regime: Regime) -> np.ndarray:
    """Noise-free signal of one era's rows, standardised within the era."""
    s = np.zeros(len(bins_NxF))
    for f, w, shape in zip(regime.features, regime.weights, regime.shapes):
        s += w * _SHAPE_TABLES[shape][bins_NxF[:, f]]
    return (s - s.mean()) / (s.std() + 1e-12)


def generate_era(cfg: SynthConfig, n_rows: int, signal_of, unresolved_60: bool,
                 loadings: tuple[np.ndarray, np.ndarray], rng: np.random.Generator):
    """One era: int8 bins (-1 = null), signal, and targets [N, 4]; `signal_of(bins_NxF)` is the
    era's noise-free signal."""
    cluster_F, rho_F = loadings
    z_NxI = rng.standard_normal((n_rows, cfg.n_factors))
    raw_NxF = rho_F * z_NxI[:, cluster_F] + np.sqrt(1 - rho_F**2) * rng.standard_normal((n_rows, cfg.n_features))
    bins = quantile_bins(raw_NxF, (0.2, 0.4, 0.6, 0.8))
    signal = signal_of(bins)
    target = quantile_bins((signal + cfg.noise * rng.standard_normal(n_rows))[:, None], FIVE_BIN_QUANTILES)[:, 0] / 4
    long = quantile_bins((signal + 1.5 * cfg.noise * rng.standard_normal(n_rows))[:, None], FIVE_BIN_QUANTILES)[:, 0] / 4
    jasper = quantile_bins((0.8 * signal + cfg.noise * rng.standard_normal(n_rows))[:, None], SEVEN_BIN_QUANTILES)[:, 0] / 6
    if unresolved_60:
        long = np.full(n_rows, np.nan)
    y_NxT = np.stack([target, target, long, jasper], axis=1).astype(np.float32)
    if cfg.target_nan_rate:
        y_NxT[rng.random(n_rows) < cfg.target_nan_rate, :2] = np.nan
    bins[rng.random(bins.shape) < cfg.nan_rate] = -1
    return bins, signal.astype(np.float32), y_NxT


def generate(cfg: SynthConfig) -> tuple[dict[str, Split], np.ndarray, list[Regime], np.ndarray]:
    """All splits in memory: ({'train', 'validation', 'live'}, era numbers, regimes, regime per era)."""
    plan = Plan.draw(cfg)
    splits = {name: _concat(list(chunk)) for name, chunk in _split_chunks(cfg, plan, chunk_rows=None)}
    return splits, plan.numbers, plan.regimes, plan.regime_of


@dataclass(frozen=True, eq=False)
class Plan:
    """What is drawn before any row: regimes, feature loadings, the eras of each split."""

    regimes: list[Regime]
    loadings: tuple[np.ndarray, np.ndarray]
    split_eras: dict[str, np.ndarray]
    numbers: np.ndarray
    regime_of: np.ndarray  # sparse: the regime of each era; diffuse: the flipping group's sign (1: flipped)
    rng: np.random.Generator  # continues into the rows, era by era
    diffuse: DiffuseSignal | None = None

    @classmethod
    def draw(cls, cfg: SynthConfig) -> "Plan":
        rng = np.random.default_rng(cfg.seed)
        regimes = make_regimes(cfg, rng)
        loadings = (rng.integers(cfg.n_factors, size=cfg.n_features), rng.uniform(0.3, 0.8, cfg.n_features))
        val_start = cfg.n_train_eras + cfg.gap_eras + 1
        split_eras = {
            "train": np.arange(1, cfg.n_train_eras + 1),
            "validation": np.arange(val_start, val_start + cfg.n_val_eras),
            "live": np.array([val_start + cfg.n_val_eras]),
        }
        numbers = np.arange(1, split_eras["live"][0] + 1)
        if cfg.signal == "sparse":
            return cls(regimes, loadings, split_eras, numbers, regime_sequence(len(numbers), cfg, rng), rng)
        # The sign regime: two states, the same persistent switching as the sparse regimes.
        flips = regime_sequence(len(numbers), dataclasses.replace(cfg, n_regimes=2, regime_eras=cfg.flip_eras), rng)
        diffuse = draw_diffuse(cfg, feature_groups(cfg, loadings[0]), flips, rng)
        return cls(regimes, loadings, split_eras, numbers, flips, rng, diffuse)

    def signal_of(self, era: int):
        """`bins_NxF -> signal_N` of era number `era`."""
        if self.diffuse is not None:
            return lambda bins: diffuse_signal(bins, self.diffuse, era)
        regime = self.regimes[self.regime_of[era - 1]]
        return lambda bins: regime_signal(bins, regime)


def _split_chunks(cfg: SynthConfig, plan: Plan, chunk_rows: int | None):
    """`(split name, chunk)` in file order: each chunk an iterator of whole eras' `Split`s of
    about `chunk_rows` rows (None: the whole split), generated lazily in one random stream."""
    # ender_60 looks 12 eras ahead, so it is still unresolved in the last 12 eras.
    last_resolved_60 = plan.split_eras["live"][0] - 12
    for name, eras in plan.split_eras.items():
        todo = list(eras)
        while todo:
            yield name, _eras(cfg, plan, name, todo, last_resolved_60, chunk_rows)


def _eras(cfg: SynthConfig, plan: Plan, name: str, todo: list, last_resolved_60: int, chunk_rows: int | None):
    """Whole eras popped from `todo` until the chunk holds `chunk_rows` rows."""
    n_rows = 0
    while todo and (chunk_rows is None or n_rows < chunk_rows):
        era = todo.pop(0)
        n = max(10, round(cfg.rows_per_era * plan.rng.uniform(0.8, 1.2)))
        x, s, y = generate_era(cfg, n, plan.signal_of(era), era > last_resolved_60, plan.loadings, plan.rng)
        if name == "live":
            y[:] = np.nan
        n_rows += n
        yield Split(np.full(n, era), x, s, y)


def _concat(parts: list[Split]) -> Split:
    return Split(*(np.concatenate(p) for p in zip(*((q.eras, q.x_NxF, q.signal_N, q.y_NxT) for q in parts))))


def write_synthetic(cfg: SynthConfig, out: str | Path, chunk_rows: int = 200_000) -> Path:
    """Write train/validation/live parquet, features.json, truth/ and the reference models (benchmark
    files and meta model: `dynjax.data.references`) to `out`.

    Rows are generated and written `chunk_rows` at a time (each split's chunks are then
    streamed into its file), so memory stays that of one chunk at any size: a v5-size set of
    2.75M x 2,376 is written in a few GB.
    """
    out = Path(out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    plan = Plan.draw(cfg)
    live = int(plan.split_eras["live"][0])
    names = feature_names(cfg.n_features, cfg.layout, cfg.seed)
    id_rng = np.random.default_rng([cfg.seed, 1])
    id_offset = np.uint64(id_rng.integers(2**60))
    tmp = out / ".chunks"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    offset, signal_frames, chunks = 0, [], {}
    for i, (name, eras) in enumerate(_split_chunks(cfg, plan, chunk_rows)):
        split = _concat(list(eras))
        # An odd multiplier mod 2**60 is a bijection: unique, random-looking ids.
        codes = (np.arange(offset, offset + len(split.eras), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + id_offset) % np.uint64(2**60)
        ids = [f"n{c:015x}" for c in codes]
        offset += len(split.eras)
        chunks.setdefault(name, []).append(tmp / f"{name}-{i:05d}.parquet")
        _split_frame(name, split, ids, names, live).write_parquet(chunks[name][-1])
        signal_frames.append(pl.DataFrame({"id": ids, "era": [era_label(e, live) for e in split.eras], "signal": split.signal_N}))
    for name, files in chunks.items():
        pl.scan_parquet(files).sink_parquet(out / f"{name}.parquet")
    shutil.rmtree(tmp)
    pl.concat(signal_frames).write_parquet(out / "truth" / "signal.parquet")
    _active_frame(plan, names, live).write_parquet(out / "truth" / "active.parquet")
    (out / "features.json").write_text(json.dumps(_feature_json(cfg, names, feature_groups(cfg, plan.loadings[0])), indent=1))
    meta = {"config": asdict(cfg), "regime_of_era": {era_label(n, live): int(r) for n, r in zip(plan.numbers, plan.regime_of)}}
    if plan.diffuse is not None:
        d = plan.diffuse
        meta["interactions"] = [{"features": [names[i], names[j]], "kind": "threshold" if t else "product", "coef": float(c)}
                                for (i, j), t, c in zip(d.pairs_Kx2, d.threshold_I, d.coef_I)]
        meta["flip_group"] = [names[f] for f in np.flatnonzero(d.flip_F)]
    (out / "truth" / "synth.json").write_text(json.dumps(meta, indent=1))
    write_synthetic_references(out, names, cfg.seed)
    return out


def _split_frame(name: str, split: Split, ids: list[str], names: list[str], live: int) -> pl.DataFrame:
    data_type = "validation" if name == "validation" else name
    cols = {"id": ids, "era": [era_label(e, live) for e in split.eras], "data_type": [data_type] * len(ids)}
    x_FxN = np.ascontiguousarray(split.x_NxF.T)  # contiguous columns for polars
    feats = pl.DataFrame({n: x_FxN[j] for j, n in enumerate(names)}).with_columns(pl.all().replace(-1, None))
    targets = pl.DataFrame({t: split.y_NxT[:, j] for j, t in enumerate(TARGET_NAMES)})
    targets = targets.with_columns(pl.all().fill_nan(None))
    return pl.concat([pl.DataFrame(cols), feats, targets], how="horizontal")


def _active_frame(plan: Plan, names: list[str], live: int) -> pl.DataFrame:
    """Every era's features that carry signal, with their weights (diffuse: the era's drifted weights)."""
    if plan.diffuse is not None:
        d = plan.diffuse
        rows = [(era_label(n, live), int(r), names[f], float(d.weight_ExF[n - 1, f]), d.shapes[f])
                for n, r in zip(plan.numbers, plan.regime_of) for f in np.flatnonzero(d.weight_ExF[n - 1])]
    else:
        rows = [
            (era_label(n, live), int(r), names[f], float(w), shape)
            for n, r in zip(plan.numbers, plan.regime_of)
            for f, w, shape in zip(plan.regimes[r].features, plan.regimes[r].weights, plan.regimes[r].shapes)
        ]
    return pl.DataFrame(rows, schema=["era", "regime", "feature", "weight", "shape"], orient="row")


# Numerai's feature groups (v5 `features.json`), named after the latent clusters here.
GROUP_NAMES = ("intelligence", "charisma", "strength", "dexterity", "constitution", "wisdom", "agility", "serenity",
               "sunshine", "rain", "midnight")


def feature_groups(cfg: SynthConfig, cluster_F: np.ndarray) -> np.ndarray:
    """Group of each feature: its latent cluster, folded onto `n_groups` groups."""
    return np.asarray(cluster_F) % cfg.n_groups


def group_name(g: int) -> str:
    return GROUP_NAMES[g] if g < len(GROUP_NAMES) else f"group_{g}"


def _feature_json(cfg: SynthConfig, names: list[str], group_F: np.ndarray) -> dict:
    rng = np.random.default_rng([cfg.seed, 2])
    groups = {group_name(g): [names[f] for f in np.flatnonzero(group_F == g)] for g in range(cfg.n_groups)}
    if cfg.layout in LAYOUT_SETS:
        counts, width = LAYOUT_SETS[cfg.layout]
        fracs = {k: v / width for k, v in counts.items()}
    else:
        fracs = {"small": cfg.small_frac, "medium": cfg.medium_frac}
    n_new = sum(max(1, round(fracs[k] * len(names))) for k in NEW_SETS if k in fracs)
    old, new = names[: len(names) - n_new], names[len(names) - n_new:]
    order = rng.permutation(len(old))
    subset = lambda frac: sorted(old[i] for i in order[: max(1, round(frac * len(names)))])
    sets = {k: subset(f) for k, f in fracs.items() if k not in NEW_SETS}
    sets |= {k: sorted(new) for k in NEW_SETS if k in fracs} | {"all": list(names)}
    return {"feature_sets": sets | {k: v for k, v in groups.items() if v}, "targets": list(TARGET_NAMES)}
