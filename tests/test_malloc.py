"""Covers dynjax.malloc: importing dynjax keeps large blocks freed on a worker thread in the heap, so
the next allocation of the same size faults no page in again (as XLA:CPU's per-step buffers, one
block of 652 MB a step at Numerai's 2,748 features)."""

import os
import subprocess
import sys

import pytest

from dynjax.malloc import tune_malloc

PROBE = """
import resource, threading
import dynjax
import numpy as np

def work():
    for _ in range(20):
        for n in (25_000_000, 75_000_000):  # 100 MB and 300 MB (beyond a secondary arena's heaps, and
            a = np.ones(n, np.float32)     # beyond 256 MB), each allocated, written and freed on a worker thread
            del a

before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE], env=os.environ | env, capture_output=True, text=True,
                          timeout=120, check=True)
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")
def test_importing_dynjax_stops_the_per_step_page_faults():
    tuned, lean, default = _faults(), _faults(DYNJAX_MALLOC="lean"), _faults(DYNJAX_MALLOC="default")
    assert tuned * 5 < lean and tuned * 5 < default, (tuned, lean, default)  # lean returns the 300 MB blocks
    assert tune_malloc()  # glibc accepts every setting


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")
def test_each_mode_is_accepted_and_an_unknown_one_is_named(monkeypatch):
    for mode, applied in (("lean", True), ("default", False), ("", True)):
        monkeypatch.setenv("DYNJAX_MALLOC", mode)
        assert tune_malloc() is applied, mode
    monkeypatch.setenv("DYNJAX_MALLOC", "fast")
    with pytest.raises(ValueError, match="DYNJAX_MALLOC='fast': unset .*'lean'"):
        tune_malloc()
