"""Does the default hold on data it was not tuned on? Variants x settings x seeds, yardsticks beside.

    python -m experiments.skill [--settings default,switching,noisy,wide,diffuse]
        [--variants default,old_default,...] [--seeds 0,1,2] [--jobs 1] [--root /tmp/dynjax_ablation] [--finished]

Every (setting, variant, seed) is one `dynjax walk-forward` in its own process (finished runs
are reused) on the setting's synthetic data; a variant is one change (a list of overrides) to
the *current* defaults, named by what it tests. Reported per variant and setting, mean +- std
over seeds: walk-forward corr and
Sharpe, the same model frozen after pretraining, mean max feature exposure, feature-neutral
corr, features kept per era and wall seconds; beside them the yardsticks of
`experiments.yardsticks` (LightGBM with Numerai's example parameters, static and refit
walk-forward, ridge on every resolved era, the oracle), computed once per setting. A setting
`NAME@SEED` is another draw of setting NAME (data seed SEED: other regimes and sequences), e.g.
`--settings switching@101`: a verdict that holds on one draw only is the draw's, not the method's.

Writes `experiments/results/skill.{json,md}`; the tables and what they say are in the research
log (`docs/research-log.md`). Variants of mechanisms that left the code (MLP heads, rehearsal,
the warm walk, Hedge's lead and prior, the pretrained experts, L2-SP, the era encoder, the recalled
memory) are there
with the commit that still runs them.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from experiments.record import RESULTS, describe, grid, grid_parser, run_variant, seed_groups

# The additive path without its ridge prior.
NO_PRIOR = ["loss.additive_l2=0", "loss.additive_smooth=0"]
# Hedge over the members alone with forgetting (eta 10, scores decayed by 0.95 an era), not over their mixtures.
CLASSIC_HEDGE = ["train.hedge_mean=false", "train.hedge_eta=10", "train.hedge_decay=0.95"]
# Three members: the dense one beside gated ones at evidence z 3.5 and 5, the prior on the dense one.
GATES_BOTH = ["train.ensemble=3", "model.gate_thresholds=-1000,3.5,5", "train.horizons=0,16,16", "loss.prior_members=1,0,0"]
# One dense member, frozen after pretraining: the static learner alone.
DENSE_STATIC = ["train.ensemble=1", "train.horizons=0", "model.gate_thresholds=-1000", "train.steps_per_update=0"]
VARIANTS = {
    "default": [],
    "walk_alone": ["train.frozen_shares=0"],  # without the safe expert: the walk-forward's members alone
    # the static learner
    "no_pairs": ["model.pairs=0"],  # without GA2M's screened pair tables
    "no_prior": NO_PRIOR,
    "prior_all": ["loss.prior_members=1"],  # the prior on the gated recent member too
    "no_ema": ["optim.ema_decay=0"],  # the last iterate predicts, not the Polyak average
    "ema995": ["optim.ema_decay=0.995"],  # a longer average: slower to follow regimes
    "early_stopping": ["train.patience=2", "train.pretrain_windows=sliding"],
    "dense_static": DENSE_STATIC,
    # the walk-forward: its updates and the mixing of the members
    "dense_walk": DENSE_STATIC[:-1],  # one dense member, updated by the walk-forward
    "dense_walk_2steps": [*DENSE_STATIC[:-1], "train.steps_per_update=2"],
    "dense_walk_16steps": [*DENSE_STATIC[:-1], "train.steps_per_update=16"],
    "dense_walk_32steps": [*DENSE_STATIC[:-1], "train.steps_per_update=32"],
    "steps2": ["train.steps_per_update=2"],  # a quarter of the updates
    # the schedule's cost: cheaper pretraining, updates, update frequency and pair screen
    "pretrain2": ["train.pretrain_epochs=2"],
    "pretrain3": ["train.pretrain_epochs=3"],
    "steps4": ["train.steps_per_update=4"],
    "every2": ["train.update_every=2"],
    "pair_rows1024": ["model.pair_rows=1024"],
    "rows256": ["data.rows_per_era=256"],  # half the rows an era in every step
    "rows1800": ["data.rows_per_era=1800"],  # every row of an era in every step on diffuse and numerai (1,200-1,800 an era)
    "classic_hedge": CLASSIC_HEDGE,
    "one_policy": ["train.hedge_etas=30", "train.hedge_risks=0"],  # Hedge at rate 30 alone: no policy chosen
    "no_hedge": ["train.hedge_eta=0"],  # the plain rank mean of the members
    "gate35": ["model.gate_thresholds=-1000,3.5"],  # the gated member opens at evidence z 3.5, not 5
    "gates_both": GATES_BOTH,
    "gated_all": ["train.horizons=0,0"],  # the gated member remembers every resolved era too
    "all_dense": ["model.gate_thresholds=-1000", "train.horizons=0"],
    "all_gated_recent": ["model.gate_thresholds=5", "train.horizons=16"],
    # Variance reduction at a low signal-to-noise: two seeds of each kind averaged within the one
    # vmapped step; a prior ten times as strong.
    "members4": ["train.ensemble=4"],
    "prior_x10": ["loss.additive_l2=1e5", "loss.additive_smooth=1e5", "loss.pair_l2=1e5"],
}
METRICS = ("corr", "sharpe", "max_dd", "below0", "frozen_corr", "frozen_sharpe", "frozen_max_dd", "frozen_below0",
           "exposure", "fnc", "kept", "pairs", "wall_s")
YARDSTICKS = ("lightgbm", "lightgbm_wf", "ridge")


def run_one(root: Path, setting: str, variant: str, seed: int, data_dir: Path) -> dict:
    """One walk-forward in a fresh process; the figures of its metrics.json."""
    return run_variant(root, setting, variant, seed, data_dir, VARIANTS[variant])


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per (setting, variant), and the mean Hedge weight of each kind."""
    out = []
    for group, agg in seed_groups(rows, list(VARIANTS), METRICS):
        weights = [r["kind_weights"] for r in group if r.get("kind_weights")]
        agg["n_features"] = group[0]["n_features"]
        agg["kind_weights"] = {k: float(np.mean([w[k] for w in weights])) for k in weights[0]} if weights else None
        out.append(agg)
    return out


def beats(r: dict, yard: dict) -> bool:
    """Walk-forward corr and Sharpe at least every yardstick's and the frozen model's."""
    rivals = [(yard[n]["corr_mean"], yard[n]["corr_sharpe"]) for n in YARDSTICKS if n in yard]
    rivals.append((r["frozen_corr"], r["frozen_sharpe"]))
    return all(r["corr"] >= c and r["sharpe"] >= s for c, s in rivals)


def weights(r: dict) -> str:
    """"h0 t-1000 0.05, h16 t5 0.95": each kind's mean Hedge weight (the data's choice of memory and sparsity)."""
    return ", ".join(f"{k} {w:.2f}" for k, w in r["kind_weights"].items()) if r["kind_weights"] else "-"


def n_pairs(r: dict) -> str:
    """The mean count of feature pairs the screen kept ("-": measured before the count was recorded)."""
    return "-" if np.isnan(r["pairs"]) else f"{r['pairs']:.1f}".removesuffix(".0")


def markdown(summary: list[dict], yards: dict) -> str:
    lines = []
    for setting in dict.fromkeys(r["setting"] for r in summary):
        y = yards[setting]
        lines += [(f"**{setting}** ({describe(setting)}; oracle corr "
                   f"{y['oracle']['corr_mean']:.3f})"), "",
                  ("| model | seeds | corr | Sharpe | max dd | eras < 0 | frozen corr | frozen Sharpe | frozen max dd | "
                   "frozen eras < 0 | max exposure | FNC | kept / era | pairs | Hedge weight by kind | wall s | beats all |"),
                  "| --- " * 17 + "|"]
        for name in (n for n in YARDSTICKS if n in y):
            m = y[name]
            below = f"{m['below_zero']:.0%}" if "below_zero" in m else "-"
            lines.append(f"| *{name}* | - | {m['corr_mean']:.4f} | {m['corr_sharpe']:.2f} | {m['max_drawdown']:.3f} | {below} | "
                         f"- | - | - | - | {m['max_exposure_mean']:.3f} | {m['fnc_mean']:.4f} | - | - | - | {m['wall_s']:.0f} | |")
        for r in (r for r in summary if r["setting"] == setting):
            pm = lambda k, f, r=r: f"{r[k]:{f}} ± {r[k + '_std']:{f}}" if r["seeds"] > 1 else f"{r[k]:{f}}"
            pct = lambda k, r=r: "-" if np.isnan(r[k]) else f"{r[k]:.0%}"
            lines.append(f"| {r['variant']} | {r['seeds']} | {pm('corr', '.4f')} | {pm('sharpe', '.2f')} | "
                         f"{r['max_dd']:.3f} | {pct('below0')} | {pm('frozen_corr', '.4f')} | {pm('frozen_sharpe', '.2f')} | "
                         f"{r['frozen_max_dd']:.3f} | {pct('frozen_below0')} | {r['exposure']:.3f} | "
                         f"{r['fnc']:.4f} | {r['kept']:.0f} / {r['n_features']} | {n_pairs(r)} | "
                         f"{weights(r)} | {r['wall_s']:.0f} | "
                         f"{'yes' if beats(r, y) else 'no'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    from experiments.yardsticks import yardsticks

    parser = grid_parser(__doc__, VARIANTS, "skill", 1)
    parser.add_argument("--finished", action="store_true", help="tabulate the finished runs only; start none")
    parser.add_argument("--no-refit", action="store_true", help="skip the refit LightGBM yardstick (943 s on diffuse)")
    args = parser.parse_args()
    root, data, jobs = grid(parser, args, VARIANTS)
    if args.finished:
        jobs = [j for j in jobs if (root / "runs" / j[0] / f"{j[1]}-s{j[2]}" / "metrics.json").is_file()]
    rows = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for row in pool.map(lambda j: run_one(root, *j, data[j[0]]), jobs):
            rows.append(row)
            msg = row.get("error") or (f"corr {row['corr']:.4f} sharpe {row['sharpe']:.2f} frozen {row['frozen_corr']:.4f} "
                                       f"exposure {row['exposure']:.3f} kept {row['kept']:.1f} wall {row['wall_s']:.0f}")
            print(f"{row['setting']:<10} {row['variant']:<17} seed {row['seed']}: {msg}", flush=True)
    yards = {s: yardsticks(root, s, refit=not args.no_refit) for s in dict.fromkeys(j[0] for j in jobs)}
    summary = summarize(rows)
    table = markdown(summary, yards)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"runs": rows, "summary": summary, "yardsticks": yards},
                                                          indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text(table + "\n")
    print(f"wrote {RESULTS / args.name}.json and .md")


if __name__ == "__main__":
    main()
