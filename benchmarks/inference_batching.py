"""How the size of RunInference's batches costs the classifier: padding and forward time.

The pipeline hands RunInference whole documents, so a batch is the mentions of a run of
consecutive documents; `TargetClassifier.predict_encoded` sorts one batch by token length and
pads per sub-batch. The fewer mentions a batch holds, the wider the length range inside each
sub-batch and the more padding the model computes. This script measures, in one process on the
same encoded inputs, 1 thread, side by side:

- `all`: every mention of the corpus in one call (what the throughput limit does);
- `<n>`: consecutive documents grouped until they hold at least n mentions, one call per group
  (the pipeline with `model.max_batch_size` of about 2n: its batches hold n to 2n mentions).

- `<n>+trim`: the largest n with the pipeline's malloc trimming after each call (at most every
  5 s, `transforms/memory.py`), to see what returning freed memory to the OS costs.

For each: padded tokens over real tokens, forward seconds, and the forward time over `all`'s.
Usage: .venv/bin/python -m benchmarks.inference_batching --docs 200 --sizes 128,256,1024,2048
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import (DEFAULT_NEWS, ROOT, build_corpus, measure_spacy, one_thread_here, quiet_libraries,
                                read_corpus, source_documents, write_corpus)


def group_by_mentions(per_document: list[list], at_least: int) -> list[list]:
    """Consecutive documents' encoded mentions, grouped until a group holds `at_least` of them."""
    groups, current = [], []
    for encoded in per_document:
        current.extend(encoded)
        if len(current) >= at_least:
            groups.append(current)
            current = []
    return groups + ([current] if current else [])


def padded_tokens(groups: list[list], batch_size: int, max_tokens: int) -> int:
    from stancebeam.classifier.encoding import length_batches

    total = 0
    for group in groups:
        lengths = [len(e) for e in group]
        total += sum(len(b) * max(lengths[i] for i in b)
                     for b in length_batches(lengths, batch_size, max_tokens))
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.inference_batching", description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--sizes", default="128,256,1024,2048", help="mentions per batch, at least")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over all settings")
    parser.add_argument("--model-dir", default=str(ROOT / "models/tsc-minilm"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/inference_batching.json"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    import torch

    from stancebeam.classifier.inference import TargetClassifier
    from stancebeam.pipeline.config import load_config
    from stancebeam.transforms.classify import to_examples
    from stancebeam.transforms.memory import MemoryTrimmer, find_malloc_trim

    with tempfile.TemporaryDirectory(prefix="stancebeam-batching-") as tmp:
        corpus = write_corpus(build_corpus(source_documents(DEFAULT_NEWS), args.docs), Path(tmp) / "corpus.jsonl")
        documents = read_corpus(corpus)
    report = {"documents": args.docs, "load_average": {"before": os.getloadavg()}, "settings": {}}
    with one_thread_here():
        torch.set_num_threads(1)
        analysed, _ = measure_spacy(documents, load_config())
        clf = TargetClassifier.from_dir(args.model_dir, backend="torch", threads=1)
        per_document = [clf.encode([e for _, e in to_examples(a)]) for a in analysed]
        everything = [e for encoded in per_document for e in encoded]
        settings = {"all": [everything]}
        sizes = args.sizes.split(",")
        settings.update({size: group_by_mentions(per_document, int(size)) for size in sizes})
        largest = max(sizes, key=int)
        settings[f"{largest}+trim"] = settings[largest]
        real = sum(len(e) for e in everything)
        report.update(mentions=len(everything), real_tokens=real, inner_batch_size=clf.batch_size)
        for name, groups in settings.items():
            report["settings"][name] = {
                "calls": len(groups),
                "padding": padded_tokens(groups, clf.batch_size, clf.max_batch_tokens) / real,
                "forward_s": []}
        clf.predict_encoded(everything[:64])  # warm-up
        for _ in range(args.repeats):  # interleaved, so drift in the machine hits every setting
            for name, groups in settings.items():
                trimmer = MemoryTrimmer(find_malloc_trim() if name.endswith("+trim") else None, 5.0)
                start = time.perf_counter()
                for group in groups:
                    clf.predict_encoded(group)
                    trimmer.maybe_trim()
                report["settings"][name]["forward_s"].append(time.perf_counter() - start)
    best_all = min(report["settings"]["all"]["forward_s"])
    for name, s in report["settings"].items():
        s["x_all"] = min(s["forward_s"]) / best_all
        print(f"{name:>10}: {s['calls']:4d} calls, padding {s['padding']:.3f}x real tokens, "
              f"forward best {min(s['forward_s']):.1f} s = {s['x_all']:.2f}x all")
    report["load_average"]["after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
