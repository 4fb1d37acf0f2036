"""The records that flow between transforms."""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Optional

EXCERPT_CHARS = 200


@dataclasses.dataclass(frozen=True)
class RawRecord:
    """One undecoded input document: a whole text file, a JSONL line or a Parquet row."""

    origin: str  # path, plus ":<line>" for JSONL or "#<row>" for Parquet
    fmt: str  # text|jsonl|parquet
    payload: object  # bytes for text/jsonl, dict for parquet rows
    date_hint: Optional[str] = None  # known partition date for errors


@dataclasses.dataclass(frozen=True)
class Document:
    doc_id: str
    origin: str
    title: str
    text: str
    date: Optional[str]  # ISO date or None
    source: Optional[str] = None
    url: Optional[str] = None
    n_chars: int = 0  # of the full text, before any cap


@dataclasses.dataclass(frozen=True)
class ErrorRecord:
    origin: str
    stage: str
    reason: str
    severity: str = "rejected"  # rejected: the document is dropped; warning: it is kept
    excerpt: Optional[str] = None
    doc_id: Optional[str] = None
    date: Optional[str] = None

    @property
    def error_id(self) -> str:
        return stable_hash(self.origin, self.stage, self.reason, length=20)


def stable_hash(*parts: str, length: int = 16) -> str:
    """A short hex digest that is the same on every run and machine (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:length]


def excerpt(value, limit: int = EXCERPT_CHARS) -> str:
    """A printable prefix of any payload, for the errors table."""
    if isinstance(value, bytes):
        value = value[:limit * 4].decode("utf-8", errors="backslashreplace")
    text = str(value)
    return text[:limit] + ("…" if len(text) > limit else "")
