"""Does per-era feature neutralisation pay? The report's neutralised view against the raw predictions.

    python -m experiments.neutral_view --root /tmp/dj [--settings default,switching,...] [--variant default]

Every walk-forward's report also scores its predictions neutralised per era against every
feature it reads (numerai-tools' `neutralize`, proportion `eval.report_neutralize`, 0.5 by
default; nothing is submitted neutralised unless `eval.neutralize` says so). This reads the
finished runs of one `experiments.skill` variant (no run is started) and sets, per setting, the
neutralised corr, Sharpe and max feature exposure beside the raw ones, mean over the seeds found.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from experiments.record import SETTINGS, setting_order, write_results

FIGURES = (("corr", "corr_mean"), ("sharpe", "corr_sharpe"), ("exposure", "max_exposure_mean"))


def view(root: Path, setting: str, variant: str) -> dict | None:
    """Raw and neutralised figures of the variant's finished runs on `setting`, mean over seeds."""
    runs = [json.loads(p.read_text()) for p in sorted((root / "runs" / setting).glob(f"{variant}-s*/metrics.json"))]
    runs = [m for m in runs if "neutral" in m]
    if not runs:
        return None
    raw = {k: float(np.mean([m["dynjax"][key] for m in runs])) for k, key in FIGURES}
    neutral = {k: float(np.mean([m["neutral"][key] for m in runs])) for k, key in FIGURES}
    return {"setting": setting, "seeds": len(runs), "proportion": runs[0]["neutral"]["proportion"],
            "raw": raw, "neutral": neutral}


def markdown(rows: list[dict], variant: str) -> str:
    lines = [f"`{variant}`, raw -> neutralised (proportion {rows[0]['proportion']})", "",
             "| setting | seeds | corr | Sharpe | max exposure |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = [f"{r['raw'][k]:{f}} -> {r['neutral'][k]:{f}}" for k, f in (("corr", ".4f"), ("sharpe", ".2f"), ("exposure", ".3f"))]
        lines.append(f"| {r['setting']} | {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/tmp/dynjax_ablation")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--variant", default="default")
    parser.add_argument("--name", default="neutral_view")
    args = parser.parse_args()
    settings = sorted(args.settings.split(","), key=setting_order)
    rows = [r for s in settings if (r := view(Path(args.root), s, args.variant))]
    if not rows:
        raise SystemExit(f"no finished runs of {args.variant!r} under {args.root}/runs")
    table = markdown(rows, args.variant)
    print(table)
    write_results(args.name, {"variant": args.variant, "settings": rows}, table)


if __name__ == "__main__":
    main()
