"""`stancebeam evaluate`: macro-F1 and friends of a model on labelled JSONL of its task."""
from __future__ import annotations

import argparse
import json
import sys
import time

from stancebeam.classifier.artifacts import ModelLoadError
from stancebeam.classifier.inference import BACKENDS, TargetClassifier
from stancebeam.classifier.metrics import classification_report
from stancebeam.classifier.tasks import TASKS, get_task


def evaluate(model_dir: str, data: str, backend: str = "torch", threads: int | None = None,
             task: str | None = None) -> dict:
    """Scores a model directory through the same loading and inference code as the pipeline.

    The data is read as the model's own task; `task`, when given, must match it.
    """
    classifier = TargetClassifier.from_dir(model_dir, backend=backend, threads=threads)
    model_task = classifier.loaded.task
    if task is not None and task != model_task:
        raise ValueError(f"{model_dir} is a {model_task} model, not a {task} model")
    spec = get_task(model_task)
    examples, gold = spec.read(data)
    started = time.time()
    predicted = classifier.predict_proba(examples).argmax(-1)
    seconds = time.time() - started
    report = classification_report(gold, predicted, spec.labels)
    report.update({"task": model_task, "model_id": classifier.model_id, "backend": backend,
                   "data": data, "seconds": round(seconds, 2),
                   "examples_per_second": round(len(examples) / seconds, 1) if seconds else None})
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stancebeam evaluate")
    parser.add_argument("--data", required=True,
                        help="labelled JSONL: NewsMTSC format (sentiment) or directed stance format")
    parser.add_argument("--task", choices=sorted(TASKS), default=None,
                        help="the task: picks the shipped model when --model is not given "
                             "(default sentiment) and must match the model's own task")
    parser.add_argument("--model", default=None, help="model directory (default: the config's)")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.model is None:
        from stancebeam.pipeline.config import default_model_dir  # lazy: classifier does not need pipeline

        args.model = default_model_dir(args.task or "sentiment")
    try:
        report = evaluate(args.model, args.data, args.backend, args.threads, task=args.task)
    except (ModelLoadError, FileNotFoundError, ValueError) as e:
        print(f"stancebeam evaluate: {e}", file=sys.stderr)
        return 2
    matrix = report["confusion_matrix"]
    print(f"{report['n']} examples  macro-F1 {report['f1_macro']:.4f}  "
          f"accuracy {report['accuracy']:.4f}  ({report['model_id']}, {args.backend})")
    for name, row in zip(report["labels"], matrix):
        print(f"  gold {name:<13} -> predicted {row}")
    print(json.dumps(report))
    return 0
