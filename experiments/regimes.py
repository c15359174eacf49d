"""Each synthetic draw's hidden regimes around its validation eras: what no embargoed learner can see.

    python -m experiments.regimes --root /tmp/dj [--settings default,switching,noisy,wide,diffuse,switching@101]

The sparse settings switch their active features with a hidden regime; the diffuse one flips a
feature group's sign with one. A walk-forward learns of a switch only when its first era
resolves: with embargo 4, the target of era t is known from era t + 5 on, so each switch leaves
5 or more validation eras that a member trained on the latest 16 resolved eras predicts with
the old regime ("stale" eras: their regime is not the one most of those 16 eras were in). How
many such eras a validation period holds, and whether it opens with them, decides a draw's verdict
between a recency member and an all-history one more than any method does
(the research log). From each draw's ground truth (`truth/synth.json`).
"""

import json
from pathlib import Path

from experiments.record import make_data, settings_main

LAG = 5  # embargo 4 + 1: the first era whose prediction can use a target of era t is t + 5
MEMORY = 16  # the gated member's walk-forward memory (train.horizons)


def regimes(root: Path, setting: str) -> dict:
    """The regime string of the training, gap and validation eras, and the eras after a switch."""
    truth = json.loads((make_data(root, setting) / "truth" / "synth.json").read_text())
    cfg, regime_E = truth["config"], list(truth["regime_of_era"].values())
    n_train, n_gap, n_val = cfg["n_train_eras"], cfg["gap_eras"], cfg["n_val_eras"]
    val_start = n_train + n_gap
    switches = [e for e in range(1, len(regime_E)) if regime_E[e] != regime_E[e - 1]]
    # A validation era is stale when its regime is not the one most of the latest MEMORY resolved
    # eras were in: what a member on the latest eras (the gated one's 16) was mostly trained on.
    def recent(e):
        window = regime_E[max(e - LAG - MEMORY + 1, 0): e - LAG + 1]
        return max(set(window), key=window.count)
    stale = [e for e in range(val_start, val_start + n_val) if recent(e) != regime_E[e]]
    return {"setting": setting, "train": "".join(map(str, regime_E[:n_train])),
            "gap": "".join(map(str, regime_E[n_train:val_start])),
            "validation": "".join(map(str, regime_E[val_start:val_start + n_val])),
            "switches_in_validation": sum(val_start < e < val_start + n_val for e in switches),
            "stale_eras": len(stale), "stale_first_8": sum(e < val_start + 8 for e in stale), "n_val": n_val}


def markdown(rows: list[dict]) -> str:
    lines = ["| draw | last 24 training eras, gap | validation eras | switches | stale eras (of the first 8) |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['setting']} | `{r['train'][-24:]} {r['gap']}` | `{r['validation']}` | "
                     f"{r['switches_in_validation']} | {r['stale_eras']} of {r['n_val']} ({r['stale_first_8']}) |")
    return "\n".join(lines)


def main() -> None:
    settings_main(__doc__, "regimes", regimes, markdown)


if __name__ == "__main__":
    main()
