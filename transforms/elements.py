"""The elements that flow between transforms, and the one error output every composite shares.

Read from the input to the tables, a document becomes, in turn:

    FileRange -> RawRecord -> Document -> AnalysedDocument (with its Mentions)
      -> AnalysedDocument with the MentionPairs the stance model will read (SelectPairs)
      -> ClassifiedDocument (with a MentionSentiment per mention; ClassifyDocuments)
      -> ClassifiedDocument with a PairStance per pair (ClassifyPairs) -> TableRow

and anything that goes wrong becomes an ErrorRecord on an `errors` output. A composite with
failures returns `WithErrors(main, errors)`; its DoFns declare `errors` with `outputs(...)`.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Generic, NamedTuple, Optional, TypeVar

import apache_beam as beam
from apache_beam.pvalue import PCollection

from stancebeam.transforms.gazetteer import Actor
from stancebeam.transforms.speakers import VICTIM_CUES

ERRORS = "errors"  # the tag of every error output: a PCollection[ErrorRecord]
MAIN = "main"  # the tag of the main output of a DoFn that also has `errors`
EXCERPT_CHARS = 200

T = TypeVar("T")


class WithErrors(NamedTuple, Generic[T]):
    """What every composite with failures returns: its result and its ErrorRecords."""

    main: PCollection  # PCollection[T]
    errors: PCollection  # PCollection[ErrorRecord]


def with_errors(outputs) -> WithErrors:
    """A ParDo's `.with_outputs(ERRORS, main=MAIN)` result as WithErrors."""
    return WithErrors(outputs[MAIN], outputs[ERRORS])


def outputs(main_type):
    """DoFn decorator: main output `main_type`, tagged output ERRORS of ErrorRecords."""
    return beam.typehints.with_output_types(main_type, **{ERRORS: ErrorRecord})


@dataclasses.dataclass(frozen=True)
class FileRange:
    """A slice of one input file that one worker reads: the unit of parallel reading.

    jsonl: lines whose first byte lies in [start, stop) (`stop` None: to the end), numbered from
    `first_line`; parquet: row groups [start, stop), rows numbered from `first_row`; text: the
    whole file.
    """

    path: str
    fmt: str
    start: int = 0
    stop: Optional[int] = None
    first_line: int = 1
    first_row: int = 0


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
class Mention:
    """One actor mention, with the sentence it is classified in and that sentence's speaker."""

    doc_id: str
    index: int  # position among the document's mentions
    actor: Actor
    text: str
    start: int
    end: int
    ner_label: str
    sentence_index: int
    sentence: str
    sentence_start: int
    holder_id: str
    cue: Optional[str] = None  # criticised | praised | protected | wronged (speakers.evaluation_cues)

    @property
    def mention_id(self) -> str:
        return f"{self.doc_id}:{self.index}"


@dataclasses.dataclass(frozen=True)
class MentionPair:
    """Two mentions of different actors in one sentence, as the stance model reads them."""

    first: Mention  # e1: the earlier in the sentence
    second: Mention  # e2


@dataclasses.dataclass(frozen=True)
class AnalysedDocument:
    """A document after spaCy and the gazetteer: the input of the models."""

    document: Document
    n_chars_processed: int
    n_sentences: int
    n_statements: int
    mentions: tuple[Mention, ...]
    actors: dict  # actor_id -> Actor, for every actor and holder in the document
    pairs: tuple[MentionPair, ...] = ()  # what the stance model classifies (SelectPairs fills it)


@dataclasses.dataclass(frozen=True)
class MentionSentiment:
    """The target sentiment model's prediction for one mention."""

    mention: Mention
    probs: tuple[float, float, float]  # negative, neutral, positive
    model_id: str

    @property
    def oriented(self) -> tuple[float, float, float]:
        """The probabilities the tables count: the classifier's, unless the wording is explicit.

        - criticised / praised (the object of a criticism or of praise, "took a shot at the US")
          count as certainly negative / positive: on NewsMTSC's training data these cues agree
          with the gold label for 126 of 128 and 27 of 28 targets (benchmarks/cue_precision.py).
        - protected (a victim of a criticised act, "denounced forces attempting to hold China
          back") counts with negative and positive swapped: the text sides with it. NewsMTSC's
          annotators read such targets as portrayed under attack (10 negative, 8 neutral of 18
          training targets) and the classifier follows them; we depart from that on purpose so
          that sentiment and stance agree on whom a statement defends. So does wronged (the
          victim of an act named as wrong: "slander upon the party"; 1 NewsMTSC training
          target, gold negative, as for protected).
        """
        if self.mention.cue in VICTIM_CUES:
            neg, neu, pos = self.probs
            return pos, neu, neg
        return _CUE_PROBS.get(self.mention.cue, self.probs)

    @property
    def score(self) -> float:
        """p(positive) - p(negative) of the oriented probabilities."""
        return self.oriented[2] - self.oriented[0]


_CUE_PROBS = {"criticised": (1.0, 0.0, 0.0), "praised": (0.0, 0.0, 1.0)}


@dataclasses.dataclass(frozen=True)
class ClassifiedDocument:
    """An analysed document with the models' predictions: what the tables are made from.

    A document that fails inference never becomes one: it is an ErrorRecord instead.
    """

    analysed: AnalysedDocument
    sentiments: tuple[MentionSentiment, ...]  # one per mention, in mention order
    stances: tuple["PairStance", ...] = ()  # one per analysed.pairs (ClassifyPairs fills it)


@dataclasses.dataclass(frozen=True)
class PairStance:
    """The directed stance model's answer for one pair: 5 probabilities (classifier.tasks)."""

    pair: MentionPair
    probs: tuple[float, float, float, float, float]  # none, e1>e2 favor, e2>e1 favor, e1>e2 against, e2>e1 against
    model_id: str


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One row of an output table, with the date that picks its partition."""

    table: str  # a key of schemas.TABLES
    date: Optional[str]  # ISO date, or None for the null partition
    row: dict  # column -> value, as schemas.TABLES[table] describes


@dataclasses.dataclass(frozen=True)
class ErrorRecord:
    """Something that went wrong with an input, with where it came from: a row of `errors`."""

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
