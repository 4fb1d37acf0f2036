"""Ensemble distillation: teachers label unlabelled examples, a student learns their answers.

Several fine-tunes averaged answer better than any one of them, but only one model ships. The
teachers' mean probabilities on unlabelled in-domain examples (pairs the pipeline itself picks
from news, `scripts/news_pairs.py`) become soft targets: the student trains on the labelled data
as usual, and in addition on batches of these examples against the teachers' distribution.

    stancebeam distill-label --task stance --teachers runs/a runs/b --data pairs.jsonl --out soft.jsonl
    stancebeam train --task stance ... --distill soft.jsonl --distill-weight 1.0 --distill-every 2

Stance only for now: its examples are one record each (the directed JSONL format), so the soft
targets sit on the record as `teacher_probs`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from stancebeam.classifier.encoding import PairExample, pad_batch
from stancebeam.classifier.tasks import jsonl_records, open_text, pair_from_record


def read_pairs(path: str | Path) -> tuple[list[PairExample], list[dict]]:
    """PairExamples of a directed-format JSONL (labels not needed) and the raw records."""
    examples, records = [], []
    for n, record in jsonl_records(path):  # a line that is not JSON is refused there, with its number
        try:
            examples.append(pair_from_record(record))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}:{n}: not a directed pair record: {e!r}") from e
        records.append(record)
    return examples, records


def read_soft(path: str | Path, n_labels: int) -> tuple[list[PairExample], np.ndarray]:
    """Examples and their teachers' probabilities [n, n_labels] from `distill-label` output."""
    examples, records = read_pairs(path)
    probs = np.asarray([r.get("teacher_probs") or [] for r in records], dtype=np.float32)
    if probs.shape != (len(examples), n_labels):
        raise ValueError(f"{path}: every record needs teacher_probs of {n_labels} values")
    return examples, probs


def teacher_probs(teachers: list[str], examples: list[PairExample]) -> np.ndarray:
    """The teachers' mean probabilities (each loaded through the shipped loading path)."""
    from stancebeam.classifier.inference import TargetClassifier

    total = None
    for k, teacher in enumerate(teachers):
        probs = TargetClassifier.from_dir(teacher).predict_proba(examples).astype(np.float64)
        total = probs if total is None else total + probs
        print(f"teacher {k + 1}/{len(teachers)} {teacher}: done", file=sys.stderr, flush=True)
    return (total / len(teachers)).astype(np.float32)


class SoftTargets:
    """Batches of teacher-labelled examples for the main model (the student), endlessly reshuffled.

    Every `every`-th step one batch joins the labelled one; its loss is the cross-entropy against
    the teachers' distribution (KL divergence up to a constant), times `weight`.
    """

    def __init__(self, path: str, encoder, n_labels: int, batch_size: int, weight: float,
                 every: int, rng):
        from stancebeam.classifier.train import endless_length_batches

        examples, probs = read_soft(path, n_labels)
        self.encoder = encoder
        self.encoded = encoder.encode(examples)
        self.targets = torch.from_numpy(probs)
        self.weight, self.every = weight, max(1, every)
        self._batches = endless_length_batches([len(e) for e in self.encoded], batch_size, rng)

    def __len__(self) -> int:
        return len(self.encoded)

    def loss(self, model: torch.nn.Module, step: int):
        if step % self.every:
            return None
        idx = next(self._batches)
        arrays = pad_batch([self.encoded[i] for i in idx], self.encoder.pad_id)
        logits = model(**{k: torch.from_numpy(v) for k, v in arrays.items()})
        log_q = torch.log_softmax(logits, dim=-1)
        return self.weight * -(self.targets[idx] * log_q).sum(-1).mean()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stancebeam distill-label",
        description="Label unlabelled stance pairs with the mean probabilities of teacher models.")
    parser.add_argument("--task", choices=["stance"], default="stance")
    parser.add_argument("--teachers", nargs="+", required=True, help="trained model folders")
    parser.add_argument("--data", required=True, help="directed-format JSONL (labels ignored)")
    parser.add_argument("--out", required=True, help="JSONL; gzip-compressed when it ends in .gz")
    args = parser.parse_args(argv)
    examples, records = read_pairs(args.data)
    probs = teacher_probs(args.teachers, examples)
    with open_text(args.out, "w") as f:
        for record, p in zip(records, probs):
            record = {**record, "teacher_probs": [round(float(x), 5) for x in p],
                      "label": int(p.argmax())}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    counts = np.bincount(probs.argmax(-1), minlength=probs.shape[1]).tolist()
    print(json.dumps({"n": len(records), "teachers": args.teachers, "argmax_counts": counts}))
    return 0
