"""Training: train and run state, the jitted, vmapped era-window step, the members and Hedge, the walk-forward."""

from dynjax.train.state import RunState, TrainState, initial_run_state, make_optimizer
from dynjax.train.step import BatchSpec, make_predict, make_step

__all__ = ["BatchSpec", "RunState", "TrainState", "initial_run_state", "make_optimizer", "make_predict", "make_step"]
