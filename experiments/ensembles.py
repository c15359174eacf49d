"""Do ensembles beat the single model? Seeds inside one run; targets and tuned configs across runs.

    python -m experiments.ensembles [--tune-dir runs/tune] [--seeds 0,1,2] [--root /tmp/dynjax_records]

- seeds: the default config (`train.ensemble=3`: three members in one vmapped step, ranks
  averaged per era) against the same config with one member, for each seed;
- targets: `dynjax ensemble --targets target,target_jasper_20,target_ender_60` (Numerai's
  target ensembling: one default-config run per target, every member and the ensemble scored
  against the main target; the 60-day target's member gets a 12-era embargo), seed 0;
- tuned: `dynjax ensemble --tuned TUNE_DIR --top-k 3` (the three best trials of the study of
  `experiments.tuned_config`, each a full default-size run), seed 0.
All on the default synthetic set. Result: `results/ensembles.md`, summarised in `RESULTS.md`.
"""

import argparse
import json
from pathlib import Path

from experiments.record import dynjax, make_data, mean_std, walk_forward, write_results

# Three different targets: the synthetic `target_ender_20` is `target` itself (as Numerai's main target is
# one of its named 20-day targets), so it would only double the main target's weight.
TARGETS = "target,target_jasper_20,target_ender_60"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune-dir", default="runs/tune")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--root", default="/tmp/dynjax_records")
    parser.add_argument("--kinds", default="seeds,targets,tuned")
    args = parser.parse_args()
    root, kinds = Path(args.root), args.kinds.split(",")
    data_dir = make_data(root, "default")
    result, lines = {}, []
    if "seeds" in kinds:
        rows = []
        for seed in (int(s) for s in args.seeds.split(",")):
            for name, extra in (("single", ["train.ensemble=1"]), ("default", [])):
                row = walk_forward(root / "runs" / "default" / f"{name}-s{seed}", data_dir, [f"seed={seed}", *extra])
                if "error" in row:
                    raise SystemExit(f"{name} seed {seed} failed: {row['error']}")
                rows.append({"model": name, "seed": seed, **row})
                print(f"seeds {name:<8} seed {seed}: corr {row['corr']:.4f} sharpe {row['sharpe']:.2f}", flush=True)
        result["seeds"] = rows
        lines += ["| model | seeds | corr | Sharpe | max dd |", "| --- | --- | --- | --- | --- |"]
        for name, label in (("single", "one member (`train.ensemble=1`)"), ("default", "seed ensemble of 3 (default)")):
            group = [r for r in rows if r["model"] == name]
            col = lambda k, g=group: [r[k] for r in g]
            lines.append(f"| {label} | {len(group)} | {mean_std(col('corr'))} | {mean_std(col('sharpe'))} | "
                         f"{mean_std(col('max_dd'))} |")
        lines.append("")
    for kind, member_args in (("targets", ["--targets", TARGETS]), ("tuned", ["--tuned", args.tune_dir, "--top-k", "3"])):
        if kind not in kinds:
            continue
        out = root / "ensembles" / kind
        proc = dynjax("ensemble", "--out", str(out), "--data", str(data_dir), *member_args)
        if proc.returncode:
            raise SystemExit(f"{kind} ensemble failed: {proc.stderr[-3000:]}")
        print(proc.stdout)
        scores = json.loads((out / "ensemble.json").read_text())["scores"]
        result[kind] = scores
        lines += [f"**{kind}** (`dynjax ensemble {' '.join(member_args)}`, scored against `target`):", "",
                  "| member | corr | Sharpe | max dd |", "| --- | --- | --- | --- |"]
        lines += [f"| {n} | {s['corr_mean']:.4f} | {s['corr_sharpe']:.2f} | {s['max_drawdown']:.4f} |" for n, s in scores.items()]
        lines.append("")
    table = "\n".join(lines)
    print(table)
    write_results("ensembles", result, table)


if __name__ == "__main__":
    main()
