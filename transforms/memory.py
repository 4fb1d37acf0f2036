"""Gives memory that the heavy stages freed back to the operating system (glibc's malloc_trim).

Why: spaCy, the tokenizer and PyTorch allocate and free many buffers of varying sizes from
several threads. glibc keeps freed memory inside its per-thread arenas, fragmented, and the
process's resident memory grew with the documents processed although the live Python objects
stayed flat (tracemalloc): over a 2,000-document run, the peak RSS per quarter of the run
climbed 1,431, 1,440, 1,621, 1,712 MB. `malloc_trim(0)` returns the free pages of every arena;
called every few seconds it gave 1,368, 1,286, 1,422, 1,408 MB (benchmarks/README.md, "Memory").
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
import time
from typing import Callable, Optional

# STANCEBEAM_MALLOC_TRIM_S=0 turns trimming off (the benchmark's baseline for the memory scan).
TRIM_INTERVAL_S = float(os.environ.get("STANCEBEAM_MALLOC_TRIM_S", "5"))


def find_malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's malloc_trim, or None where there is none (not Linux, or not glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to do
        return None


class MemoryTrimmer:
    """Calls `trim` at most once every `interval_s` seconds, whoever asks, from any thread."""

    def __init__(self, trim: Optional[Callable[[int], int]], interval_s: float = TRIM_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        self.trim = trim
        self.interval_s = interval_s
        self.clock = clock
        self._last = clock()
        self._lock = threading.Lock()
        self.calls = 0

    def maybe_trim(self) -> bool:
        if self.trim is None:
            return False
        with self._lock:
            now = self.clock()
            if now - self._last < self.interval_s:
                return False
            self._last = now
        self.trim(0)
        self.calls += 1
        return True


_process_trimmer = MemoryTrimmer(find_malloc_trim() if TRIM_INTERVAL_S > 0 else None)


def release_free_memory() -> bool:
    """After a batch of heavy work: returns freed memory to the OS, at most every few seconds."""
    return _process_trimmer.maybe_trim()
