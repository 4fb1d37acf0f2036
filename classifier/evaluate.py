"""`stancebeam evaluate`: macro-F1 and friends of a model on NewsMTSC-format JSONL."""
from __future__ import annotations

import argparse
import json
import sys
import time

from classifier.artifacts import ModelLoadError
from classifier.data import read_newsmtsc
from classifier.inference import BACKENDS, TargetClassifier
from classifier.metrics import classification_report


def evaluate(model_dir: str, data: str, backend: str = "torch", threads: int | None = None) -> dict:
    """Scores a model directory through the same loading and inference code as the pipeline."""
    examples, gold = read_newsmtsc(data)
    classifier = TargetClassifier.from_dir(model_dir, backend=backend, threads=threads)
    started = time.time()
    predicted = classifier.predict_proba(examples).argmax(-1)
    seconds = time.time() - started
    report = classification_report(gold, predicted)
    report.update({"model_id": classifier.model_id, "backend": backend, "data": data,
                   "seconds": round(seconds, 2),
                   "targets_per_second": round(len(examples) / seconds, 1) if seconds else None})
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stancebeam evaluate")
    parser.add_argument("--data", required=True, help="NewsMTSC-format JSONL")
    parser.add_argument("--model", default=None, help="model directory (default: the config's)")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.model is None:
        from pipeline.config import default_model_dir  # lazy: classifier does not need pipeline

        args.model = default_model_dir()
    model_dir = args.model
    try:
        report = evaluate(model_dir, args.data, args.backend, args.threads)
    except (ModelLoadError, FileNotFoundError, ValueError) as e:
        print(f"stancebeam evaluate: {e}", file=sys.stderr)
        return 2
    matrix = report["confusion_matrix"]
    print(f"{report['n_targets']} targets  macro-F1 {report['f1_macro']:.4f}  "
          f"accuracy {report['accuracy']:.4f}  ({report['model_id']}, {args.backend})")
    for name, row in zip(report["labels"], matrix):
        print(f"  gold {name:<9} -> predicted {row}")
    print(json.dumps(report))
    return 0
