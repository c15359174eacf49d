"""Clean stops on SIGINT/SIGTERM: preemptible GPU/TPU machines and Ctrl-C end a run between eras.

Inside `stop_requests()` the first SIGINT or SIGTERM only records itself; the walk-forward
finishes the era it is on, checkpoints, and raises `Interrupted`, so `--resume` continues
with identical results. A second signal acts as usual (KeyboardInterrupt, or termination).
"""

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(RuntimeError):
    """A run stopped by a signal after its latest checkpoint; `signum` is the signal's number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


@dataclass
class StopRequest:
    signal: str | None = None  # the name of the signal received, once one is
    signum: int = 0


@contextmanager
def stop_requests(enabled: bool = True) -> Iterator[StopRequest]:
    """A `StopRequest` that SIGINT/SIGTERM set instead of stopping the process at once.

    Handlers can only be installed from the main thread; elsewhere (or with `enabled=False`)
    signals keep their usual effect.
    """
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}

    def on_signal(signum, frame) -> None:
        request.signal, request.signum = signal.Signals(signum).name, signum
        for sig, handler in previous.items():  # a second signal acts at once
            signal.signal(sig, handler)
        print(f"\n{request.signal}: finishing the current era, then checkpointing and stopping "
              "(send it again to stop at once)", file=sys.stderr, flush=True)

    for sig in _SIGNALS:
        signal.signal(sig, on_signal)
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
