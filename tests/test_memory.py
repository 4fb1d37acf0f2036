"""Returning freed memory to the OS: throttled, safe from any thread, available on glibc."""
import sys

import pytest

from stancebeam.transforms.memory import MemoryTrimmer, find_malloc_trim, release_free_memory


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_trims_at_most_once_per_interval():
    clock, calls = Clock(), []
    trimmer = MemoryTrimmer(lambda pad: calls.append(pad) or 1, interval_s=5.0, clock=clock)
    assert not trimmer.maybe_trim()  # the interval starts when the trimmer is made
    clock.now = 5.0
    assert trimmer.maybe_trim() and not trimmer.maybe_trim()
    clock.now = 9.9
    assert not trimmer.maybe_trim()
    clock.now = 10.0
    assert trimmer.maybe_trim()
    assert calls == [0, 0] and trimmer.calls == 2


def test_without_malloc_trim_it_does_nothing():
    assert not MemoryTrimmer(None, interval_s=0.0).maybe_trim()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_malloc_trim_is_found_and_callable():
    trim = find_malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)
    release_free_memory()  # the process-wide one, as the transforms call it
