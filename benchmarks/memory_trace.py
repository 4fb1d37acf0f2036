"""Live Python memory (tracemalloc) against resident memory (RSS) during one pipeline run.

    .venv/bin/python -m benchmarks.memory_trace --every 5 -- run --input CORPUS --output OUT \
        [--backend onnx-int8] [--direct_num_workers=1]

Runs `stancebeam` in this process and prints, every `--every` seconds, the seconds since the
start, RSS in MB and the MB of Python allocations tracemalloc traces, then a JSON line with all
samples. When RSS grows but the traced memory does not, the growth is native memory (allocator
arenas, libraries), not Python objects that the pipeline keeps: how the malloc trimming in
`transforms/memory.py` was found. Set STANCEBEAM_MALLOC_TRIM_S=0 to see the run without it.
tracemalloc slows Python down: use it for this diagnosis, not for timings.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import tracemalloc

import psutil


def sample_until(stop: threading.Event, every: float, samples: list) -> None:
    process, started = psutil.Process(), time.perf_counter()
    while not stop.is_set():
        traced, _ = tracemalloc.get_traced_memory()
        samples.append({"s": round(time.perf_counter() - started, 1),
                        "rss_mb": process.memory_info().rss >> 20, "traced_mb": traced >> 20})
        print("memory_trace", json.dumps(samples[-1]), flush=True)
        stop.wait(every)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.memory_trace", description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("stancebeam_args", nargs=argparse.REMAINDER, help="-- then the stancebeam command")
    args = parser.parse_args(argv)
    command = [a for a in args.stancebeam_args if a != "--"] or parser.error("give a stancebeam command")
    tracemalloc.start(1)
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=sample_until, args=(stop, args.every, samples), daemon=True)
    sampler.start()
    from stancebeam.pipeline.cli import main as stancebeam

    rc = stancebeam(command)
    stop.set()
    sampler.join()
    print(json.dumps({"returncode": rc, "samples": samples}))
    return rc


if __name__ == "__main__":
    sys.exit(main())
