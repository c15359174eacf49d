"""Can the training eras say which gate threshold will pay? An offline probe, before validation.

    python -m experiments.gate_choice --root /tmp/dj [--settings default,switching,...,noisy@101]

The gated member at evidence z 3.5 (`experiments.skill` variant `gate35`) beat the default's z 5 on
some draws and lost on others; Hedge choosing between them online (`gates_both`) costs 1.5x the
training. The cheap alternative is a
choice made once, before validation, from the training eras alone. This probe scores each
candidate threshold by what its selection would have earned, walking forward era by era through
eras whose targets are known: at era t the gates' rule at initialisation (the mean over the
evidence horizons of asinh z, `dynjax.data.evidence`, against asinh of the threshold) keeps the
features whose evidence from eras <= t - 1 - embargo clears it, and the kept features' bin means
over the gated member's memory (its latest 16 resolved eras) predict era t: an additive bin-mean
model, the gated member's additive path without its training. No feature kept: a constant (the
gates shut; corr 0). The same walk over the validation eras says whether the proxy tracks the
threshold's worth where it was measured; beside both, the walk-forward's own verdict: the corr of
`gate35` minus the default's (same seeds; `results/skill_gate35.json` against
`results/skill.json` / `skill_redraw101.json`) and the Hedge weight `gates_both` gave z 3.5 against
z 5 (`results/skill_gates_both.json`).

Writes `experiments/results/gate_choice.{json,md}`; what it says is in the research log.
"""

import json
from pathlib import Path

import numpy as np

from experiments.record import RESULTS, make_data, settings_main

THRESHOLDS = (2.5, 3.5, 5.0, 7.0)
EMBARGO = 4  # the default main target's embargo
MEMORY = 16  # the gated member's walk-forward memory (train.horizons)
Z35, Z5 = THRESHOLDS.index(3.5), THRESHOLDS.index(5.0)  # gate35's threshold and the default's
EVIDENCE_ERAS = (4, 16, 64)  # model.evidence_eras' default: the horizons the gates read


def gate_evidence(stats: tuple[np.ndarray, ...], numbers_E: np.ndarray) -> np.ndarray:
    """What the gates' rule at initialisation compares with asinh(threshold), per era and feature: `[E, F]`."""
    from dynjax.data.evidence import timeline_evidence

    return timeline_evidence(stats, numbers_E, EMBARGO, EVIDENCE_ERAS).mean(axis=2)


def walk_scores(stats: tuple[np.ndarray, ...], numbers_E: np.ndarray, evidence_ExF: np.ndarray,
                x_rows: list[np.ndarray], y_rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per era and candidate threshold, the corr of the kept features' bin-mean prediction over the
    latest `MEMORY` resolved eras, `[E, K]`; beside it the dense proxy's, every feature's bin means
    over all resolved eras, `[E]` (eras without `MEMORY` resolved eras before them: NaN)."""
    from dynjax.data.eras import last_resolved_era

    sum_ExFxB, count_ExFxB, _ = stats
    cum_sum = np.concatenate([np.zeros_like(sum_ExFxB[:1]), np.cumsum(sum_ExFxB, axis=0)])
    cum_count = np.concatenate([np.zeros_like(count_ExFxB[:1]), np.cumsum(count_ExFxB, axis=0)])
    corr_ExK = np.full((len(numbers_E), len(THRESHOLDS)), np.nan)
    dense_E = np.full(len(numbers_E), np.nan)
    for e, number in enumerate(numbers_E):
        stop = int(np.searchsorted(numbers_E, last_resolved_era(int(number), EMBARGO), side="right"))
        if stop < MEMORY or len(y_rows[e]) < 2:
            continue
        mean_FxB = (cum_sum[stop] - cum_sum[stop - MEMORY]) / np.maximum(cum_count[stop] - cum_count[stop - MEMORY], 1.0)
        contrib_RxF = mean_FxB[np.arange(mean_FxB.shape[0])[None, :], x_rows[e]]
        y_R = y_rows[e] - y_rows[e].mean()
        for k, threshold in enumerate(THRESHOLDS):
            corr_ExK[e, k] = _corr(contrib_RxF[:, evidence_ExF[e] > np.arcsinh(threshold)].sum(axis=1), y_R)
        all_FxB = cum_sum[stop] / np.maximum(cum_count[stop], 1.0)
        dense_E[e] = _corr(all_FxB[np.arange(all_FxB.shape[0])[None, :], x_rows[e]].sum(axis=1), y_R)
    return corr_ExK, dense_E


def _corr(pred_R: np.ndarray, y_R: np.ndarray) -> float:
    """Pearson corr with a centred target; 0 for a constant prediction (every gate shut)."""
    pred_R = pred_R - pred_R.mean()
    scale = np.sqrt((pred_R @ pred_R) * (y_R @ y_R))
    return float(pred_R @ y_R / scale) if scale > 0 else 0.0


def kept_counts(evidence_ExF: np.ndarray) -> np.ndarray:
    """Features the rule keeps per era and candidate: `[E, K]`."""
    return np.stack([(evidence_ExF > np.arcsinh(t)).sum(axis=1) for t in THRESHOLDS], axis=1)


def measured(setting: str) -> dict:
    """The walk-forward's verdict on the draw: gate35 - default corr per seed, and Hedge's z 3.5 share."""
    def runs(name, variant):
        path = RESULTS / f"{name}.json"
        rows = json.loads(path.read_text())["runs"] if path.is_file() else []
        return {r["seed"]: r for r in rows if r["setting"] == setting and r["variant"] == variant}

    gate35 = runs("skill_gate35", "gate35")
    default = {**runs("skill", "default"), **runs("skill_redraw101", "default")}
    deltas = [gate35[s]["corr"] - default[s]["corr"] for s in sorted(gate35) if s in default]
    both = runs("skill_gates_both", "gates_both")
    shares = [r["kind_weights"]["h16 t3.5"] / (r["kind_weights"]["h16 t3.5"] + r["kind_weights"]["h16 t5"])
              for r in both.values() if r.get("kind_weights")]
    return {"gate35_minus_default": deltas, "hedge_share_z35": float(np.mean(shares)) if shares else None}


def gate_choice(root: Path, setting: str) -> dict:
    """The probe on one draw: per candidate, mean corr / Sharpe / kept over training and validation eras."""
    from dynjax.data import load_numerai
    from dynjax.data.evidence import bin_stats

    data = load_numerai(make_data(root, setting), live=False)
    splits = [data.train, data.validation]
    stats = tuple(np.concatenate(parts) for parts in zip(*(bin_stats(s) for s in splits)))
    numbers_E = np.concatenate([s.index.numbers for s in splits])
    x_rows, y_rows = [], []
    for s in splits:
        for e in range(s.index.n_eras):
            rows = s.index.labeled_rows(e)
            x_rows.append(s.x_NxF[rows].astype(np.int64))
            y_rows.append(s.y_NxT[rows, 0].astype(np.float64))
    evidence_ExF = gate_evidence(stats, numbers_E)
    (corr_ExK, dense_E), kept_ExK = walk_scores(stats, numbers_E, evidence_ExF, x_rows, y_rows), kept_counts(evidence_ExF)
    recent_E = corr_ExK[:, Z5]
    n_train = data.train.index.n_eras
    out = {"setting": setting, "thresholds": list(THRESHOLDS), **measured(setting)}
    for part, eras in (("train", slice(0, n_train)), ("validation", slice(n_train, None))):
        c_ExK = corr_ExK[eras]
        scored = ~np.isnan(c_ExK[:, 0])
        c_ExK, k_ExK = c_ExK[scored], kept_ExK[eras][scored]
        out[part] = {"eras": int(scored.sum()), "corr": c_ExK.mean(axis=0).tolist(),
                     "sharpe": (c_ExK.mean(axis=0) / c_ExK.std(axis=0)).tolist(), "kept": k_ExK.mean(axis=0).tolist()}
        out[part]["pick"] = THRESHOLDS[int(np.argmax(c_ExK.mean(axis=0)))]
        out[part]["z35_minus_z5"] = float(c_ExK[:, Z35].mean() - c_ExK[:, Z5].mean())
    # The default's two memories in proxy: z 5 over the latest 16 eras against every feature over all history.
    val = np.arange(n_train, len(numbers_E))
    parts = {"train": np.arange(n_train), "validation": val, "validation_first5": val[:5]}
    out["recency"] = {part: _recency(recent_E, dense_E, eras) for part, eras in parts.items()}
    return out


def _recency(recent_E: np.ndarray, dense_E: np.ndarray, eras: np.ndarray) -> dict:
    """Recent against dense proxy over `eras` (those scored): both means, the gain and how often recent wins."""
    eras = eras[~np.isnan(dense_E[eras])]
    gain_E = recent_E[eras] - dense_E[eras]
    return {"eras": len(eras), "dense": float(dense_E[eras].mean()), "recent": float(recent_E[eras].mean()),
            "gain": float(gain_E.mean()), "wins": float((gain_E > 0).mean())}


def markdown(rows: list[dict]) -> str:
    head = " | ".join(f"z {t:g}" for t in THRESHOLDS)
    lines = [f"| draw | eras | {head} | pick | z 3.5 - z 5 | walk-forward: gate35 - default (per seed) | Hedge's z 3.5 share |",
             "| --- | --- | " + " | ".join("---" for _ in THRESHOLDS) + " | --- | --- | --- | --- |"]
    for r in rows:
        deltas = ", ".join(f"{d:+.4f}" for d in r["gate35_minus_default"]) or "–"
        share = f"{r['hedge_share_z35']:.2f}" if r["hedge_share_z35"] is not None else "–"
        for part in ("train", "validation"):
            p = r[part]
            cells = " | ".join(f"{c:.4f} / {s:.2f} / {k:.1f}" for c, s, k in zip(p["corr"], p["sharpe"], p["kept"]))
            tail = f"{deltas} | {share}" if part == "train" else " | "
            lines.append(f"| {r['setting']} | {part} {p['eras']} | {cells} | z {p['pick']:g} | {p['z35_minus_z5']:+.4f} | {tail} |")
    lines += ["", "Cells: the bin-mean proxy's mean corr / Sharpe / features kept per era.", "",
              ("The default's two memories in proxy: z 5 over the latest 16 eras (recent) against every feature over all "
              "resolved eras (dense); recent - dense, mean corr (share of eras recent wins):"), "",
              "| draw | training eras | validation eras | first 5 validation eras |", "| --- | --- | --- | --- |"]
    for r in rows:
        cells = " | ".join(f"{r['recency'][p]['gain']:+.4f} ({r['recency'][p]['wins']:.2f})"
                           for p in ("train", "validation", "validation_first5"))
        lines.append(f"| {r['setting']} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    settings_main(__doc__, "gate_choice", gate_choice, markdown, thresholds=list(THRESHOLDS), embargo=EMBARGO,
                  memory=MEMORY, evidence_eras=list(EVIDENCE_ERAS))


if __name__ == "__main__":
    main()
