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

from stancebeam.classifier.tasks import STANCE_LABELS


def copy_key(record: dict) -> tuple:
    return (record["sentence"], record["e1"]["from"], record["e1"]["to"],
            record["e2"]["from"], record["e2"]["to"])


def read(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default="../shared/data/directed/train.jsonl")
    parser.add_argument("--valid", default="../shared/data/directed/valid.jsonl")
    args = parser.parse_args(argv)
    train, valid = read(args.train), read(args.valid)
    train_labels = collections.defaultdict(set)
    for record in train:
        train_labels[copy_key(record)].add(record["label"])
    counts = collections.Counter(copy_key(r) for r in train)
    copies = [r for r in valid if copy_key(r) in train_labels]
    per_class = collections.Counter(STANCE_LABELS[r["label"]] for r in copies)
    totals = collections.Counter(STANCE_LABELS[r["label"]] for r in valid)
    print(json.dumps({
        "train_records": len(train),
        "train_keys_repeated": sum(n > 1 for n in counts.values()),
        "train_keys_with_two_labels": sum(len(v) > 1 for v in train_labels.values()),
        "valid_records": len(valid),
        "valid_copies_of_train": len(copies),
        "valid_copies_same_label": sum(train_labels[copy_key(r)] == {r["label"]} for r in copies),
        "valid_copies_per_class": {k: f"{per_class[k]}/{totals[k]}" for k in STANCE_LABELS},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
