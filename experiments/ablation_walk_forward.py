"""Which walk-forward mechanisms help? Dense baseline, each mechanism alone, the combination.

    python -m experiments.ablation_walk_forward [--settings default,switching,wide,noisy]
        [--variants dense,ema,...] [--seeds 0,1,2] [--jobs 2] [--root /tmp/dynjax_ablation]

Every (setting, variant, seed) is one `dynjax walk-forward` (in its own process, `--jobs` at
a time) on a synthetic Numerai-format set generated once per setting, with the variant's
config overrides on top of an explicit dense baseline (so the table does not move when the
defaults do). The seed is the run's `seed` (init, sampling, dropout); the data stay fixed
within a setting. Reported per variant and setting: mean +- std over seeds of validation
corr, Sharpe, max drawdown, features kept per era, selection recall / precision against the
true active features, and wall time; plus the ridge baseline and the oracle of the setting.
Writes `experiments/results/ablation_walk_forward.{json,md}`.

Result (2-core CPU; the table is in `experiments/README.md`): see there.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from experiments.record import RESULTS, describe, grid, grid_parser, run_variant, seed_groups

# The old dense default, spelled out so that variants stay comparable when defaults change.
DENSE = [
    "model.gates=none", "loss.sparsity=none", "loss.sparsity_lambda=0", "loss.distill_weight=0",
    "selection.mode=none", "selection.warmup_eras=0", "optim.ema_decay=0", "train.ensemble=1",
    "train.replay_eras=0", "train.replay_capacity=0", "train.replay_sampling=reservoir", "data.window_eras=8",
    # the model and schedule before issue 18 (today's defaults differ; experiments/skill.py)
    "model.backbone=grn", "model.additive=false", "train.pretrain_windows=sliding", "train.patience=2",
    "model.gate_thresholds=", "train.horizons=", "train.hedge_eta=0", "optim.decay_steps=2000",
]
GATES = ["model.gates=context", "loss.sparsity=l0", "loss.sparsity_lambda=0.02"]
REPLAY = ["train.replay_capacity=64", "train.replay_eras=8"]
VARIANTS = {
    "dense": [],
    "ema": ["optim.ema_decay=0.99"],
    "window16": ["data.window_eras=16"],
    "replay": REPLAY,
    "replay_similar": [*REPLAY, "train.replay_sampling=similar"],
    "replay_distill": [*REPLAY, "train.replay_sampling=similar", "loss.distill_weight=1.0"],
    "ensemble3": ["train.ensemble=3"],
    "mask_schedule": ["selection.mode=schedule", "selection.k=16", "selection.schedule_eras=24", "selection.warmup_eras=16"],
    "gates": GATES,
    "combined_nogates": [*REPLAY, "train.replay_sampling=similar", "loss.distill_weight=1.0", "data.window_eras=16",
                         "train.ensemble=3"],
    "combined": [*GATES, *REPLAY, "train.replay_sampling=similar", "loss.distill_weight=1.0", "data.window_eras=16",
                 "train.ensemble=3"],
}


def run_one(root: Path, setting: str, variant: str, seed: int, data_dir: Path) -> dict:
    """One walk-forward in a fresh process; the figures of its metrics.json."""
    return run_variant(root, setting, variant, seed, data_dir, [*DENSE, *VARIANTS[variant]])


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per (setting, variant)."""
    out = []
    for group, agg in seed_groups(rows, list(VARIANTS), ("corr", "sharpe", "max_dd", "kept", "recall", "precision", "wall_s")):
        agg["kept_frac"] = agg["kept"] / group[0]["n_features"]
        for k in ("ridge_corr", "ridge_sharpe", "oracle_corr"):
            agg[k] = group[0][k]
        out.append(agg)
    return out


def markdown(summary: list[dict]) -> str:
    lines = []
    for setting in dict.fromkeys(r["setting"] for r in summary):
        group = [r for r in summary if r["setting"] == setting]
        g0 = group[0]
        oracle = f"{g0['oracle_corr']:.3f}" if g0["oracle_corr"] is not None else "-"
        lines += [(f"**{setting}** ({describe(setting)}): ridge corr "
                   f"{g0['ridge_corr']:.3f} / Sharpe {g0['ridge_sharpe']:.2f}, oracle corr {oracle}"), "",
                  "| variant | corr | Sharpe | max dd | kept / era | kept % | recall | precision | wall s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in group:
            pm = lambda k, f, r=r: f"{r[k]:{f}} ± {r[k + '_std']:{f}}"
            lines.append(f"| {r['variant']} | {pm('corr', '.4f')} | {pm('sharpe', '.2f')} | {pm('max_dd', '.3f')} | "
                         f"{r['kept']:.1f} | {r['kept_frac']:.0%} | {pm('recall', '.2f')} | {pm('precision', '.2f')} | "
                         f"{r['wall_s']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = grid_parser(__doc__, VARIANTS, "ablation_walk_forward", 2)
    args = parser.parse_args()
    root, data, jobs = grid(parser, args, VARIANTS)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = []
        for row in pool.map(lambda j: run_one(root, *j, data[j[0]]), jobs):
            rows.append(row)
            msg = row.get("error") or f"corr {row['corr']:.4f} sharpe {row['sharpe']:.2f} kept {row['kept']:.1f}"
            print(f"{row['setting']:<10} {row['variant']:<15} seed {row['seed']}: {msg}", flush=True)
    summary = summarize(rows)
    table = markdown(summary)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"runs": rows, "summary": summary}, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text(table + "\n")
    print(f"wrote {RESULTS / args.name}.json and .md")


if __name__ == "__main__":
    main()
