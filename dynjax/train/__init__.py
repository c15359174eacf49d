"""Training: the jitted, vmapped era-window step and prediction."""

from dynjax.train.state import TrainState, create_train_state, make_optimizer
from dynjax.train.step import make_predict, make_train_step, window_batch

__all__ = ["TrainState", "create_train_state", "make_optimizer", "make_predict", "make_train_step", "window_batch"]
