"""Test-only fault injection: SIGKILL the process at a named point of a run (tests/test_faults.py)."""
from __future__ import annotations

import collections
import os
import signal

FAULT_ENV = "STANCEBEAM_FAULT"
POINTS = ("analysis", "commit", "rename")  # see where fault_point() is called

_hits: collections.Counter = collections.Counter()


def fault_point(name: str) -> None:
    """Kills this process with SIGKILL when STANCEBEAM_FAULT is `name` or `name:n` (the n-th time here).

    A no-op unless the variable is set, which only tests do: it makes a crash at an exact point
    of a run reproducible, to check that a rerun repairs the output.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
