"""Covers dynjax.train.interrupt: a signal inside `stop_requests` is recorded, not acted on."""

import os
import signal

from dynjax.train.interrupt import stop_requests


def test_a_signal_is_recorded_and_the_handlers_restored():
    before = signal.getsignal(signal.SIGTERM)
    with stop_requests() as stop:
        assert stop.signal is None
        os.kill(os.getpid(), signal.SIGTERM)  # would end the process without the handler
        assert stop.signal == "SIGTERM" and stop.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) == before  # a second one acts at once
    assert signal.getsignal(signal.SIGTERM) == before


def test_disabled_requests_leave_the_handlers_alone():
    before = signal.getsignal(signal.SIGINT)
    with stop_requests(enabled=False) as stop:
        assert signal.getsignal(signal.SIGINT) == before and stop.signal is None
