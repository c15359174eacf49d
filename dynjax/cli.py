"""The `dynjax` console script: `synth`, the main job `walk-forward`, `update`, `tune`, `ensemble`, `evaluate`,
`predict`, `export`."""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import polars as pl

from dynjax.config import DataConfig, RunConfig, SynthConfig, load_config, override, save_config
from dynjax.data import DataError, impute, impute_splits, load_numerai
from dynjax.data.eras import embargo_reason
from dynjax.data.summary import describe
from dynjax.data.synth import LAYOUTS, SETTINGS, write_synthetic
from dynjax.eval.truth import has_truth, oracle_scores
from dynjax.rundir import (
    RunDirError,
    check_writable,
    default_data,
    open_run_dir,
    start_run_dir,
    write_json,
)
from dynjax.train.checkpoint import CheckpointError
from dynjax.train.interrupt import Interrupted
from dynjax.train.processes import barrier, initialize, is_writer

_RESUME_HINT = {"walk-forward": "resume with --resume", "update": "resume by running the same dynjax update again"}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (DataError, RunDirError, ValueError, CheckpointError, FloatingPointError) as err:
        print(f"dynjax {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Interrupted as err:
        print(f"dynjax {args.command}: {err}; {_RESUME_HINT.get(args.command, 'nothing to resume')}", file=sys.stderr)
        return 128 + err.signum
    except OSError as err:  # a full disk or a vanished directory while writing
        print(f"dynjax {args.command}: error: {type(err).__name__}: {err} (the checkpoints written before it are kept; "
              f"{_RESUME_HINT.get(args.command, 'run it again')} once it is fixed)", file=sys.stderr)
        return 2


def cmd_synth(args: argparse.Namespace) -> int:
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(SynthConfig)}
    layout = LAYOUTS[args.layout or "v5"]
    cfg = SynthConfig(**{**SETTINGS[args.setting], **layout, **{k: v for k, v in fields.items() if v is not None}})
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
    if args.benchmarks:
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, benchmarks=str(Path(args.benchmarks).resolve())))
    writer = _join_processes(args)
    cfg = open_run_dir(args.out, cfg, args.resume)
    barrier("dynjax: run directory checked")  # by every process before process 0 starts it
    check_writable(args.out)
    data_dir = Path(cfg.data.data_dir) if cfg.data.data_dir else default_data(args.out, cfg.synth)
    data, summary = _load(cfg, data_dir)
    _check_eval(cfg, data, data_dir)
    if writer:
        if not args.resume:
            start_run_dir(args.out, cfg)
        write_json(Path(args.out) / "data_summary.json", summary)
    return _train_and_report(cfg, data, data_dir, args.out, summary, args.stop_after)


def cmd_update(args: argparse.Namespace) -> int:
    """The weekly round: continue a run on a newer data directory from its latest checkpoint."""
    cfg = open_run_dir(args.run, RunConfig(), resume=True)
    check_writable(args.run)
    data_dir = Path(args.data).absolute()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_dir=str(data_dir)))
    data, summary = _load(cfg, data_dir)
    _check_eval(cfg, data, data_dir)
    # The run moves to the new data directory once its checkpoint accepts them as its history.
    done = []
    accept = lambda cursor: done.append(cursor) or save_config(cfg, Path(args.run) / "config.json")
    code = _train_and_report(cfg, data, data_dir, args.run, summary, None, on_start=accept)
    names = data.validation.index.names[done[0]:]
    live = f"live era {', '.join(data.live.index.names)} predicted" if data.live is not None else "no live file"
    print(f"updated {args.run}: {len(names)} new walk-forward eras" + (f" ({names[0]}..{names[-1]})" if names else "")
          + f" after {done[0]} done before; {live}")
    write_json(Path(args.run) / "data_summary.json", summary)
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "data_dir": str(data_dir),
              "last_era": summary["validation"]["last_era"], "live_eras": data.live.index.n_eras if data.live else 0}
    with (Path(args.run) / "updates.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")
    return code


def _join_processes(args: argparse.Namespace) -> bool:
    """Join a multi-process run if the flags or the environment ask for one; True on the writing process."""
    initialize(args.coordinator, args.num_processes, args.process_id, auto=args.distributed)
    return is_writer()


def _load(cfg: RunConfig, data_dir: Path) -> tuple:
    """Load and impute a run's data; print its summary."""
    start = time.perf_counter()
    data = load_numerai(data_dir, cfg.data.feature_spec, cfg.data.targets, min_era_rows=cfg.data.min_era_rows)
    data = impute(data, cfg.data.missing, seed=cfg.seed)
    summary = describe(data, cfg.data.embargo_eras)
    summary["schedule"]["why"] = embargo_reason(cfg.data.targets[0], cfg.data.embargo_eras)
    summary["timing/load_s"] = time.perf_counter() - start
    if has_truth(data_dir) and data.validation is not None:
        _, summary["oracle"] = oracle_scores(data_dir, "validation", cfg.data.targets[0])
    if data.validation is None:
        raise DataError(data_dir, "the walk-forward predicts validation.parquet, which is missing")
    _print_summary(data_dir, summary)
    return data, summary


def _check_eval(cfg: RunConfig, data, data_dir: Path) -> None:
    """Bad reference-model files or neutralisation features fail before training, not in the report."""
    from dynjax.data.references import reference_models
    from dynjax.eval.contribution import neutralizer_columns

    for tag, (column, frame) in reference_models(data_dir, cfg.eval).items():
        if not frame["id"].is_in(data.validation.ids.implode()).any():
            raise DataError(data_dir, f"the {tag.upper()} reference {column!r} shares no id with validation.parquet")
    if cfg.eval.neutralize or cfg.eval.report_neutralize:
        neutralizer_columns(data.train.features, data_dir, cfg.eval.neutralize_features)


def _train_and_report(cfg: RunConfig, data, data_dir: Path, out, summary: dict, stop_after: int | None,
                      on_start=lambda cursor: None) -> int:
    """Pretrain and walk forward (or continue from the latest checkpoint), then report."""
    from dynjax.eval.report import build_report  # jax/orbax imports only when training
    from dynjax.train.walk_forward import walk_forward

    start = time.perf_counter()
    timings = walk_forward(cfg, data, out, progress=_progress, stop_after=stop_after, on_start=on_start)
    timings["total_train_s"] = time.perf_counter() - start
    if not is_writer():
        return 0
    if stop_after is not None and not (Path(out) / "predictions.parquet").exists():
        print(f"stopped after {stop_after} walk-forward eras; continue with --resume")
        return 0

    start = time.perf_counter()
    metrics = build_report(out, data, cfg, data_dir, timings={**timings, "load_s": summary["timing/load_s"]})
    metrics["timing"]["report_s"] = time.perf_counter() - start
    write_json(Path(out) / "metrics.json", {k: v for k, v in metrics.items() if k != "plots"})
    _print_report(metrics, out)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    try:
        from dynjax.tune import load_space, run_tune, write_outputs  # optuna only when tuning
    except ImportError as err:
        raise ValueError(f"dynjax tune needs Optuna ({err}); install the extra: pip install -e '.[tune]'") from None

    cfg = load_config(args.config) if args.config else RunConfig()
    if args.data:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_dir=args.data))
    cfg = override(cfg, args.overrides)
    space = load_space(args.space)
    data_dir = Path(cfg.data.data_dir) if cfg.data.data_dir else default_data(args.out, cfg.synth)
    data = load_numerai(data_dir, cfg.data.feature_spec, cfg.data.targets, validation=False, live=False,
                        min_era_rows=cfg.data.min_era_rows)
    impute_splits(cfg.data.missing, data.train, seed=cfg.seed)
    reference = _train_reference(cfg, data, data_dir) if cfg.tune.metric in ("bmc", "payout") else None
    start = time.perf_counter()
    study = run_tune(cfg, space, data, args.out, n_trials=args.n_trials, timeout=args.timeout, storage=args.storage,
                     study_name=args.study_name, worker=args.worker, progress=_progress, reference=reference)
    summary = write_outputs(study, cfg, args.out)
    print(f"tuned in {time.perf_counter() - start:.0f}s: {summary['n_trials']} trials ({summary['n_complete']} complete, "
          f"{summary['n_pruned']} pruned, {summary['n_fail']} failed) in study {study.study_name!r}")
    if "baseline" in summary:
        print(f"base config (trial {summary['baseline']['trial']}): {cfg.tune.metric} {summary['baseline']['value']:.4f}")
    if "best" in summary:
        b = summary["best"]
        print(f"best (trial {b['trial']}): {cfg.tune.metric} {b['value']:.4f}  {' '.join(b['overrides'])}")
        print(f"best config: {Path(args.out) / 'best_config.json'}  (dynjax walk-forward --config ...)")
    return 0


def _train_reference(cfg: RunConfig, data, data_dir: Path) -> dict[str, float]:
    """`tune.metric=bmc` or `payout`: the benchmark's prediction of every labelled training row, by id."""
    from dynjax.data.references import TRAIN_BENCHMARK_FILE, read_reference

    column, frame = read_reference(data_dir / TRAIN_BENCHMARK_FILE, cfg.eval.benchmark)
    reference = dict(zip(frame["id"].to_list(), frame["reference"].to_list()))
    labeled = [data.train.ids[r.start:r.stop] for r in map(data.train.index.labeled_rows, range(data.train.index.n_eras))]
    absent = [i for ids in labeled for i in ids.to_list() if i not in reference]
    if absent:
        raise DataError(data_dir / TRAIN_BENCHMARK_FILE, f"tune.metric={cfg.tune.metric}: {len(absent)} labelled training rows have no "
                        f"{column} prediction, e.g. {', '.join(absent[:3])}")
    print(f"tune.metric={cfg.tune.metric}: contribution beyond {column} ({TRAIN_BENCHMARK_FILE})"
          + (" standing in for MMC (Numerai publishes no meta model of training eras)" if cfg.tune.metric == "payout" else ""))
    return reference


def cmd_ensemble(args: argparse.Namespace) -> int:
    from dynjax.data.references import reference_models
    from dynjax.ensembles import (
        member_predictions,
        run_members,
        seed_members,
        target_members,
        tuned_members,
    )
    from dynjax.eval.contribution import contribution_per_era
    from dynjax.eval.ensemble import rank_average, score_members

    cfg = load_config(args.config) if args.config else RunConfig()
    if args.data:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_dir=args.data))
    cfg = override(cfg, args.overrides)
    chosen = [k for k in ("targets", "seeds", "tuned") if getattr(args, k)]
    if len(chosen) != 1:
        raise ValueError("choose the members with exactly one of --targets, --seeds, --tuned")
    if args.targets:
        members = target_members(cfg, args.targets.split(","))
    elif args.seeds:
        members = seed_members(cfg, [int(s) for s in args.seeds.split(",")])
    else:
        members = tuned_members(args.tuned, args.top_k)
    dirs = run_members(members, args.out, main)
    preds = member_predictions(dirs)
    ensemble = rank_average(preds)
    out = Path(args.out)
    ensemble.write_parquet(out / "predictions.parquet")

    # Score every member and the ensemble against the main target of the validation eras.
    data_dir = Path(load_config(out / "members" / f"{next(iter(dirs))}.json").data.data_dir)
    truth = pl.read_parquet(data_dir / "validation.parquet", columns=["id", "era", args.target])
    scored = {**preds, "ensemble": ensemble}
    summary, per_era = score_members(truth, scored, args.target)
    references = reference_models(data_dir, cfg.eval)
    for tag, (_, reference) in references.items():
        contribution = contribution_per_era(truth.rename({args.target: "target"}), scored, reference, tag)
        per_era = per_era.join(contribution, on="era", how="left")
        for name in scored:
            values = contribution[f"{tag}_{name}"].to_numpy()
            summary[name] |= {f"{tag}_mean": float(values.mean()), f"{tag}_sharpe": float(values.mean() / values.std())}
    per_era.write_csv(out / "ensemble_per_era.csv")
    write_json(out / "ensemble.json", {"target": args.target, "members": {n: str(d) for n, d in dirs.items()}, "scores": summary,
                                       "references": {tag: column for tag, (column, _) in references.items()}})
    extra = "".join(f"{tag.upper() + ' mean':>10}" for tag in references)
    print(f"\n{'member':<22}{'corr mean':>11}{'std':>9}{'sharpe':>8}{'max dd':>9}{extra}   (against {args.target})")
    for name, m in summary.items():
        print(f"{name:<22}{m['corr_mean']:>11.4f}{m['corr_std']:>9.4f}{m['corr_sharpe']:>8.2f}{m['max_drawdown']:>9.4f}"
              + "".join(f"{m[f'{tag}_mean']:>10.4f}" for tag in references))
    for tag, (column, _) in references.items():
        print(f"{tag.upper()}: contribution beyond {column}")
    print(f"ensemble directory: {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dynjax.eval.report import build_report

    cfg = open_run_dir(args.run, RunConfig(), resume=True)
    data_dir = Path(cfg.data.data_dir) if cfg.data.data_dir else Path(args.run) / "data"
    data = load_numerai(data_dir, cfg.data.feature_spec, cfg.data.targets, min_era_rows=cfg.data.min_era_rows)
    data = impute(data, cfg.data.missing, seed=cfg.seed)
    metrics = build_report(args.run, data, cfg, data_dir)
    _print_report(metrics, args.run)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dynjax.train.predict import predict_file

    n = predict_file(args.run, args.data, args.out)
    print(f"wrote {n} predictions to {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dynjax.upload.export import export_run

    out = export_run(args.run, args.out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): upload it as the model of a Numerai slot "
          "(numerapi's model_upload, or the website's model upload)")
    return 0


def _process_flags(parser: argparse.ArgumentParser) -> None:
    """A multi-process run (one process per host, all with the same command but --process-id)."""
    group = parser.add_argument_group("multi-process (default: JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
                                      "JAX_PROCESS_ID when set; else one process)")
    group.add_argument("--coordinator", help="HOST:PORT of process 0")
    group.add_argument("--num-processes", type=int, help="processes in the run")
    group.add_argument("--process-id", type=int, help="this process's index, 0..N-1 (0 writes the outputs)")
    group.add_argument("--distributed", action="store_true", help="join a cluster JAX detects (SLURM, Open MPI, TPU pod)")


def _progress(iterable, **kwargs):
    """tqdm progress bars when the `progress` extra is installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, leave=False, mininterval=1.0, **kwargs)


def _print_report(metrics: dict, out) -> None:
    print(f"\n{'model':<9}{'corr mean':>11}{'std':>9}{'sharpe':>8}{'max dd':>9}{'eras < 0':>10}")
    for name in ("dynjax", "frozen", "ridge", "benchmark", "oracle"):
        if name in metrics:
            m = metrics[name]
            print(f"{name:<9}{m['corr_mean']:>11.4f}{m['corr_std']:>9.4f}{m['corr_sharpe']:>8.2f}{m['max_drawdown']:>9.4f}"
                  f"{m['below_zero']:>10.1%}")
    sel = metrics.get("selection", {})
    if "recall" in sel:
        print(f"selection: {sel['n_selected']:.1f} features/era, recall {sel['recall']:.3f}, precision "
              f"{sel['precision']:.3f}, top-k importance recall {sel['topk_recall']:.3f}")
    if "members" in metrics:
        m = metrics["members"]
        print("member weights (Hedge, mean over the walk-forward / last): " + ", ".join(
            f"{i}: {a:.2f} / {b:.2f}" for i, (a, b) in enumerate(zip(m["weight_mean"], m["weight_last"]))))
        print(f"frozen members' share of the prediction (the safe expert): {m['frozen_share_mean']:.2f} / "
              f"{m['frozen_share_last']:.2f}")
        if len(m.get("policy_share", {})) > 1:
            print("mixing policy (share of the updates; the best Sharpe as predicted): " + ", ".join(
                f"{label} {share:.2f}" for label, share in m["policy_share"].items()) + f"; last: {m['policy_last']}")
        for label, s in m.get("scores", {}).items():
            print(f"  {label} (out of sample, {s['n_eras']} eras resolved in the walk): corr {s['corr_mean']:.4f}, sharpe "
                  f"{s['corr_sharpe']:.2f}, max dd {s['max_drawdown']:.4f}, eras < 0 {s['below_zero']:.1%}")
    d = metrics.get("dynjax", {})
    if "max_exposure_mean" in d:
        print(f"exposure: max feature exposure {d['max_exposure_mean']:.3f} (mean over eras), feature-neutral corr "
              f"{d['fnc_mean']:.4f}")
    for tag, label in (("bmc", "BMC"), ("mmc", "MMC")):
        if tag in metrics:
            m = metrics[tag]
            print(f"{label} beyond {m['reference']}: " + ", ".join(
                f"{n} {m[n]['mean']:.4f} (sharpe {m[n]['sharpe']:.2f}, corr with it {m[f'corr_with_{n}']:.2f})"
                for n in ("dynjax", "frozen", "ridge", "neutral") if n in m))
    p = metrics.get("payout", {})
    if "missing" in p:
        print(f"payout: {p['missing']}")
    elif p:
        print(f"payout score ({p['corr_multiplier']:g} x corr + {p['mmc_multiplier']:g} x MMC; stake per era clipped at "
              f"+-{p['clip']:g}): " + ", ".join(f"{n} {p[n]['mean']:.4f} (sharpe {p[n]['sharpe']:.2f}, stake {p[n]['stake_mean']:+.4f})"
                                                for n in ("dynjax", "frozen", "ridge", "neutral") if n in p))
    if "embargo" in metrics:
        print(f"embargo: {metrics['embargo']['eras']} eras ({metrics['embargo']['why']})")
    if "neutral" in metrics:
        n = metrics["neutral"]
        submitted = "submitted" if n["submitted"] else "report only, submission raw: eval.neutralize=P submits it"
        print(f"neutralised ({n['proportion']:g} of {n['features']} features; {submitted}): corr {n['corr_mean']:.4f} sharpe "
              f"{n['corr_sharpe']:.2f}, max exposure {n['max_exposure_mean']:.3f}, feature-neutral corr {n['fnc_mean']:.4f} "
              f"(raw: corr {d['corr_mean']:.4f}, max exposure {d['max_exposure_mean']:.3f})")
    t = metrics.get("timing", {})
    if t:
        print("timing: " + ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in t.items()))
    print(f"run directory: {out}")


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
              f"{sched['embargo']} ({sched['why']}: era {sched['first_predicted']} sees targets up to era "
              f"{sched['last_resolved_at_first']})")
    if "oracle" in summary:
        o = summary["oracle"]
        print(f"oracle (noise-free signal) on validation: corr mean {o['corr_mean']:.4f}  std {o['corr_std']:.4f}  "
              f"sharpe {o['corr_sharpe']:.2f}  max drawdown {o['max_drawdown']:.4f}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write synthetic Numerai-format data with ground truth")
    synth.add_argument("--out", required=True, help="directory to write")
    synth.add_argument("--setting", choices=sorted(SETTINGS), default="default",
                       help="a named setting (the flags below override its fields): " +
                       "; ".join(f"{k}: {v or 'the defaults'}" for k, v in SETTINGS.items()))
    synth.add_argument("--layout", choices=sorted(LAYOUTS), help="file layout: v5 (default); v5.2: 2,748 "
                       "Numerai-style feature names, medium 780, small 42, the eleven feature groups; v5.3: v5.2's "
                       "features and 807 new ones, the quantum set (3,555 in all)")
    for f in dataclasses.fields(SynthConfig):
        if f.name == "layout":
            continue
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
    wf.add_argument("--benchmarks", help="benchmark models' validation predictions for BMC (default: "
                    "validation_benchmark_models.parquet in the data directory, if there)")
    wf.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)  # kill-and-resume tests
    _process_flags(wf)
    wf.add_argument("overrides", nargs="*", help="config overrides such as data.embargo=6")
    wf.set_defaults(func=cmd_walk_forward)

    tu = sub.add_parser("tune", help="hyperparameter search (Optuna) over walk-forward folds of the training eras")
    tu.add_argument("--data", help="Numerai data directory (default: embedded synthetic data)")
    tu.add_argument("--out", default="runs/tune", help="output directory; an existing study there resumes (default: %(default)s)")
    tu.add_argument("--config", help="JSON file with the (partial) base RunConfig")
    tu.add_argument("--space", help="JSON search space of config paths (default: the built-in space)")
    tu.add_argument("--storage", help="Optuna RDB URL shared by workers (default: sqlite in --out)")
    tu.add_argument("--study-name", default="dynjax", help="(default: %(default)s)")
    tu.add_argument("--n-trials", type=int, default=30, help="finished trials the study should hold (default: %(default)s)")
    tu.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    tu.add_argument("--worker", type=int, default=0, help="this worker's index: seeds its sampler (default: %(default)s)")
    tu.add_argument("overrides", nargs="*", help="base config overrides such as tune.metric=sharpe")
    tu.set_defaults(func=cmd_tune)

    en = sub.add_parser("ensemble", help="walk-forward runs as members (targets, seeds or tuned configs), rank-averaged")
    en.add_argument("--out", default="runs/ensemble", help="ensemble directory; members in out/members (default: %(default)s)")
    en.add_argument("--data", help="Numerai data directory (default: embedded synthetic data)")
    en.add_argument("--config", help="JSON file with the (partial) base RunConfig of every member")
    en.add_argument("--targets", help="comma-separated target columns, one member each (Numerai target ensembling)")
    en.add_argument("--seeds", help="comma-separated seeds, one member each")
    en.add_argument("--tuned", help="a dynjax tune directory: its top-k completed trials are the members")
    en.add_argument("--top-k", type=int, default=3, help="members from --tuned (default: %(default)s)")
    en.add_argument("--target", default="target", help="what members and ensemble are scored on (default: %(default)s)")
    en.add_argument("overrides", nargs="*", help="config overrides for every member")
    en.set_defaults(func=cmd_ensemble)

    up = sub.add_parser("update", help="the weekly round: continue a run on newer data (new eras, a new live file)")
    up.add_argument("--run", required=True, help="run directory (a finished or stopped walk-forward)")
    up.add_argument("--data", required=True, help="the new round's data directory (the same history, more eras)")
    up.set_defaults(func=cmd_update)

    ev = sub.add_parser("evaluate", help="score a finished run and redraw its plots")
    ev.add_argument("--run", required=True, help="run directory")
    ev.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="predict a live parquet file with a run's next-era state (reads nothing else)")
    pr.add_argument("--run", required=True, help="run directory")
    pr.add_argument("--data", required=True, help="live.parquet (Numerai layout)")
    pr.add_argument("--out", required=True, help="submission CSV to write (id,prediction)")
    pr.set_defaults(func=cmd_predict)

    ex = sub.add_parser("export", help="a Numerai model-upload pickle of a run's next-era model (numpy and pandas only)")
    ex.add_argument("--run", required=True, help="run directory")
    ex.add_argument("--out", default="model.pkl", help="pickle to write (default: %(default)s)")
    ex.set_defaults(func=cmd_export)
    return parser


if __name__ == "__main__":
    sys.exit(main())
