"""Training: train and run state, the jitted, vmapped era-window step, ensembles, replay, the walk-forward."""

from dynjax.train.state import (
           RunState,
           TrainState,
           create_train_state,
           initial_run_state,
           make_optimizer,
)
from dynjax.train.step import make_predict, make_train_step

__all__ = ["RunState", "TrainState", "create_train_state", "initial_run_state", "make_optimizer", "make_predict",
           "make_train_step"]
