"""The weekly round at the main job's size: `dynjax update` against a fresh walk-forward.

    python -m benchmarks.weekly_update [--new-eras 4] [--root /tmp/dynjax_bench_weekly]

On the embedded default data set (160 training and 48 validation eras, 120 features), an
earlier round (`dynjax.data.rounds.earlier_round`: the first 48 - k validation eras, the next
one as the live era "X") is walked forward; `dynjax update` then continues that run on the
full directory, and a fresh `dynjax walk-forward` runs over the full directory too. Each
command runs in its own process, as a user runs it. Reports the wall time of each, whether
the update's predictions, selection, frozen and ridge predictions and submission equal the
fresh run's (they must), and the wall time of `dynjax predict` on the live file.
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from benchmarks.common import add_check, gate, machine, synthetic_data, table, write_results


def timed(*args: str) -> float:
    """Wall seconds of one `dynjax` command in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dynjax.cli", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def same(a: Path, b: Path, name: str) -> bool:
    if name.endswith(".csv"):
        return (a / name).read_text() == (b / name).read_text()
    return pl.read_parquet(a / name).sort(pl.all()).equals(pl.read_parquet(b / name).sort(pl.all()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-eras", type=int, default=4, help="validation eras the newer round adds")
    parser.add_argument("--root", default="/tmp/dynjax_bench_weekly")
    add_check(parser)
    args = parser.parse_args()
    from dynjax.config import RunConfig
    from dynjax.data.rounds import earlier_round

    root = Path(args.root)
    full = synthetic_data(root, RunConfig().synth)
    n_val = pl.read_parquet(full / "validation.parquet", columns=["era"])["era"].n_unique()
    runs = root / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    earlier = earlier_round(full, runs / "earlier", n_val - args.new_eras)
    row = {"validation_eras": n_val, "new_eras": args.new_eras}
    row["earlier_walk_forward_s"] = timed("walk-forward", "--data", str(earlier), "--out", str(runs / "weekly"))
    print(f"walk-forward over {n_val - args.new_eras} eras: {row['earlier_walk_forward_s']:.0f}s", flush=True)
    row["update_s"] = timed("update", "--run", str(runs / "weekly"), "--data", str(full))
    print(f"update by {args.new_eras} eras: {row['update_s']:.0f}s", flush=True)
    row["fresh_walk_forward_s"] = timed("walk-forward", "--data", str(full), "--out", str(runs / "fresh"))
    print(f"fresh walk-forward over {n_val} eras: {row['fresh_walk_forward_s']:.0f}s", flush=True)
    row["predict_s"] = timed("predict", "--run", str(runs / "weekly"), "--data", str(full / "live.parquet"),
                             "--out", str(runs / "submission.csv"))
    files = ("predictions.parquet", "selection.parquet", "predictions_frozen.parquet", "predictions_ridge.parquet",
             "submission.csv")
    row["identical"] = all(same(runs / "weekly", runs / "fresh", f) for f in files)
    row["predict_reproduces_submission"] = (runs / "submission.csv").read_text() == (runs / "weekly" / "submission.csv").read_text()
    md = table([row], [("validation eras", "validation_eras", "d"), ("new eras", "new_eras", "d"),
                       ("walk-forward, earlier round s", "earlier_walk_forward_s", ".0f"), ("update s", "update_s", ".0f"),
                       ("fresh walk-forward s", "fresh_walk_forward_s", ".0f"), ("predict s", "predict_s", ".1f"),
                       ("update = fresh", "identical", ""), ("predict = submission", "predict_reproduces_submission", "")])
    print(md)
    write_results("weekly_update", {"machine": machine(), "rows": [row]}, md)
    return gate(args.check, {"update = fresh run": row["identical"], "predict = submission": row["predict_reproduces_submission"],
                             "update faster than a fresh run": row["update_s"] < row["fresh_walk_forward_s"]}, "weekly_update")


if __name__ == "__main__":
    sys.exit(main())
