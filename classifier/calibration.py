"""Per-class logit offsets that move a model's decisions toward macro-F1 (threshold moving).

Cross-entropy training, class weights or not, leaves the rare classes' decision thresholds where
they maximise likelihood, not macro-F1, which weighs a class of 30 sentences as much as one of
800. An offset added to each class's logit (the first class's stays 0) moves the thresholds; it
is fitted by coordinate ascent on held-out data the model has not trained on, and stored in the
model's manifest as `logit_bias`, which every backend adds before the softmax (`inference.py`).

The held-out data must not be part of the model's training data. A model trained on all of
train is calibrated with offsets fitted on a sibling trained the same way on the other folds:
`--model` fits, `--apply-to` writes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from stancebeam.classifier.metrics import classification_report

GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 2)


def fit_logit_bias(log_probs: np.ndarray, gold, sweeps: int = 3) -> np.ndarray:
    """Offsets [n_labels] (the first 0) that maximise macro-F1 of argmax(log_probs + offsets).

    Coordinate ascent over a grid; among equal scores the offset nearest 0 wins, so a class
    keeps its threshold unless moving it helps.
    """
    gold = np.asarray(gold)
    n_labels = log_probs.shape[1]
    bias = np.zeros(n_labels)
    for _ in range(sweeps):
        changed = False
        for k in range(1, n_labels):
            scores = []
            for value in GRID:
                trial = bias.copy()
                trial[k] = value
                scores.append(classification_report(gold, (log_probs + trial).argmax(-1),
                                                    range(n_labels))["f1_macro"])
            scores = np.array(scores)
            ties = np.flatnonzero(scores == scores.max())
            value = GRID[ties[np.argmin(np.abs(GRID[ties]))]]
            if value != bias[k]:
                bias[k], changed = value, True
        if not changed:
            break
    return bias


def write_bias(model_dir: str | Path, bias, provenance: dict) -> None:
    """Stores the offsets in a model directory's manifest (the weights and their sha256 stay)."""
    from stancebeam.classifier.artifacts import MANIFEST

    path = Path(model_dir) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if len(bias) != len(manifest["labels"]):
        raise ValueError(f"{len(bias)} offsets for {len(manifest['labels'])} labels in {path}")
    manifest["logit_bias"] = [float(b) for b in bias]
    manifest["logit_bias_fitted"] = provenance
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    from stancebeam.classifier.inference import TargetClassifier
    from stancebeam.classifier.tasks import get_task

    parser = argparse.ArgumentParser(
        prog="stancebeam calibrate",
        description="fit per-class logit offsets for macro-F1 on held-out labelled JSONL")
    parser.add_argument("--model", required=True, help="the model whose answers the offsets are fitted on")
    parser.add_argument("--data", required=True, help="held-out labelled JSONL the model did not train on")
    parser.add_argument("--apply-to", nargs="*", default=[],
                        help="model directories whose manifests get the offsets (same recipe)")
    args = parser.parse_args(argv)
    classifier = TargetClassifier.from_dir(args.model)
    classifier.logit_bias = None  # fit from the raw answers, whatever the manifest holds
    task = get_task(classifier.loaded.task)
    examples, gold = task.read(args.data)
    log_probs = np.log(np.clip(classifier.predict_proba(examples), 1e-12, None))
    bias = fit_logit_bias(log_probs, gold)
    before = classification_report(gold, log_probs.argmax(-1), task.labels)
    after = classification_report(gold, (log_probs + bias).argmax(-1), task.labels)
    provenance = {"model": classifier.model_id, "data": args.data, "n": len(gold),
                  "f1_macro_before": before["f1_macro"], "f1_macro_after": after["f1_macro"]}
    for target in args.apply_to:
        write_bias(target, bias, provenance)
    print(json.dumps({"logit_bias": [float(b) for b in bias], **provenance,
                      "per_class_f1_before": {k: v["f1"] for k, v in before["per_class"].items()},
                      "per_class_f1_after": {k: v["f1"] for k, v in after["per_class"].items()},
                      "applied_to": args.apply_to}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
