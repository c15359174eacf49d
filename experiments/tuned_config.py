"""Does the config `dynjax tune` finds beat the default on validation eras the search never saw?

    python -m experiments.tuned_config [--tune-dir runs/tune] [--seeds 0,1,2] [--transfer-seeds 0]
        [--settings default,switching,noisy] [--root /tmp/dynjax_records]

1. `dynjax tune --out TUNE_DIR --n-trials 30` on the default synthetic set (skipped when
   TUNE_DIR already holds a finished study): every trial is scored on walk-forward folds of
   the last training eras, never on validation.
2. `dynjax walk-forward` with the default config and with `TUNE_DIR/best_config.json`, for
   each seed (init, sampling, dropout; the data stay fixed) and setting. On the other settings
   the hyperparameters tuned on the default set are applied unchanged: a transfer check, not
   a search per setting.

Result (2-core CPU): `results/tuned_config.md`, summarised in `RESULTS.md`.
"""

import argparse
import json
from pathlib import Path

from experiments.record import describe, dynjax, make_data, mean_std, walk_forward, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune-dir", default="runs/tune")
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--settings", default="default,switching,noisy")
    parser.add_argument("--transfer-seeds", default="0", help="seeds on the settings other than default")
    parser.add_argument("--root", default="/tmp/dynjax_records")
    args = parser.parse_args()
    root, tune_dir = Path(args.root), Path(args.tune_dir)
    if not (tune_dir / "best_config.json").is_file():
        proc = dynjax("tune", "--out", str(tune_dir), "--n-trials", str(args.n_trials))
        print(proc.stdout[-3000:])
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
    tuned = json.loads((tune_dir / "tune_summary.json").read_text())
    rows = []
    for setting in args.settings.split(","):
        data_dir = make_data(root, setting)
        seeds = args.seeds if setting == "default" else args.transfer_seeds
        for seed in (int(s) for s in seeds.split(",")):
            for name, config in (("default", None), ("tuned", tune_dir / "best_config.json")):
                row = walk_forward(root / "runs" / setting / f"{name}-s{seed}", data_dir, [f"seed={seed}"], config)
                if "error" in row:
                    raise SystemExit(f"{setting} {name} seed {seed} failed: {row['error']}")
                rows.append({"setting": setting, "config": name, "seed": seed, **row})
                print(f"{setting:<10} {name:<8} seed {seed}: corr {row['corr']:.4f} sharpe {row['sharpe']:.2f}", flush=True)
    table = markdown(rows, tuned)
    print(table)
    write_results("tuned_config", {"tune": tuned, "runs": rows}, table)


def markdown(rows: list[dict], tuned: dict) -> str:
    best = tuned["best"]
    lines = [(f"Tuned (trial {best['trial']} of {tuned['n_trials']}, fold corr {best['value']:.4f} against the base "
             f"config's {tuned.get('baseline', {}).get('value', float('nan')):.4f}): `{' '.join(best['overrides'])}`"), "",
             "| setting | config | seeds | corr | Sharpe | max dd | kept / era | ridge corr / Sharpe |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for setting in dict.fromkeys(r["setting"] for r in rows):
        for name in ("default", "tuned"):
            group = [r for r in rows if r["setting"] == setting and r["config"] == name]
            col = lambda k, g=group: [r[k] for r in g]
            lines.append(f"| {setting} ({describe(setting)}) | {name} | {len(group)} | {mean_std(col('corr'))} | "
                         f"{mean_std(col('sharpe'))} | {mean_std(col('max_dd'))} | {mean_std(col('kept'))} | "
                         f"{group[0]['ridge_corr']:.4f} / {group[0]['ridge_sharpe']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
