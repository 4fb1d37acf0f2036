"""Classification metrics: per-class precision/recall/F1, macro-F1, accuracy, confusion matrix."""
from __future__ import annotations

import numpy as np

from stancebeam.classifier.model import LABELS


def classification_report(gold, predicted, labels=LABELS) -> dict:
    """Metrics as a JSON-ready dict; the confusion matrix is rows=gold, columns=predicted."""
    gold, predicted = np.asarray(gold, dtype=int), np.asarray(predicted, dtype=int)
    k = len(labels)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (gold, predicted), 1)
    per_class = {}
    for i, name in enumerate(labels):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / confusion[i, :].sum() if confusion[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                           "f1": round(float(f1), 4), "support": int(confusion[i, :].sum())}
    return {
        "f1_macro": round(float(np.mean([c["f1"] for c in per_class.values()])), 4),
        "accuracy": round(float((gold == predicted).mean()) if len(gold) else 0.0, 4),
        "n": int(len(gold)),
        "n_targets": int(len(gold)),
        "per_class": per_class,
        "labels": list(labels),
        "confusion_matrix": confusion.tolist(),
    }
