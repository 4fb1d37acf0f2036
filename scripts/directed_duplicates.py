"""How often the directed-stance records repeat, within train and between valid and train.

    python scripts/directed_duplicates.py [--train FILE] [--valid FILE]

A record is its sentence and the character spans of its two entities. Prints one JSON object:
records that occur more than once in train, valid records that are exact copies of a train
record (and whether the two labels agree), and those copies per class. The directed data set
was split by record, so copies straddle the splits: they are what a model recalls rather than
reads (see models/stance-minilm/MODEL_CARD.md, "The records repeat").
"""
from __future__ import annotations

import argparse
import collections
import json
import sys

from stancebeam.classifier.tasks import STANCE_LABELS, read_directed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default="../shared/data/directed/train.jsonl")
    parser.add_argument("--valid", default="../shared/data/directed/valid.jsonl")
    args = parser.parse_args(argv)
    # A PairExample is the sentence and both spans: equal examples are copies of one record.
    train, train_y = read_directed(args.train)
    valid, valid_y = read_directed(args.valid)
    train_labels = collections.defaultdict(set)
    for example, label in zip(train, train_y):
        train_labels[example].add(label)
    counts = collections.Counter(train)
    copies = [(example, label) for example, label in zip(valid, valid_y) if example in train_labels]
    per_class = collections.Counter(STANCE_LABELS[label] for _, label in copies)
    totals = collections.Counter(STANCE_LABELS[label] for label in valid_y)
    print(json.dumps({
        "train_records": len(train),
        "train_keys_repeated": sum(n > 1 for n in counts.values()),
        "train_keys_with_two_labels": sum(len(v) > 1 for v in train_labels.values()),
        "valid_records": len(valid),
        "valid_copies_of_train": len(copies),
        "valid_copies_same_label": sum(train_labels[example] == {label} for example, label in copies),
        "valid_copies_per_class": {k: f"{per_class[k]}/{totals[k]}" for k in STANCE_LABELS},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
