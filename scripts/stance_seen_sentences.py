"""Stance macro-F1 on valid (or another split) by whether the sentence also occurs in train.

    python scripts/stance_seen_sentences.py models/stance-minilm runs/OTHER_MODEL ...
    python scripts/stance_seen_sentences.py --data test.jsonl models/stance-minilm   # another split

The directed-stance data was split by record, and the published records repeat: train itself
holds 1,611 records twice (same sentence, same two spans, same label), and 392 of valid's 1,461
records are exact copies of a train record, with the same label every time (2 more share only
the sentence with a train record). A model scores far higher on those than on new sentences, so
the valid figure mixes recall of training records with generalisation. This prints both parts
for each model (one JSON line per model).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from stancebeam.classifier.inference import TargetClassifier
from stancebeam.classifier.metrics import classification_report
from stancebeam.classifier.tasks import STANCE_LABELS, read_directed

TRAIN = "../shared/data/directed/train.jsonl"
VALID = "../shared/data/directed/valid.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", default=VALID, help="the labelled split to score")
    parser.add_argument("--train", default=TRAIN, help="the split whose sentences count as seen")
    args = parser.parse_args(argv)
    train_sentences = {example.sentence for example in read_directed(args.train)[0]}
    examples, gold = read_directed(args.data)
    gold = np.asarray(gold)
    seen = np.array([ex.sentence in train_sentences for ex in examples])
    models = args.models
    for model in models:
        predicted = TargetClassifier.from_dir(model).predict_proba(examples).argmax(-1)
        parts = {name: classification_report(gold[mask], predicted[mask], STANCE_LABELS)
                 for name, mask in (("all", np.ones_like(seen)), ("seen", seen), ("unseen", ~seen))}
        print(json.dumps({"model": model, **{f"{k}_f1_macro": r["f1_macro"] for k, r in parts.items()},
                          **{f"n_{k}": r["n"] for k, r in parts.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
