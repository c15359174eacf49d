"""Run by test_sharding in a subprocess with 8 CPU devices: two train steps on several meshes.

Prints a JSON line with, per mesh, the largest differences of the loss and the updated params
from the same steps on one device, how far the params moved, and how the embedding table is
laid out.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from dynjax.config import LossConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from dynjax.data.context import EraContext
from dynjax.data.windows import Batch
from dynjax.train.members import plan_members
from dynjax.train.run import compiled
from dynjax.train.sharding import make_layout
from dynjax.train.state import initial_run_state
from dynjax.train.step import BatchSpec

MESHES = ("data=8", "data=2,members=2,model=2")  # every axis; model=2 splits the feature tables


def batch(w: int, r: int, f: int, cfg: ModelConfig) -> Batch:
    rng = np.random.default_rng(0)
    evidence = rng.normal(size=(w, f, len(cfg.evidence_eras))).astype(np.float32)
    return Batch(x_WxRxF=rng.integers(0, 6, (w, r, f)).astype(np.int8), y_WxR=rng.random((w, r)).astype(np.float32),
                 mask_WxR=rng.random((w, r)) > 0.1, context=EraContext(evidence))


def step_once(mesh: str, w: int, r: int, f: int = 16, members: int = 2):
    # No warm-up: the first steps move the params by ~lr, far above the tolerance compared at.
    model_cfg, loss_cfg, optim_cfg = ModelConfig(d_model=8, n_heads=2), LossConfig(sparsity="l0"), OptimConfig(warmup_steps=0)
    spec = BatchSpec(windows=(w,), rows=r)
    fns = compiled(model_cfg, f, loss_cfg, optim_cfg, members, mesh=mesh, specs=(spec,))
    model, optimizer, step, layout = fns.model, fns.optimizer, fns.steps[spec], fns.layout
    cfg = RunConfig(model=model_cfg, loss=loss_cfg, optim=optim_cfg, train=TrainConfig(ensemble=members))
    state = initial_run_state(plan_members(cfg), model, optimizer, jax.random.key(1))
    init = jax.tree.map(np.asarray, state.train.params)
    train = layout.put(state.train, layout.train_shardings(state.train))
    mask_F = jnp.ones(f, bool)
    train, metrics = step(train, batch(w, r, f, model_cfg), mask_F, jax.random.key(2), None)
    train, metrics = step(train, batch(w, r, f, model_cfg), mask_F, jax.random.key(3), None)
    emb = train.params["params"]["embed"]["emb"]
    return float(metrics["loss"]), jax.tree.map(np.asarray, train.params), init, str(emb.sharding.spec)


def max_diff(a, b) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def check_steps() -> dict:
    out = {"devices": jax.device_count()}
    # Eras split; rows split (6 eras do not divide over 8 devices; as in the walk-forward test).
    for w, r, meshes in ((8, 16, MESHES), (6, 16, MESHES[:1])):
        loss_1, params_1, init, _ = step_once("data=1", w, r)
        out[f"moved W={w}"] = max_diff(params_1, init)
        for mesh in meshes:
            loss, params, _, emb_spec = step_once(mesh, w, r)
            out[f"{mesh} W={w}"] = {"loss": abs(loss - loss_1), "params": max_diff(params, params_1), "emb": emb_spec}
    return out


def check_axes() -> dict:
    """Which axis the data axis splits, per set of window sizes x rows (1 eras, 2 rows)."""
    layout, out = make_layout("", 16), {}
    for windows, r in (((8,), 16), ((6,), 16), ((8, 6), 16), ((6,), 12)):
        try:
            out[",".join(f"{w}x{r}" for w in windows)] = layout.window_axis(windows, r)
        except ValueError:
            out[",".join(f"{w}x{r}" for w in windows)] = "refused"
    return out


def main() -> int:
    print(json.dumps(check_axes() if "--axes" in sys.argv else check_steps()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
