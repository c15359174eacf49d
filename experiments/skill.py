"""Does the default hold on data it was not tuned on? Variants x settings x seeds, yardsticks beside.

    python -m experiments.skill [--settings default,switching,noisy,wide,diffuse]
        [--variants default,old_default,...] [--seeds 0,1,2] [--jobs 1] [--root /tmp/dynjax_ablation] [--finished]

Every (setting, variant, seed) is one `dynjax walk-forward` in its own process (finished runs
are reused) on the setting's synthetic data; a variant is a list of overrides on top of the
*current* defaults, and `old_default` spells out the default before issue 18 (one GRN head,
no additive path, sliding pretraining windows with early stopping, three gated members on the
latest window, rehearsal). Reported per variant and setting, mean +- std over seeds: walk-forward corr and
Sharpe, the same model frozen after pretraining, mean max feature exposure, feature-neutral
corr, features kept per era and wall seconds; beside them the yardsticks of
`experiments.yardsticks` (LightGBM with Numerai's example parameters, static and refit
walk-forward, ridge on every resolved era, the oracle), computed once per setting. A setting
`NAME@SEED` is another draw of setting NAME (data seed SEED: other regimes and sequences), e.g.
`--settings switching@101`: a verdict that holds on one draw only is the draw's, not the method's.

Writes `experiments/results/skill.{json,md}`; the table and what it says are in
`experiments/README.md`.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from experiments.record import RESULTS, describe, grid, grid_parser, run_variant, seed_groups

# The rehearsal of the first round (DER++ on 8 of 64 eras, "similar" sampling), off since.
REPLAY = ["train.replay_capacity=64", "train.replay_eras=8"]
# Variants measured before parameter averaging became the default spell it out as off.
NO_EMA = ["optim.ema_decay=0"]
# Variants measured before the additive path's ridge prior became the default (round 4) spell it out as off.
NO_PRIOR = ["loss.additive_l2=0", "loss.additive_smooth=0"]
# Variants measured before round 5 (Hedge over the members alone, forgetting) spell out its Hedge.
CLASSIC_HEDGE = ["train.hedge_mean=false", "train.hedge_eta=10", "train.hedge_decay=0.95"]
# The default before issue 18, spelled out against today's defaults.
OLD_DEFAULT = ["model.backbone=grn", "model.additive=false", "train.pretrain_windows=sliding", "train.patience=2",
               "train.ensemble=3", "model.gate_thresholds=", "train.horizons=", "train.hedge_eta=0",
               "optim.decay_steps=2000", *REPLAY, *NO_EMA]
# Round 11's three members: the dense one beside gated ones at evidence z 3.5 and 5, the prior on the dense one.
GATES_BOTH = ["train.ensemble=3", "model.gate_thresholds=-1000,3.5,5", "train.horizons=0,16,16", "loss.prior_members=1,0,0"]
DENSE_STATIC = ["train.ensemble=1", "train.horizons=0", "model.gate_thresholds=-1000", "train.steps_per_update=0"]
VARIANTS = {
    "default": [],
    # round 4's default: Hedge over the members alone, eta 10, scores decayed by 0.95 per era
    "classic_hedge": CLASSIC_HEDGE,
    # Hedge over the simplex grid of step 1/4 (eta 10, decay 0.95): it follows the latest regime, and
    # spreads weight onto mixtures with a member that is worse alone (the gated one on diffuse data)
    "hedge_grid4": ["train.hedge_grid=4", "train.hedge_eta=10", "train.hedge_decay=0.95"],
    # round 3's default: the additive path without its ridge prior
    "no_prior": [*NO_PRIOR, *CLASSIC_HEDGE],
    # the prior on every member, the gated recent one too (the default puts it on the dense member only)
    "prior_all": ["loss.prior_members=1", *CLASSIC_HEDGE],
    # the pretrained members kept as Hedge experts of their own, with today's prior
    "prior_pretrained_experts": ["train.pretrained_experts=true", *CLASSIC_HEDGE],
    "old_default": [*CLASSIC_HEDGE, *OLD_DEFAULT],
    # the static learner under noise: without the Polyak average of the params (the default before round 3)
    "no_ema": [*NO_EMA, *NO_PRIOR, *CLASSIC_HEDGE],
    "ema995": ["optim.ema_decay=0.995", *NO_PRIOR, *CLASSIC_HEDGE],  # a longer average: better on the diffuse probe, slower to follow regimes
    # the static learner: which parts of it carry the frozen model (with the first round's rehearsal)
    "tabm_head": ["model.backbone=tabm", *REPLAY, *NO_EMA, *NO_PRIOR, *CLASSIC_HEDGE],  # the default of the first round of this issue
    "grn_head": ["model.backbone=grn", "model.additive=false", *REPLAY, *NO_EMA, *NO_PRIOR, *CLASSIC_HEDGE],
    "early_stopping": ["train.patience=2", "train.pretrain_windows=sliding", *NO_EMA, *NO_PRIOR, *CLASSIC_HEDGE],
    # the walk-forward: which parts of the mixture carry the updates
    "replay": [*REPLAY, *NO_EMA, *NO_PRIOR, *CLASSIC_HEDGE],  # round 2's default with the first round's rehearsal
    "reservoir_replay": [*REPLAY, "train.replay_sampling=reservoir", *NO_EMA, *NO_PRIOR, *CLASSIC_HEDGE],
    "pretrained_experts": ["train.pretrained_experts=true", *NO_EMA, *NO_PRIOR, *CLASSIC_HEDGE],
    "replay_pretrained": [*REPLAY, "train.pretrained_experts=true", *NO_EMA, *NO_PRIOR, *CLASSIC_HEDGE],
    "replay_pretrained_ema": [*REPLAY, "train.pretrained_experts=true", "optim.ema_decay=0.98", *NO_PRIOR, *CLASSIC_HEDGE],
    "no_hedge": [*CLASSIC_HEDGE, "train.hedge_eta=0", *NO_PRIOR],
    # a softer classic Hedge: on noisy data eta 10 concentrates the weight on per-era noise
    "hedge_eta3": [*CLASSIC_HEDGE, "train.hedge_eta=3"],
    # round 7: the pretrained members kept as Hedge experts under today's Hedge (mean mixture, eta 30, no decay)
    "frozen_experts": ["train.pretrained_experts=true"],
    "steps2": ["train.steps_per_update=2"],  # a quarter of the walk-forward's updates (the update-size probe's best Sharpe)
    # round 7: GA2M's screened pairs beside the additive path (at most 32; the default since): without them
    "no_pairs": ["model.pairs=0"],
    "pairwise8": ["model.pairwise=8"],  # a factorisation machine's pairs beside the additive path, rank 8
    # round 8: pretraining walks forward over its last 16 eras instead of fitting them, so that Hedge
    # enters validation with weights learned out of sample (the default starts them equal)
    "warm": ["train.warm_walk=true"],
    # round 8: the equal mixture starts with a lead of 0.1 summed corr (about one era of a strong
    # member's corr): a member alone takes the weight only once it has beaten the mean by that much
    "lead01": ["train.hedge_lead=0.1"],
    # the same lead for the mean of the members and their pretrained copies (Hedge experts of their own)
    "lead01_pre": ["train.hedge_lead=0.1", "train.pretrained_experts=true"],
    # round 9: the gated member's gates open at evidence z 3.5 (about Bonferroni's 5 % bound over
    # 120-300 features) instead of 5: after a switch under heavy noise its gates stayed shut for 15
    # validation eras (noisy@101)
    "gate35": ["model.gate_thresholds=-1000,3.5"],
    # round 10: L2-SP (decoupled): each walk-forward update also pulls the params toward the model
    # frozen after pretraining, by lr * anchor * (pretrained - params); at the end rate 3e-4 the
    # params then settle within about 1 / anchor of the pretrained ones
    "anchor3": ["optim.anchor=3"],
    "anchor10": ["optim.anchor=10"],
    "anchor100": ["optim.anchor=100"],
    # the pull on the dense member alone (all resolved history: the memory), the gated recent one free
    "anchor100_dense": ["optim.anchor=100", "optim.anchor_members=1,0"],
    # round 11: how much to keep, chosen per run by the data: gated members at evidence z 3.5 and 5
    # beside the dense one, and Hedge (resolved eras only) weighs each alone and their mean; the
    # prior stays on the dense member only
    "gates_both": GATES_BOTH,
    # round 12: the same, with Hedge's prior counting the two gated kinds as one (dense 4/9 before any era resolves)
    "gates_both_prior": [*GATES_BOTH, "train.hedge_prior=gated_as_one"],
    # round 14: the gated member remembers every resolved era, as the dense one does (Dynamos' point:
    # input-dependent modules over a rehearsal of all history, so that a regime's features are not
    # overwritten while it is away; the evidence gates pick which of them an era uses)
    "gated_all": ["train.horizons=0,0"],
    # Probes: one dense member, frozen after pretraining (the static learner alone).
    "dense_static": DENSE_STATIC,
    "dense_pair8": [*DENSE_STATIC, "model.pairwise=8", "loss.pairwise_l2=0"],
    "dense_walk": DENSE_STATIC[:-1],  # one dense member, updated by the walk-forward
    "dense_walk_2steps": [*DENSE_STATIC[:-1], "train.steps_per_update=2"],  # a quarter of the updates
    # round 15: how far more updates carry the dense member towards the refit LightGBM (switching)
    "dense_walk_16steps": [*DENSE_STATIC[:-1], "train.steps_per_update=16"],
    "dense_walk_32steps": [*DENSE_STATIC[:-1], "train.steps_per_update=32"],
    "dense_pair8_l2e2": [*DENSE_STATIC, "model.pairwise=8", "loss.pairwise_l2=100"],
    "dense_pair8_l2e3": [*DENSE_STATIC, "model.pairwise=8", "loss.pairwise_l2=1000"],
    "all_dense": ["model.gate_thresholds=-1000", "train.horizons=0", *NO_PRIOR, *CLASSIC_HEDGE],
    "all_gated_recent": ["model.gate_thresholds=5", "train.horizons=16", *NO_PRIOR, *CLASSIC_HEDGE],
}
# Every variant was measured before round 7 made the pair screen a default: each spells it out as off.
NO_PAIRS = ["model.pairs=0"]
# (Variants of round 8 on are measured with the pairs on, as the default.)
WITH_PAIRS = {"default", "warm", "lead01", "lead01_pre", "gate35", "anchor3", "anchor10", "anchor100", "anchor100_dense", "gates_both", "gates_both_prior", "gated_all"}
VARIANTS = {name: overrides if name in WITH_PAIRS or NO_PAIRS[0] in overrides else [*overrides, *NO_PAIRS]
            for name, overrides in VARIANTS.items()}
METRICS = ("corr", "sharpe", "frozen_corr", "frozen_sharpe", "exposure", "fnc", "kept", "pairs", "wall_s")
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
    rivals = [(yard[n]["corr_mean"], yard[n]["corr_sharpe"]) for n in YARDSTICKS] + [(r["frozen_corr"], r["frozen_sharpe"])]
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
                  "| model | seeds | corr | Sharpe | frozen corr | frozen Sharpe | max exposure | FNC | kept / era | pairs | Hedge weight by kind | wall s | beats all |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name in YARDSTICKS:
            m = y[name]
            lines.append(f"| *{name}* | - | {m['corr_mean']:.4f} | {m['corr_sharpe']:.2f} | - | - | "
                         f"{m['max_exposure_mean']:.3f} | {m['fnc_mean']:.4f} | - | - | - | {m['wall_s']:.0f} | |")
        for r in (r for r in summary if r["setting"] == setting):
            pm = lambda k, f, r=r: f"{r[k]:{f}} ± {r[k + '_std']:{f}}" if r["seeds"] > 1 else f"{r[k]:{f}}"
            lines.append(f"| {r['variant']} | {r['seeds']} | {pm('corr', '.4f')} | {pm('sharpe', '.2f')} | "
                         f"{pm('frozen_corr', '.4f')} | {pm('frozen_sharpe', '.2f')} | {r['exposure']:.3f} | "
                         f"{r['fnc']:.4f} | {r['kept']:.0f} / {r['n_features']} | {n_pairs(r)} | "
                         f"{weights(r)} | {r['wall_s']:.0f} | "
                         f"{'yes' if beats(r, y) else 'no'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    from experiments.yardsticks import yardsticks

    parser = grid_parser(__doc__, VARIANTS, "skill", 1)
    parser.add_argument("--finished", action="store_true", help="tabulate the finished runs only; start none")
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
    yards = {s: yardsticks(root, s) for s in dict.fromkeys(j[0] for j in jobs)}
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
