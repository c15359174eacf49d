"""The yardsticks on every synthetic setting: LightGBM (static and walk-forward), ridge, the oracle.

    python -m experiments.yardsticks [--settings default,switching,wide,noisy,diffuse] [--root /tmp/dynjax_ablation]

Question: what must dynjax's default beat on each setting? LightGBM with Numerai's example
parameters fitted once on the training eras; the same refit on every resolved era every 12
eras (`dynjax.eval.gbdt`); ridge refit on all resolved eras before every era (the report's
baseline, `dynjax.eval.baseline`); and the noise-free signal (the oracle). Scored per
validation era with numerai-tools, with max feature exposure and feature-neutral corr.
Deterministic (LightGBM seed 0; the data are fixed per setting), so one run per setting;
results are cached per setting in `ROOT/yardsticks/SETTING.json`.

Writes `experiments/results/yardsticks.{json,md}`; what they say is in the research log (`docs/research-log.md`).
"""

import json
import time
from pathlib import Path

import numpy as np

from dynjax.eval.report import score_predictions as score
from experiments.record import make_data, settings_main


def yardsticks(root: Path, setting: str, refit: bool = True) -> dict:
    """Every yardstick's scores and wall seconds on one setting (cached; the refit LightGBM, 943 s on
    diffuse on 2 cores, only with `refit`)."""
    from dynjax.data import impute, load_numerai
    from dynjax.data.timeline import make_timeline
    from dynjax.eval.baseline import ridge_walk_forward
    from dynjax.eval.gbdt import lightgbm_static, lightgbm_walk_forward
    from dynjax.eval.truth import oracle_scores

    cache = root / "yardsticks" / f"{setting}.json"
    out = json.loads(cache.read_text()) if cache.is_file() else {"setting": setting}
    fits = {"lightgbm": lambda: lightgbm_static(data), "lightgbm_wf": lambda: lightgbm_walk_forward(data, 4)}
    todo = [n for n in ("lightgbm", "lightgbm_wf")[: 2 if refit else 1] if n not in out]
    if not todo and "ridge" in out:
        return out
    data_dir = make_data(root, setting)
    data = impute(load_numerai(data_dir, "all", ("target",)), "bin")
    for name in todo:
        start = time.perf_counter()
        preds, times = fits[name]()
        out[name] = {**score(data, preds), **times, "wall_s": time.perf_counter() - start}
        print(f"{setting} {name}: corr {out[name]['corr_mean']:.4f} sharpe {out[name]['corr_sharpe']:.2f}", flush=True)
    if "ridge" not in out:
        timeline = make_timeline(data.train, data.validation)
        start = time.perf_counter()
        ridge = ridge_walk_forward(timeline, np.arange(data.train.index.n_eras, timeline.n_eras), 4)
        out["ridge"] = {**score(data, ridge), "wall_s": time.perf_counter() - start}
        out["oracle"] = oracle_scores(data_dir)[1]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out, indent=1) + "\n")
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| setting | model | corr | Sharpe | max dd | max exposure | FNC | wall s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        for name in (n for n in ("lightgbm", "lightgbm_wf", "ridge", "oracle") if n in r):
            m = r[name]
            exp = f"{m['max_exposure_mean']:.3f}" if "max_exposure_mean" in m else "-"
            fnc = f"{m['fnc_mean']:.4f}" if "fnc_mean" in m else "-"
            wall = f"{m['wall_s']:.0f}" if "wall_s" in m else "-"
            lines.append(f"| {r['setting']} | {name} | {m['corr_mean']:.4f} | {m['corr_sharpe']:.2f} | "
                         f"{m['max_drawdown']:.3f} | {exp} | {fnc} | {wall} |")
    return "\n".join(lines)


def main() -> None:
    settings_main(__doc__, "yardsticks", yardsticks, markdown)


if __name__ == "__main__":
    main()
