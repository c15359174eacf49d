"""How strong a prior does an additive model of the bins want, on every synthetic setting?

    python -m experiments.additive_prior [--settings default,switching,noisy,wide,diffuse] [--root /tmp/dynjax_ablation]

Question: dynjax's static learner is a GAM over (feature, bin) terms fitted by SGD. What does
the same GAM reach when fitted exactly, and under which prior? Per setting, a ridge over the
one-hot bins (six a feature, the missing bin included) fitted once on every training era,
`min |y - 0.5 - Xw|^2 + l2 |w|^2 + smooth |Dw|^2` with D the differences between a feature's
neighbouring value bins, is solved for each (l2, smooth) of a small grid and scored per
validation era with numerai-tools. The same (l2, smooth) in the same units (a ridge's alpha
over the training rows) is the default's `loss.additive_l2` / `loss.additive_smooth`: this is
where their values come from, and the grid shows how much the choice matters on each setting.
A diagnostic, not a model: nothing of it is blended into dynjax.

Writes `experiments/results/additive_prior.{json,md}`; what they say is in the research log (`docs/research-log.md`).
"""

import itertools
from pathlib import Path

import numpy as np
import polars as pl

from dynjax.data.bins import MISSING, N_BINS
from dynjax.eval.report import score_predictions
from experiments.record import make_data, settings_main

L2 = (1e2, 1e4, 8e4)
SMOOTH = (0.0, 1e4, 8e4)
CHUNK = 20_000


def one_hot(x_NxF: np.ndarray) -> np.ndarray:
    """[N, F * N_BINS] float32 indicators of each feature's bin."""
    n, f = x_NxF.shape
    out = np.zeros((n, f * N_BINS), np.float32)
    out[np.arange(n)[:, None], np.arange(f) * N_BINS + x_NxF] = 1.0
    return out


def difference_gram(n_features: int) -> np.ndarray:
    """D^T D of the first differences between neighbouring value bins (the missing bin has none)."""
    gram = np.zeros((n_features * N_BINS,) * 2)
    for f, b in itertools.product(range(n_features), range(MISSING - 1)):
        i = f * N_BINS + b
        gram[np.ix_([i, i + 1], [i, i + 1])] += [[1.0, -1.0], [-1.0, 1.0]]
    return gram


def normal_equations(x_NxF: np.ndarray, y_N: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """X^T X and X^T (y - 0.5) of the one-hot bins over the labelled rows, in chunks; and their count."""
    k = x_NxF.shape[1] * N_BINS
    xtx, xty, n = np.zeros((k, k)), np.zeros(k), 0
    for s in range(0, len(x_NxF), CHUNK):
        keep = ~np.isnan(y_N[s:s + CHUNK])
        x = one_hot(x_NxF[s:s + CHUNK][keep])
        xtx += x.T @ x
        xty += x.T @ (y_N[s:s + CHUNK][keep] - 0.5)
        n += int(keep.sum())
    return xtx, xty, n


def setting_grid(root: Path, setting: str) -> dict:
    """Validation scores of the exact GAM for every (l2, smooth) of the grid on one setting."""
    from dynjax.data import impute, load_numerai

    data = impute(load_numerai(make_data(root, setting), "all", ("target",)), "bin")
    train, val = data.train, data.validation
    xtx, xty, n_rows = normal_equations(train.x_NxF, train.y_NxT[:, 0])
    gram = difference_gram(train.x_NxF.shape[1])
    x_val = val.x_NxF
    rows = []
    for l2, smooth in itertools.product(L2, SMOOTH):
        w = np.linalg.solve(xtx + l2 * np.eye(len(xtx)) + smooth * gram, xty)
        pred = np.concatenate([one_hot(x_val[s:s + CHUNK]) @ w for s in range(0, len(x_val), CHUNK)])
        m = score_predictions(data, pl.DataFrame({"id": val.ids, "prediction": pred}))
        rows.append({"l2": l2, "smooth": smooth, **m})
        print(f"{setting} l2 {l2:g} smooth {smooth:g}: corr {m['corr_mean']:.4f} sharpe {m['corr_sharpe']:.2f}", flush=True)
    return {"setting": setting, "train_rows": n_rows, "grid": rows}


def markdown(results: list[dict]) -> str:
    head = "| l2 \\ smooth | " + " | ".join(f"{s:g}" for s in SMOOTH) + " |"
    lines = []
    for r in results:
        lines += [f"**{r['setting']}** ({r['train_rows']:,} training rows; corr / Sharpe)", "", head,
                  "| --- |" + " --- |" * len(SMOOTH)]
        for l2 in L2:
            cells = [next(g for g in r["grid"] if g["l2"] == l2 and g["smooth"] == s) for s in SMOOTH]
            lines.append(f"| {l2:g} | " + " | ".join(f"{c['corr_mean']:.4f} / {c['corr_sharpe']:.2f}" for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    settings_main(__doc__, "additive_prior", setting_grid, markdown, l2=L2, smooth=SMOOTH)


if __name__ == "__main__":
    main()
