"""Stance macro-F1 on valid split by whether the sentence also occurs in train.

    python scripts/stance_seen_sentences.py models/stance-minilm runs/OTHER_MODEL ...

The directed-stance data was split by entity pair, not by sentence: 394 of valid's 1,461 pairs
sit in a sentence that train holds with another pair. A model scores far higher on those than on
new sentences, so the valid figure mixes recall of training sentences with generalisation. This
prints both parts for each model (one JSON line per model).
"""
from __future__ import annotations

import json
import sys

import numpy as np

from stancebeam.classifier.inference import TargetClassifier
from stancebeam.classifier.metrics import classification_report
from stancebeam.classifier.tasks import STANCE_LABELS, read_directed

TRAIN = "../shared/data/directed/train.jsonl"
VALID = "../shared/data/directed/valid.jsonl"


def main(models: list[str]) -> int:
    with open(TRAIN, encoding="utf-8") as f:
        train_sentences = {json.loads(line)["sentence"] for line in f if line.strip()}
    examples, gold = read_directed(VALID)
    gold = np.asarray(gold)
    seen = np.array([ex.sentence in train_sentences for ex in examples])
    for model in models:
        predicted = TargetClassifier.from_dir(model).predict_proba(examples).argmax(-1)
        parts = {name: classification_report(gold[mask], predicted[mask], STANCE_LABELS)
                 for name, mask in (("all", np.ones_like(seen)), ("seen", seen), ("unseen", ~seen))}
        print(json.dumps({"model": model, **{f"{k}_f1_macro": r["f1_macro"] for k, r in parts.items()},
                          **{f"n_{k}": r["n"] for k, r in parts.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
