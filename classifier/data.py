"""Reads NewsMTSC-format JSONL into labelled target examples."""
from __future__ import annotations

import json
from pathlib import Path

from classifier.encoding import TargetExample

# NewsMTSC polarity codes -> index into classifier.model.LABELS.
POLARITY_TO_LABEL = {2.0: 0, 4.0: 1, 6.0: 2}


def read_newsmtsc(path: str | Path) -> tuple[list[TargetExample], list[int]]:
    """Returns one example per target and its label index; skips targets with unknown polarity."""
    examples, labels = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON: {e}") from e
            sentence = record.get("sentence_normalized") or record.get("sentence") or ""
            for target in record.get("targets", []):
                label = POLARITY_TO_LABEL.get(float(target.get("polarity", -1)))
                if label is None:
                    continue
                examples.append(TargetExample(sentence, int(target["from"]), int(target["to"])))
                labels.append(label)
    return examples, labels
