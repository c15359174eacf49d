"""Where a run's wall time goes: `timed` blocks add their seconds to the loop's own `timings`."""

import time
from contextlib import contextmanager

import jax

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_open: list[dict] = []  # the timings of the `timed(..., compiles=...)` blocks now running
_listening = False


def new_timings() -> dict[str, float]:
    """The figures a walk-forward reports: compilation inside training, training, prediction, checkpoints."""
    return {"compile_s": 0.0, "train_s": 0.0, "predict_s": 0.0, "checkpoint_s": 0.0}


@contextmanager
def timed(timings: dict, key: str, compiles: str | None = None):
    """Adds the wall time of a `with` block to `timings[key]`, and XLA's backend compile seconds
    within it to `timings[compiles]` (when given)."""
    global _listening
    if compiles is not None and not _listening:
        jax.monitoring.register_event_duration_secs_listener(_on_event)
        _listening = True
    entry = {"timings": timings, "key": compiles}
    if compiles is not None:
        _open.append(entry)
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] += time.perf_counter() - start
        if compiles is not None:
            _open.remove(entry)


def _on_event(event: str, duration: float, **_) -> None:
    if event == COMPILE_EVENT:
        for entry in _open:
            entry["timings"][entry["key"]] += duration
