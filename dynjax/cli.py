"""The `dynjax` console script: `synth` and the main job `walk-forward`."""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from dynjax.config import DataConfig, RunConfig, SynthConfig, load_config, override
from dynjax.data import DataError, fit_imputer, impute_inplace, load_numerai
from dynjax.data.summary import describe
from dynjax.data.synth import write_synthetic
from dynjax.eval.truth import has_truth, oracle_scores
from dynjax.rundir import RunDirError, default_data, open_run_dir, start_run_dir, write_json


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (DataError, RunDirError, ValueError) as err:
        print(f"dynjax {args.command}: error: {err}", file=sys.stderr)
        return 2


def cmd_synth(args: argparse.Namespace) -> int:
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(SynthConfig)}
    cfg = SynthConfig(**{k: v for k, v in fields.items() if v is not None})
    start = time.perf_counter()
    out = write_synthetic(cfg, args.out)
    print(f"wrote synthetic Numerai data to {out} in {time.perf_counter() - start:.1f}s")
    return 0


def cmd_walk_forward(args: argparse.Namespace) -> int:
    # Setup: defaults <- --config file <- flags <- key=value overrides.
    cfg = load_config(args.config) if args.config else RunConfig()
    flags = {"data_dir": args.data, "feature_set": args.feature_set, "targets": args.target and (args.target,)}
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **{k: v for k, v in flags.items() if v}))
    cfg = override(cfg, args.overrides)
    cfg = open_run_dir(args.out, cfg, args.resume)
    data_dir = Path(cfg.data.data_dir) if cfg.data.data_dir else default_data(args.out, cfg.synth)

    # Data
    start = time.perf_counter()
    data = load_numerai(data_dir, cfg.data.feature_spec, cfg.data.targets, min_era_rows=cfg.data.min_era_rows)
    imputer = fit_imputer(cfg.data.missing, data.train.x_NxF, seed=cfg.seed)
    for split in (data.train, data.validation, data.live):
        if split is not None:
            impute_inplace(imputer, split.x_NxF, split.index)
    start_run_dir(args.out, cfg)
    summary = describe(data, cfg.data.embargo)
    summary["timing/load_s"] = time.perf_counter() - start
    if has_truth(data_dir) and data.validation is not None:
        _, summary["oracle"] = oracle_scores(data_dir, "validation", cfg.data.targets[0])
    write_json(Path(args.out) / "data_summary.json", summary)
    _print_summary(data_dir, summary)
    return 0


def _print_summary(data_dir: Path, summary: dict) -> None:
    print(f"data: {data_dir}  (loaded in {summary['timing/load_s']:.1f}s)")
    print(f"{'split':<11}{'rows':>9}{'eras':>6}  {'first..last':<12}{'features':>9}{'missing':>9}")
    for name in ("train", "validation", "live"):
        if name in summary:
            s = summary[name]
            print(f"{name:<11}{s['rows']:>9}{s['eras']:>6}  {s['first_era'] + '..' + s['last_era']:<12}"
                  f"{s['features']:>9}{s['missing_rate']:>9.2%}")
    sched = summary["schedule"]
    if sched.get("predicted_eras"):
        print(f"walk-forward: {sched['predicted_eras']} eras from {sched['first_predicted']}, embargo "
              f"{sched['embargo']} (era {sched['first_predicted']} sees targets up to era {sched['last_resolved_at_first']})")
    if "oracle" in summary:
        o = summary["oracle"]
        print(f"oracle (noise-free signal) on validation: corr mean {o['corr_mean']:.4f}  std {o['corr_std']:.4f}  "
              f"sharpe {o['corr_sharpe']:.2f}  max drawdown {o['max_drawdown']:.4f}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write synthetic Numerai-format data with ground truth")
    synth.add_argument("--out", required=True, help="directory to write")
    for f in dataclasses.fields(SynthConfig):
        synth.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=f.type, default=None,
                           help=f"default {f.default}")
    synth.set_defaults(func=cmd_synth)

    wf = sub.add_parser("walk-forward", help="the main job: pretrain, then walk forward era by era")
    wf.add_argument("--data", help="Numerai data directory (default: embedded synthetic data)")
    wf.add_argument("--out", default="runs/walk-forward", help="run directory (default: %(default)s)")
    wf.add_argument("--feature-set", help=f"feature set name (default: {DataConfig.feature_set})")
    wf.add_argument("--target", help="main target column (default: target)")
    wf.add_argument("--config", help="JSON file with a (partial) RunConfig")
    wf.add_argument("--resume", action="store_true", help="continue the run in --out")
    wf.add_argument("overrides", nargs="*", help="config overrides such as data.embargo=6")
    wf.set_defaults(func=cmd_walk_forward)
    return parser


if __name__ == "__main__":
    sys.exit(main())
