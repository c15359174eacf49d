"""A mixing rule chosen before validation, from a walk-forward over the latest training eras.

    python -m experiments.policy_before_validation [--settings default,...] [--seeds 0,1,2]
        [--fold-eras 48 | --fold-share 0.5] [--jobs 1] [--root /tmp/dynjax_ablation] [--name policy_before_validation]

Question: the mixing rule (the policies over the walk-forward's members, the safe expert's share) is
learned from validation eras as they resolve. The training eras hold regime changes too: does a walk
over the latest of them say, before validation, which rule will pay there? (`dynjax tune` scores a
config the same way: one walk-forward over the last training eras, pretrained on the ones before.)

Each (setting, seed) is recorded twice by `experiments.member_replay.record`: the default run
(`root/members/default/SETTING-sSEED`, shared with that experiment) and the same config walked over its
last `fold_eras` training eras (or `fold_share` of them) as if they were validation, pretrained on the training eras before them
(`root/data_foldK/SETTING`, the walk-forward purging the embargo as always; `root/members/foldK/...`).
Every candidate rule is replayed on both records as predicted; the rule with the best Sharpe on the
training walk is the one carried into validation. Reported per setting, mean over seeds: each rule's
validation corr / Sharpe, the chosen one's, how often each was chosen, and what the training walk
costs in training time against the run's.
"""

import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import polars as pl

from dynjax.eval.scores import summarize
from experiments.member_replay import (
    grids,
    hedge,
    load,
    mix_corr,
    policies,
    record,
    safe_expert,
    t_hedge,
)
from experiments.record import make_data, seeds_parser, write_results


def fold_size(data: Path, fold_eras: int, fold_share: float | None) -> int:
    """Training eras the walk before validation scores: `fold_share` of them, else `fold_eras`."""
    if fold_share is None:
        return fold_eras
    n_eras = pl.scan_parquet(data / "train.parquet").select(pl.col("era").n_unique()).collect().item()
    return round(fold_share * n_eras)


def write_fold(src: Path, dst: Path, fold_eras: int) -> Path:
    """`dst`: `src`'s training eras, the last `fold_eras` of them as the validation split (reused when there)."""
    if (dst / "validation.parquet").is_file():
        return dst
    train = pl.read_parquet(src / "train.parquet")
    eras = train["era"].unique().sort()
    if len(eras) <= fold_eras:
        raise ValueError(f"{src}: {len(eras)} training eras cannot hold a walk over {fold_eras} of them")
    scored = pl.col("era").is_in(eras[-fold_eras:].implode())
    dst.mkdir(parents=True, exist_ok=True)
    train.filter(~scored).write_parquet(dst / "train.parquet")
    train.filter(scored).with_columns(pl.lit("validation").alias("data_type")).write_parquet(dst / "validation.parquet")
    (dst / "features.json").write_text((src / "features.json").read_text())
    return dst


def rules(eras, lag: int) -> dict[str, np.ndarray]:
    """Each candidate rule's per-era corr `[E]`, as predicted."""
    walk, every, frozen = grids(eras[0][0].shape[1] // 2)
    walk_w, _ = policies(eras, lag, walk)
    t_walk_w, _ = policies(eras, lag, walk, [lambda c: t_hedge(c, 1.0, len(walk) - 1)])
    fixed = lambda w: np.array([mix_corr(era, w)[0] for era in eras])
    return {
        "the run's rule (policies, then the safe expert)": safe_expert(eras, lag, walk_w, frozen),
        "the safe expert at rate 3": safe_expert(eras, lag, walk_w, frozen, lambda c: hedge(c, 3.0)),
        "t-Hedge, safe expert t-Hedge": safe_expert(eras, lag, t_walk_w, frozen, lambda c: t_hedge(c, 1.0, 2)),
        "the policies alone (no safe expert)": np.array([mix_corr(era, w)[0] for era, w in zip(eras, walk_w)]),
        "every member, equal": fixed(every[-1]),
        "the frozen model": fixed(frozen),
    }


def choose(fold: dict[str, np.ndarray]) -> str:
    """The rule whose per-era corr on the training walk has the best Sharpe."""
    return max(fold, key=lambda name: summarize(fold[name])["corr_sharpe"])


def records(root: Path, setting: str, seed: int, fold_eras: int) -> dict[str, Path]:
    """One (setting, seed)'s two runs, recorded (reused when there)."""
    runs = {"validation": root / "members" / "default" / f"{setting}-s{seed}",
            "fold": root / "members" / f"fold{fold_eras}" / f"{setting}-s{seed}"}
    data = make_data(root, setting)
    record(runs["validation"], data, [f"seed={seed}"])
    record(runs["fold"], write_fold(data, root / f"data_fold{fold_eras}" / setting / "data", fold_eras), [f"seed={seed}"])
    return runs


def per_seed(root: Path, setting: str, seed: int, fold_eras: int) -> dict:
    """One (setting, seed): each rule on both records, the choice."""
    runs = records(root, setting, seed, fold_eras)
    corr = {side: rules(*load(out)) for side, out in runs.items()}
    chosen = choose(corr["fold"])
    train_s = {side: json.loads((out / "metrics.json").read_text())["timing"]["total_train_s"] for side, out in runs.items()}
    return {"chosen": chosen, "cost": train_s["fold"] / train_s["validation"],
            "fold": {n: summarize(c) for n, c in corr["fold"].items()},
            "validation": {n: summarize(c) for n, c in {**corr["validation"], "chosen on the training walk":
                                                        corr["validation"][chosen]}.items()}}


def per_setting(root: Path, setting: str, seeds: list[int], fold_eras: int, fold_share: float | None) -> dict:
    fold_eras = fold_size(make_data(root, setting), fold_eras, fold_share)
    found = [per_seed(root, setting, seed, fold_eras) for seed in seeds]
    keys = ("corr_mean", "corr_sharpe", "max_drawdown")
    mean = lambda side, name: {k: float(np.mean([f[side][name][k] for f in found])) for k in keys}
    return {"setting": setting, "seeds": len(seeds), "fold_eras": fold_eras, "chosen": [f["chosen"] for f in found],
            "cost": float(np.mean([f["cost"] for f in found])),
            "fold": {n: mean("fold", n) for n in found[0]["fold"]},
            "validation": {n: mean("validation", n) for n in found[0]["validation"]}}


def markdown(rows: list[dict]) -> str:
    cell = lambda s: f"{s['corr_mean']:.4f} / {s['corr_sharpe']:.2f}"
    head = " | ".join(f"{r['setting']} ({r['seeds']})" for r in rows)
    lines = ["Validation corr / Sharpe, mean over seeds (as predicted); in brackets the training walk's", "",
             f"| rule | {head} |", "| --- |" + " --- |" * len(rows)]
    for name in rows[0]["validation"]:
        lines.append(f"| {name} | " + " | ".join(
            cell(r["validation"][name]) + (f" ({cell(r['fold'][name])})" if name in r["fold"] else "") for r in rows) + " |")
    names = list(rows[0]["fold"])
    lines.append("| chosen (rule number per seed) | " + " | ".join(
        ", ".join(str(names.index(c) + 1) for c in r["chosen"]) for r in rows) + " |")
    lines.append("| training eras walked | " + " | ".join(str(r["fold_eras"]) for r in rows) + " |")
    lines.append("| training walk's time / the run's | " + " | ".join(f"{r['cost']:.2f}" for r in rows) + " |")
    lines += ["", "Rule numbers: " + "; ".join(f"{i + 1} {n}" for i, n in enumerate(names)) + "."]
    return "\n".join(lines)


def main() -> None:
    parser = seeds_parser(__doc__, "policy_before_validation")
    parser.add_argument("--fold-eras", type=int, default=48, help="training eras the walk before validation scores")
    parser.add_argument("--fold-share", type=float, help="instead: this share of each setting's training eras")
    parser.add_argument("--jobs", type=int, default=1, help="records made side by side")
    args = parser.parse_args()
    seeds, settings, root = [int(s) for s in args.seeds.split(",")], args.settings.split(","), Path(args.root)
    # Each record in a fresh process (spawned: JAX and polars are threaded): it runs `dynjax
    # walk-forward` in-process, with `predict_era` wrapped.
    with ProcessPoolExecutor(args.jobs, get_context("spawn"), max_tasks_per_child=1) as pool:
        sizes = {s: fold_size(make_data(root, s), args.fold_eras, args.fold_share) for s in settings}
        list(pool.map(records, *zip(*[(root, s, seed, sizes[s]) for seed in seeds for s in settings])))
    rows = [per_setting(Path(args.root), s, seeds, args.fold_eras, args.fold_share) for s in args.settings.split(",")]
    table = markdown(rows)
    print(table)
    write_results(args.name, {"fold_eras": args.fold_eras, "fold_share": args.fold_share, "seeds": seeds, "settings": rows}, table)


if __name__ == "__main__":
    main()
