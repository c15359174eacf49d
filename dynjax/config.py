"""Run configuration as frozen dataclasses, with JSON round trips and `a.b=value` overrides."""

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynjax.data.bins import STRATEGIES
from dynjax.data.eras import target_horizon
from dynjax.data.resident import PLACEMENTS
from dynjax.data.synth import SynthConfig


@dataclass(frozen=True)
class DataConfig:
    """Which data, which columns, and how windows of eras are cut from it."""

    data_dir: str | None = None  # None: the embedded synthetic default
    feature_set: str = "all"
    features: tuple[str, ...] = ()  # an explicit list overrides feature_set
    targets: tuple[str, ...] = ("target",)  # the first is the main target
    missing: str = "bin"
    # Eras between a row's era and the era its target is known. None: the main target's horizon
    # (target_ender_20: 4, target_ender_60: 12); a longer one may be set, never a shorter one.
    embargo: int | None = None
    window_eras: int = 16
    rows_per_era: int = 512
    min_era_rows: int = 2
    # Where the train step and predict read rows: "device", the features and target put on the
    # devices once and gathered inside the jit; "host", gathered by numpy and sent every step;
    # "auto", device when they fit `device_share` of a device's memory (twice over on a CPU backend,
    # beside the host's copy: dynjax.data.resident).
    placement: str = "auto"
    device_share: float = 0.5

    def __post_init__(self):
        _check(self.missing in STRATEGIES, f"missing must be one of {STRATEGIES}, got {self.missing!r}")
        _check(self.placement in PLACEMENTS, f"data.placement must be one of {PLACEMENTS}, got {self.placement!r}")
        _check(0 < self.device_share <= 1, "data.device_share must be in (0, 1]")
        _check(self.embargo is None or self.embargo >= 0, "embargo must be >= 0")
        _check(self.window_eras >= 1 and self.rows_per_era >= 1, "window_eras and rows_per_era must be >= 1")
        _check(len(self.targets) >= 1, "need at least one target")
        horizon = target_horizon(self.targets[0])
        _check(self.embargo is None or self.embargo >= horizon,
               f"data.embargo={self.embargo} is shorter than the main target {self.targets[0]}'s horizon of {horizon} "
               f"eras: each update would train on targets not yet known when its era was predicted (leave "
               f"data.embargo unset to follow the target, or set it >= {horizon})")

    @property
    def embargo_eras(self) -> int:
        """The embargo every command applies: `embargo`, or the main target's horizon."""
        return target_horizon(self.targets[0]) if self.embargo is None else self.embargo

    @property
    def feature_spec(self) -> str | tuple[str, ...]:
        return self.features or self.feature_set


NORMALIZERS = ("softmax", "sparsemax", "entmax15")
GATES = ("none", "l1", "l0", "context")
PENALTIES = ("none", "entropy", "l1", "l0")
SELECTION_MODES = ("none", "fixed", "topk", "quantile", "schedule")


@dataclass(frozen=True)
class ModelConfig:
    """The attention-weighted additive model (`dynjax.model.attention_gam`); F comes from the data."""

    d_model: int = 32
    n_heads: int = 4
    normalizer: str = "softmax"
    gates: str = "context"  # "context": per-era gates from resolved-era evidence; "l1" / "l0": global per-feature gates
    dropout: float = 0.0
    evidence_eras: tuple[int, ...] = (4, 16, 64)  # horizons of the gates' evidence (resolved eras pooled)
    gate_hidden: int = 16  # width of the gate network (shared by all features)
    # The context gates' evidence z-score at which a gate starts half open, per ensemble member
    # (m: [m % len]); -1000: every gate open. The default pairs a dense member (all features) with
    # a gated one, and Hedge (train.hedge_eta) weighs them by their out-of-sample corr: how sparse to
    # be is decided by resolved eras.
    gate_thresholds: tuple[float, ...] = (-1000.0, 5.0)
    dtype: str = "float32"  # "bfloat16": tables and matmuls (float32 params, optimiser state, sums over F, losses)
    # GA2M's pairs (Lou, Caruana, Gehrke & Hooker, KDD 2013): at most `pairs` feature pairs, screened
    # before pretraining on its eras (dynjax.data.pairs: each pair's per-era corr of the centred
    # product with the main-effect residual, a t-statistic over eras above the 5 % family-wise bound
    # for all F (F - 1) / 2 pairs, or `pair_t`), each a table over its two bins under both attention
    # weights. The data decide how many: none where nothing interacts. 0: off.
    pairs: int = 32
    pair_t: float = 0.0  # the screen's bound on |t|; 0: Bonferroni's at 5 % over every pair
    pair_rows: int = 2048  # rows per era the screen reads (every row of a smaller era; fewer past 1 GiB of bins)
    pair_index: tuple[int, ...] = ()  # set by the run: the screened pairs, flattened (f0, g0, f1, g1, ...)

    def __post_init__(self):
        _check(len(self.gate_thresholds) >= 1 and all(-1e4 <= t <= 1e4 for t in self.gate_thresholds),
               "model.gate_thresholds must be one or more finite z-scores in [-1e4, 1e4]")
        _check(self.pairs >= 0 and self.pair_t >= 0 and self.pair_rows >= 2, "model.pairs and model.pair_t must be >= 0, model.pair_rows >= 2")
        _check(len(self.pair_index) % 2 == 0 and len(self.pair_index) <= 2 * self.pairs,
               f"model.pair_index holds at most model.pairs={self.pairs} pairs of feature numbers, got {self.pair_index}")
        _check(self.dtype in ("float32", "bfloat16"), f"model.dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        _check(len(self.evidence_eras) >= 1 and min(self.evidence_eras) >= 1, "evidence_eras must be positive era counts")
        _check(self.normalizer in NORMALIZERS, f"unknown normalizer {self.normalizer!r}; choose from {NORMALIZERS}")
        _check(self.gates in GATES, f"unknown gates {self.gates!r}; choose from {GATES}")
        _check(self.d_model % self.n_heads == 0, "d_model must be a multiple of n_heads")
        _check(0 <= self.dropout < 1, "model.dropout must be in [0, 1)")


@dataclass(frozen=True)
class SelectionConfig:
    """How importances become a mask.

    mode: "none" (keep all), "fixed" (EMA importance >= threshold / F, i.e. `threshold`
    times the uniform weight), "topk" (the k largest), "quantile" (at or above the
    `quantile` of importances), "schedule" (top-k with k going linearly from `k_start` to
    `k` over `schedule_eras` updates, after the warm-up).

    Updates count eras whose importances were folded in: the pretraining holdout eras, then
    one per walk-forward era. The first `warmup_eras` of them keep every feature.
    """

    mode: str = "none"
    threshold: float = 1.0
    k: int = 32
    quantile: float = 0.75
    k_start: int = 0  # 0: all features
    schedule_eras: int = 50
    decay: float = 0.8  # EMA smoothing across eras
    min_features: int = 1
    warmup_eras: int = 0  # selection updates with every feature kept before the first mask

    def __post_init__(self):
        _check(self.mode in SELECTION_MODES, f"unknown selection mode {self.mode!r}; choose from {SELECTION_MODES}")
        _check(self.warmup_eras >= 0, "selection warmup_eras must be >= 0")
        _check(0 <= self.decay < 1, "selection decay must be in [0, 1)")


@dataclass(frozen=True)
class LossConfig:
    """Task loss weights, the sparsity penalty (it needs gates: l1 / l0 / context), and the additive prior."""

    mse_weight: float = 1.0
    corr_weight: float = 0.0
    sparsity: str = "l0"  # one of PENALTIES
    sparsity_lambda: float = 0.02
    # A ridge prior on the additive path's per-(feature, bin) terms, in a ridge's units: alpha over
    # the sum of squared errors of `prior_rows` rows (the step divides by them), so its strength is
    # that of a fixed prior whatever the data's size. L2 on every term, and on the differences
    # between a feature's neighbouring value bins (a P-spline's smoothness: noisy tail bins borrow
    # from their neighbours). 0: off.
    additive_l2: float = 1e4
    additive_smooth: float = 1e4
    pair_l2: float = 1e4  # the same prior's L2 on the pair tables (model.pairs)
    prior_rows: int = 0  # rows the prior is spread over; 0: the labelled training rows (the run resolves it)
    # The prior's scale per ensemble member (m: [m % len], as model.gate_thresholds): the default puts
    # it on the dense all-history member and leaves the gated recent one, whose few kept features
    # are chosen because their evidence is strong, to fit without it.
    prior_members: tuple[float, ...] = (1.0, 0.0)

    def __post_init__(self):
        _check(self.sparsity in PENALTIES, f"unknown sparsity penalty {self.sparsity!r}; choose from {PENALTIES}")
        _check(min(self.additive_l2, self.additive_smooth, self.pair_l2, self.prior_rows) >= 0,
               "loss.additive_l2, loss.additive_smooth, loss.pair_l2 and loss.prior_rows must be >= 0")
        _check(len(self.prior_members) >= 1 and min(self.prior_members) >= 0, "loss.prior_members must be scales >= 0")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up, cosine decay and global-norm clipping (optax)."""

    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    # Cosine decay to end_lr_fraction over this many steps, then constant; 0: over the pretraining
    # steps, so pretraining anneals and every walk-forward update fine-tunes at the end rate.
    decay_steps: int = 0
    end_lr_fraction: float = 0.1
    clip_norm: float = 1.0
    ema_decay: float = 0.99  # Polyak average of the params that predicts (pretraining and updates); 0: the params themselves

    def __post_init__(self):
        _check(0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)")
        _check(self.learning_rate > 0 and self.warmup_steps >= 0, "need lr > 0 and warmup_steps >= 0")
        _check(self.decay_steps == 0 or self.decay_steps > self.warmup_steps, "need decay_steps > warmup_steps (or 0: auto)")


MESH_AXES = ("data", "model", "members")  # see dynjax.train.sharding


def parse_mesh(spec: str) -> dict[str, int]:
    """`"data=4,model=2"` -> `{"data": 4, "model": 2}`; ValueError naming what is wrong."""
    sizes = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, size = (s.strip() for s in part.partition("="))
        if name not in MESH_AXES or not size.isdigit() or int(size) < 1 or name in sizes:
            raise ValueError(f"train.mesh {spec!r}: each part must be axis=size with axis one of {MESH_AXES} "
                             f"(once each) and size >= 1; got {part!r}")
        sizes[name] = int(size)
    return sizes


@dataclass(frozen=True)
class TrainConfig:
    """Pretraining, the walk-forward schedule and its members (windows come from DataConfig)."""

    pretrain_epochs: int = 4
    window_stride: int = 2  # eras between consecutive pretraining windows (sets the steps per epoch)
    pretrain_windows: str = "random"  # "sliding": consecutive eras; "random": each step's W eras drawn from all fit eras
    # Early stopping: with patience > 0, pretraining holds its last `holdout_eras` resolved eras out,
    # keeps the epoch that scored best on them and stops after `patience` epochs without a better one;
    # Hedge's scores then start from the members' holdout corr. 0: every epoch, on every resolved era.
    holdout_eras: int = 16  # also the eras whose importances start the selection state
    patience: int = 0
    update_every: int = 1  # walk-forward: update the model every this many eras
    steps_per_update: int = 8
    predict_chunk: int = 1024  # rows per predict call (fixed, so no recompiles)
    keep_checkpoints: int = 3  # the latest N, plus the best by resolved walk-forward corr, plus step 0
    # Walk-forward eras between checkpoints; the pretrained model, the last era and a stop signal's era
    # always save. A killed run resumes from the latest and walks the eras since again, to the same
    # predictions. Each save costs system CPU in the writer's threads (~0.12 s on the embedded default).
    checkpoint_every: int = 4
    log_every: int = 50
    ensemble: int = 2  # members trained as one vmapped population; predictions mixed per era by Hedge weights
    mesh: str = ""  # device mesh, e.g. "data=8" or "data=4,model=2" (see train.sharding); "": all devices on data
    # Walk-forward memory per member (member m: horizons[m % len]): each update draws its
    # data.window_eras eras from the latest h resolved eras (0: all of them); (): the latest window.
    horizons: tuple[int, ...] = (0, 16)
    # Hedge (train.hedge) weighs mixtures of the members' kinds: each kind alone and, with hedge_mean,
    # all kinds equally, by softmax(eta * score), the score each mixture's out-of-sample corr summed
    # over resolved eras, older ones decayed per era (decay 1: every era counts).
    hedge_eta: float = 30.0  # the safe expert's rate (below); 0: no Hedge, equal weights everywhere
    hedge_decay: float = 1.0
    hedge_mean: bool = True
    # The members' mixing policies (dynjax.train.policy): policy p is Hedge at rate hedge_etas[p] on each
    # mixture's summed corr less hedge_risks[p] times its summed squared deviation. The run mixes by
    # the policy whose own per-era corr, as it predicted, has the best Sharpe over the scored eras (the
    # first until hedge_select_after are scored): how fast to follow a leader, and whether its variance
    # counts, learned from the resolved eras. One policy: plain Hedge at that rate.
    hedge_etas: tuple[float, ...] = (30.0, 3.0, 30.0)
    hedge_risks: tuple[float, ...] = (0.0, 0.0, 10.0)
    hedge_select_after: int = 8
    # The safe expert: the members frozen after pretraining stay in the mixture. Hedge (the same eta
    # and decay) weighs mixtures of the walk-forward's members and the frozen ones, these the frozen
    # ones' shares, so updates can add skill but not take the frozen model's away. (0,): the walk alone.
    frozen_shares: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)

    def __post_init__(self):
        parse_mesh(self.mesh)
        _check(all(h >= 0 for h in self.horizons), "train.horizons are era counts >= 0 (0: all resolved eras)")
        _check(self.hedge_eta >= 0 and 0 <= self.hedge_decay <= 1, "hedge_eta must be >= 0 and hedge_decay in [0, 1]")
        _check(len(self.hedge_etas) >= 1 and len(self.hedge_etas) == len(self.hedge_risks)
               and min(self.hedge_etas) >= 0 and min(self.hedge_risks) >= 0 and self.hedge_select_after >= 0,
               f"train.hedge_etas and train.hedge_risks are one rate and one risk >= 0 per policy (as many of each), and "
               f"train.hedge_select_after >= 0; got {self.hedge_etas}, {self.hedge_risks}, {self.hedge_select_after}")
        _check(self.ensemble >= 1, "ensemble must be >= 1 member")
        _check(len(self.frozen_shares) >= 1 and all(0 <= a <= 1 for a in self.frozen_shares),
               "train.frozen_shares are the frozen members' shares of the mixtures, each in [0, 1] (0: the walk alone)")
        _check(self.pretrain_windows in ("sliding", "random"), "train.pretrain_windows must be 'sliding' or 'random'")
        _check(self.pretrain_epochs >= 0 and self.steps_per_update >= 0 and self.patience >= 0, "epochs, steps and patience must be >= 0")
        _check(self.update_every >= 1 and self.window_stride >= 1, "update_every and window_stride must be >= 1")
        _check(self.holdout_eras >= 1 and self.keep_checkpoints >= 1 and self.checkpoint_every >= 1,
               "holdout_eras, keep_checkpoints and checkpoint_every must be >= 1")
        _check(self.predict_chunk >= 1 and self.log_every >= 1, "predict_chunk and log_every must be >= 1")


TUNE_METRICS = ("mean", "sharpe", "bmc", "payout")
# Float hyperparameters a population sweep may vary across the trials of one vmapped step.
POPULATION_PATHS = ("optim.learning_rate", "optim.weight_decay", "loss.sparsity_lambda")
PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True)
class TuneConfig:
    """`dynjax tune`: the objective over walk-forward folds of the training eras, and the search.

    The last `folds * fold_eras` training eras are scored era by era by a walk-forward that
    pretrains on the eras before them (purged by the embargo) and is scored in consecutive
    blocks of `fold_eras` (the folds: one pruning report each). Validation and live rows are
    never read.
    """

    # Over every scored era: "mean" / "sharpe" of the corr; "bmc": mean BMC (train_benchmark_models.parquet);
    # "payout": mean of Numerai's payout (eval.payout_*) with BMC standing in for MMC (Numerai
    # publishes no meta model for training eras)
    metric: str = "mean"
    folds: int = 3
    fold_eras: int = 12
    pruner: str = "median"  # on the per-fold reports: "median", "hyperband" or "none"
    startup_trials: int = 5  # random trials before TPE models the space and before pruning starts
    population: int = 1  # trials differing only in float hyperparameters trained as one vmapped population

    def __post_init__(self):
        _check(self.metric in TUNE_METRICS, f"unknown tune metric {self.metric!r}; choose from {TUNE_METRICS}")
        _check(self.pruner in PRUNERS, f"unknown pruner {self.pruner!r}; choose from {PRUNERS}")
        _check(self.folds >= 1 and self.fold_eras >= 2, "tune needs folds >= 1 and fold_eras >= 2")
        _check(self.population >= 1, "tune.population must be >= 1")
        _check(self.startup_trials >= 0, "tune startup_trials must be >= 0")


@dataclass(frozen=True)
class EvalConfig:
    """What the report scores beside corr, and what the submission is post-processed with.

    BMC / MMC: each era's contribution beyond a benchmark model / the meta model (numerai-tools'
    `correlation_contribution`), from `validation_benchmark_models.parquet` / `meta_model.parquet`
    in the data directory (or the files named here). Neutralisation: numerai-tools' `neutralize`
    per era, of the submission, `dynjax predict` and the exported pickle; the report shows raw
    and neutralised figures side by side.
    """

    benchmarks: str = ""  # benchmark-model file ("": validation_benchmark_models.parquet in the data directory, if any)
    benchmark: str = ""  # its column BMC is against ("": the first *lgbm* column, else the first)
    meta_model: str = ""  # meta-model file ("": meta_model.parquet in the data directory, if any)
    neutralize: float = 0.0  # proportion of per-era neutralisation of what is submitted (0: off)
    neutralize_features: str = ""  # a feature set of features.json ("": every feature the run reads)
    report_neutralize: float = 0.5  # with neutralize 0: the proportion of the report's neutralised view (0: none)
    # The score Numerai pays on, per era of the run's main target: payout_corr x corr + payout_mmc x MMC
    # (Numerai's stake payout: 0.5 x CORR + 2 x MMC); a stake moves by it, clipped at +-payout_clip
    payout_corr: float = 0.5
    payout_mmc: float = 2.0
    payout_clip: float = 0.05

    def __post_init__(self):
        for name in ("neutralize", "report_neutralize"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"eval.{name} must be a proportion in [0, 1], got {value}")
        _check(min(self.payout_corr, self.payout_mmc) >= 0 and self.payout_clip > 0,
               "eval.payout_corr and eval.payout_mmc must be >= 0, eval.payout_clip > 0")


@dataclass(frozen=True)
class RunConfig:
    """Everything one run depends on; written to `config.json` in the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0


def to_dict(cfg) -> dict[str, Any]:
    """Plain JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(cfg)


# Keys that left the config, with the value the code now implies (None: any) and the commit that
# still runs them: a run directory saved before loads where it held that value.
RETIRED = {"ModelConfig": {"context": (False, "77e63c7"), "context_eras": (None, "77e63c7")}}


def from_dict(cls, raw: dict[str, Any]):
    """Build a config dataclass from a (possibly partial) dict; unknown keys are errors."""
    raw = _without_retired(cls, raw)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    kwargs = {}
    for name, value in raw.items():
        hint = hints[name]
        kwargs[name] = from_dict(hint, value) if dataclasses.is_dataclass(hint) else _coerce(hint, value)
    return cls(**kwargs)


def _without_retired(cls, raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` less the keys that left `cls` (`RETIRED`); ValueError if one holds another value than
    the code now implies, naming the commit that still runs it."""
    retired = RETIRED.get(cls.__name__, {})
    for key in sorted(set(raw) & set(retired)):
        implied, commit = retired[key]
        if implied is not None and raw[key] != implied:
            raise ValueError(f"{cls.__name__}.{key}={raw[key]!r} left dynjax (docs/research-log.md says why); "
                             f"the code at commit {commit} still runs it")
    return {k: v for k, v in raw.items() if k not in retired}


def load_config(path: str | Path) -> RunConfig:
    """Read a (partial) RunConfig from a JSON file."""
    return from_dict(RunConfig, json.loads(Path(path).read_text()))


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2) + "\n")


def override(cfg, assignments: list[str]):
    """Apply `section.field=value` strings, e.g. `data.embargo=6` or `synth.n_features=40`.

    All assignments are applied before the config is validated, so fields that constrain
    each other can be changed together in any order (`data.targets=target_ender_60 data.embargo=12`).
    """
    raw = to_dict(cfg)
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not of the form key=value")
        _set(type(cfg), raw, key.strip().split("."), text.strip())
    return from_dict(type(cfg), raw)


def _set(cls, raw: dict, path: list[str], text: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    if path[0] not in names:
        raise ValueError(f"unknown config key {path[0]!r} in {cls.__name__}; known: {', '.join(sorted(names))}")
    hint = typing.get_type_hints(cls)[path[0]]
    if len(path) > 1:
        if not dataclasses.is_dataclass(hint):
            raise ValueError(f"{path[0]!r} has no sub-keys")
        _set(hint, raw[path[0]], path[1:], text)
        return
    raw[path[0]] = _coerce(hint, _parse(text))


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # bare strings: data.feature_set=small


def _coerce(hint, value):
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None and type(None) in args:
            return None
        return _coerce(next(a for a in args if a is not type(None)), value)
    if typing.get_origin(hint) is tuple:
        # "key=" or "key=[]": the empty tuple
        items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else ([value] if isinstance(value, int | float) else list(value))
        item_type = typing.get_args(hint)[0]
        try:
            return tuple(item_type(str(v).strip()) for v in items)
        except ValueError:
            raise ValueError(f"expected a list of {item_type.__name__}, got {value!r}") from None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and not isinstance(value, str):
        return str(value)
    if hint in (int, float, bool) and type(value) is not hint:
        raise ValueError(f"expected {hint.__name__}, got {value!r}")
    return value


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
