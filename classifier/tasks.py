"""The two tasks one training loop, one artifact format and one loading path serve.

A task fixes what differs between them: the labels, how labelled JSONL is read, how an example
is encoded (one marked target, or two marked actors), how many spans the head pools, and how an
example's roles can be swapped for augmentation.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from typing import Callable

from stancebeam.classifier.encoding import PairEncoder, PairExample, TargetEncoder, TargetExample
from stancebeam.classifier.model import LABELS as SENTIMENT_LABELS

STANCE_LABELS = ("none", "e1_favors_e2", "e2_favors_e1", "e1_against_e2", "e2_against_e1")
# The label of a stance example after e1 and e2 exchange roles.
STANCE_SWAP = (0, 2, 1, 4, 3)
# NewsMTSC polarity codes -> index into SENTIMENT_LABELS.
POLARITY_TO_LABEL = {2.0: 0, 4.0: 1, 6.0: 2}


def open_text(path: str | Path, mode: str = "r"):
    """A text file, gzip-compressed when its name ends in .gz.

    For large soft-label sets: the 54,839 news pairs with teacher probabilities take 23 MB plain
    and 3.2 MB compressed.
    """
    if str(path).endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def jsonl_records(path: str | Path):
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON: {e}") from e


def read_newsmtsc(path: str | Path):
    """One TargetExample per target and its label index; targets of unknown polarity are skipped."""
    examples, labels = [], []
    for _, record in jsonl_records(path):
        sentence = record.get("sentence_normalized") or record.get("sentence") or ""
        targets = record.get("targets", [])
        spans = [(int(t["from"]), int(t["to"])) for t in targets]
        for k, target in enumerate(targets):
            label = POLARITY_TO_LABEL.get(float(target.get("polarity", -1)))
            if label is None:
                continue
            others = tuple(span for j, span in enumerate(spans) if j != k)
            examples.append(TargetExample(sentence, spans[k][0], spans[k][1], others))
            labels.append(label)
    return examples, labels


def pair_from_record(record: dict) -> PairExample:
    """The PairExample of one directed-format record (`sentence`, `e1`/`e2` with `from`/`to`)."""
    e1, e2 = record["e1"], record["e2"]
    return PairExample(record["sentence"], int(e1["from"]), int(e1["to"]),
                       int(e2["from"]), int(e2["to"]))


def read_directed(path: str | Path):
    """One PairExample per sentence of the directed-sentiment JSONL (Park et al. 2021) and its label."""
    examples, labels = [], []
    for n, record in jsonl_records(path):
        try:
            example, label = pair_from_record(record), int(record["label"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}:{n}: not a directed stance record: {e!r}") from e
        if not 0 <= label < len(STANCE_LABELS):
            raise ValueError(f"{path}:{n}: label {label} is not one of 0-{len(STANCE_LABELS) - 1}")
        examples.append(example)
        labels.append(label)
    return examples, labels


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    n_spans: int
    read: Callable
    encoder_class: type
    swap_label: tuple[int, ...] | None = None  # label map when the example's roles are swapped

    def encoder(self, tokenizer, scheme: str, max_length: int):
        return self.encoder_class(tokenizer, scheme, max_length)


TASKS = {
    "sentiment": Task("sentiment", SENTIMENT_LABELS, 1, read_newsmtsc, TargetEncoder),
    "stance": Task("stance", STANCE_LABELS, 2, read_directed, PairEncoder, STANCE_SWAP),
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}") from None
