"""Reads labelled JSONL; kept as the sentiment reader's historical import path."""
from stancebeam.classifier.tasks import POLARITY_TO_LABEL, read_directed, read_newsmtsc  # noqa: F401
