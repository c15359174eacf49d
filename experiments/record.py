"""What every experiment shares: the synthetic settings, their data, and one walk-forward run.

An experiment is a config override plus a script; its runs are ordinary `dynjax walk-forward`
(or `dynjax ensemble`) commands in fresh processes, and a finished run is reused, so an
interrupted experiment continues where it stopped.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

from dynjax.data.synth import SETTINGS  # the synthetic settings: overrides of `SynthConfig`

__all__ = ["RESULTS", "SETTINGS", "describe", "grid", "grid_parser", "make_data", "run_variant", "seed_groups",
           "seeds_parser", "setting_order", "setting_overrides", "walk_forward"]


def setting_overrides(setting: str) -> dict:
    """A setting's `SynthConfig` overrides. `NAME@SEED` is another draw of setting NAME: the same
    generative settings with data seed SEED (other regimes, regime sequence, loadings and noise),
    so that a verdict can be checked on data none of the defaults was chosen on."""
    name, at, seed = setting.partition("@")
    if not _known(setting):
        raise ValueError(f"unknown setting {setting!r}: one of {list(SETTINGS)}, or NAME@SEED for another draw of NAME")
    return {**SETTINGS[name], **({"seed": int(seed)} if at else {})}


def setting_order(setting: str) -> tuple[int, int]:
    """Sort key: the settings' order, each setting's own draw before its redraws (by seed)."""
    name, at, seed = setting.partition("@")
    return list(SETTINGS).index(name), int(seed) if at else -1


def describe(setting: str) -> str:
    """"{'seed': 1, 'n_regimes': 4, ...}", or the default set's name."""
    return str(setting_overrides(setting) or "the default synthetic set")


def make_data(root: Path, setting: str) -> Path:
    """The setting's synthetic data under `root/data/SETTING` (generated once)."""
    from dynjax.config import SynthConfig
    from dynjax.rundir import default_data

    return default_data(Path(root) / "data" / setting, SynthConfig(**setting_overrides(setting)))


def dynjax(*args: str) -> subprocess.CompletedProcess:
    """`dynjax ARGS` in a fresh process (no progress bars)."""
    return subprocess.run([sys.executable, "-m", "dynjax.cli", *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "TQDM_DISABLE": "1"})


def walk_forward(out: Path, data_dir: Path, overrides: list[str], config: Path | None = None) -> dict:
    """One walk-forward run in `out` (reused when finished); the figures of its metrics.json, or its error."""
    out = Path(out)
    if not (out / "metrics.json").is_file():
        subprocess.run(["rm", "-rf", str(out)], check=True)
        start = time.perf_counter()
        proc = dynjax("walk-forward", "--data", str(data_dir), "--out", str(out),
                      *(["--config", str(config)] if config else []), *overrides)
        if proc.returncode:
            # A killed run may print nothing: the row still says it failed.
            return {"error": proc.stderr[-2000:] or f"exit status {proc.returncode}, nothing on stderr"}
        (out / "wall_s.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    m = json.loads((out / "metrics.json").read_text())
    d, s = m["dynjax"], m.get("selection", {})
    f = m["frozen"]
    return {"corr": d["corr_mean"], "sharpe": d["corr_sharpe"], "max_dd": d["max_drawdown"], "kept": s.get("n_selected"),
            "below0": d.get("below_zero"), "frozen_max_dd": f["max_drawdown"], "frozen_below0": f.get("below_zero"),
            "recall": s.get("recall"), "precision": s.get("precision"), "topk_recall": s.get("topk_recall"),
            "wall_s": float((out / "wall_s.txt").read_text()), "frozen_corr": m["frozen"]["corr_mean"],
            "frozen_sharpe": m["frozen"]["corr_sharpe"], "exposure": d.get("max_exposure_mean"), "fnc": d.get("fnc_mean"),
            "ridge_corr": m["ridge"]["corr_mean"], "ridge_sharpe": m["ridge"]["corr_sharpe"],
            "oracle_corr": (m.get("oracle") or {}).get("corr_mean"),
            "n_features": json.loads((out / "data_summary.json").read_text())["train"]["features"],
            "kind_weights": kind_weights(out, m),
            "pairs": json.loads((out / "pairs.json").read_text())["n_pairs"] if (out / "pairs.json").is_file() else 0}


def run_variant(root: Path, setting: str, variant: str, seed: int, data_dir: Path, overrides: list[str]) -> dict:
    """One (setting, variant, seed) walk-forward in `root/runs/SETTING/VARIANT-sSEED`: its row."""
    out = Path(root) / "runs" / setting / f"{variant}-s{seed}"
    return {"setting": setting, "variant": variant, "seed": seed, **walk_forward(out, data_dir, [*overrides, f"seed={seed}"])}


def seed_groups(rows: list[dict], variants: list[str], metrics: tuple[str, ...]):
    """Yields `(group, agg)` per (setting, variant) in setting then variant order: the rows
    without an error, and their mean and std over seeds of each metric (`k`, `k_std`)."""
    import numpy as np

    ok = [r for r in rows if "error" not in r]
    keys = sorted({(r["setting"], r["variant"]) for r in ok},
                  key=lambda k: (*setting_order(k[0]), list(variants).index(k[1])))
    for setting, variant in keys:
        group = [r for r in ok if r["setting"] == setting and r["variant"] == variant]
        agg = {"setting": setting, "variant": variant, "seeds": len(group)}
        for k in metrics:
            v = np.array([r[k] for r in group if r.get(k) is not None], float)
            agg[k], agg[k + "_std"] = (float(v.mean()), float(v.std())) if len(v) else (float("nan"), float("nan"))
        yield group, agg


def kind_weights(out: Path, metrics: dict) -> dict[str, float] | None:
    """The walk-forward's mean Hedge weight of each kind of member ("h0 t-1000": all resolved
    eras, every gate open; "h16 t5": the latest 16, gated), or None with one kind."""
    from dynjax.config import load_config
    from dynjax.train.members import plan_members

    plan, weights = plan_members(load_config(out / "config.json")), metrics.get("members")
    if not weights or len(set(plan.kinds_M)) < 2:
        return None
    horizons = plan.horizons_M or ("w",) * plan.n
    labels = [f"h{h} t{t:g}" for h, t in zip(horizons, plan.thresholds_M or (float("nan"),) * plan.n)]
    out_K: dict[str, float] = {}
    for label, w in zip(labels, weights["weight_mean"]):
        out_K[label] = out_K.get(label, 0.0) + w
    return out_K


def write_results(name: str, payload: dict, table: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1, default=float) + "\n")
    (RESULTS / f"{name}.md").write_text(table + "\n")
    print(f"wrote {RESULTS / name}.json and .md")


def mean_std(values: list[float]) -> str:
    import numpy as np

    v = np.asarray(values, float)
    return f"{v.mean():.4f} ± {v.std():.4f}"


def seeds_parser(doc: str, name: str):
    """The command line of an experiment over settings and seeds: --root, --settings, --seeds, --name."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/tmp/dynjax_ablation")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--name", default=name, help="results file name")
    return parser


def settings_main(doc: str, name: str, per_setting, markdown, **payload) -> None:
    """The command line of a one-result-per-setting experiment: `per_setting(root, setting)` for each
    of `--settings`, printed as `markdown(rows)` and written to `results/NAME.{json,md}`."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--root", default="/tmp/dynjax_ablation")
    parser.add_argument("--name", default=name, help="results file name (other settings than the five: keep the main file)")
    args = parser.parse_args()
    rows = [per_setting(Path(args.root), s) for s in args.settings.split(",")]
    table = markdown(rows)
    print(table)
    write_results(args.name, {**payload, "settings": rows}, table)


def replay_main(doc: str, name: str, per_setting, markdown) -> None:
    """The command line of a replay over finished runs: `per_setting(root, setting, variant, seeds)` for
    each of `--settings` (the runs of one `experiments.skill` variant), printed as `markdown(rows)`
    and written to `results/NAME.{json,md}`."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/tmp/dynjax_ablation")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--variant", default="default", help="the experiments.skill variant whose runs to replay")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--name", default=name)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [per_setting(Path(args.root), s, args.variant, seeds) for s in args.settings.split(",")]
    table = markdown(rows)
    print(table)
    write_results(args.name, {"variant": args.variant, "seeds": seeds, "settings": rows}, table)


def grid_parser(doc: str, variants: dict, name: str, jobs: int):
    """The command line of a variants x settings x seeds experiment."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--variants", default=",".join(variants))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=jobs)
    parser.add_argument("--root", default="/tmp/dynjax_ablation")
    parser.add_argument("--name", default=name, help="results file name")
    return parser


def grid(parser, args, variants: dict) -> tuple[Path, dict[str, Path], list[tuple[str, str, int]]]:
    """The root, each setting's data directory and the (setting, variant, seed) jobs of `args`."""
    settings, names = args.settings.split(","), args.variants.split(",")
    unknown = [s for s in settings if not _known(s)] + [v for v in names if v not in variants]
    if unknown:
        parser.error(f"unknown settings/variants: {unknown}; settings {list(SETTINGS)} (NAME@SEED: another draw "
                     f"of NAME), variants {list(variants)}")
    root = Path(args.root)
    data = {s: make_data(root, s) for s in settings}
    return root, data, [(s, v, int(seed)) for s in settings for v in names for seed in args.seeds.split(",")]


def _known(setting: str) -> bool:
    name, at, seed = setting.partition("@")
    return name in SETTINGS and (not at or seed.isdigit())
