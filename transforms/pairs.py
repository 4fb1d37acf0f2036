"""Which actor pairs of a sentence the stance model classifies, and what its answer means.

The directed stance model (classifier task `stance`) reads one sentence with two marked actors
and answers one of five classes: none, e1 favors e2, e2 favors e1, e1 against e2, e2 against e1.
One decision thus gives both directions of a pair, so each unordered pair of distinct actors in a
sentence is classified once, with e1 the one that comes first (as in the training data).

The pair rule, in order:
1. Per pair of actors, the two mentions nearest each other stand for it (the same actor named
   twice in a sentence gives no second pair).
2. At most `max_per_sentence` pairs per sentence. The pairs that involve the sentence's speaker come first,
   then the pairs whose mentions are closest, then the earliest: a sentence listing 30 actors
   keeps the speaker's relations and the tightly linked pairs, and drops the long range ones,
   which the model rarely calls anything but none.
3. At most `max_per_document` pairs per document, in sentence order: a 2,000-sentence document
   keeps the pairs of its first sentences.
A document that loses pairs to either cap is kept whole (its sentiment and article stance are
unaffected) and gets a `warning` row in `errors` saying how many pairs were dropped. A
`max_per_sentence` of 0 turns the stance model off (no pairs, no warnings): every speaker's
stance then comes from target sentiment, as before the model existed.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from typing import Sequence

import apache_beam as beam
from apache_beam.pvalue import PCollection

from stancebeam.classifier.encoding import PairExample
from stancebeam.transforms.elements import (ERRORS, MAIN, AnalysedDocument, ErrorRecord, MentionPair,
                                             WithErrors, excerpt, outputs, with_errors)

# Index into the stance model's output: (favor, against) for each direction.
FORWARD = (1, 3)  # e1 -> e2
BACKWARD = (2, 4)  # e2 -> e1


@dataclasses.dataclass(frozen=True)
class MentionSpan:
    """The part of a mention that pair selection needs (document offsets, end exclusive)."""

    actor_id: str
    start: int
    end: int


def _gap(a: MentionSpan, b: MentionSpan) -> int:
    return max(0, max(a.start, b.start) - min(a.end, b.end))


def sentence_pairs(mentions: Sequence[MentionSpan], holder_id: str | None,
                   cap: int) -> tuple[list[tuple[int, int]], int]:
    """The pairs of one sentence to classify, and how many were dropped by the cap.

    Args:
        mentions: the sentence's actor mentions.
        holder_id: the actor id of the sentence's speaker, if any.
        cap: the most pairs to keep.
    Returns:
        (pairs, n_dropped): pairs as (i, j) indices into `mentions`, i the earlier mention.
    """
    nearest: dict[tuple[str, str], tuple[int, int]] = {}
    for i, j in itertools.combinations(range(len(mentions)), 2):
        a, b = mentions[i], mentions[j]
        if a.actor_id == b.actor_id:
            continue
        key = tuple(sorted((a.actor_id, b.actor_id)))
        if key not in nearest or _gap(a, b) < _gap(*(mentions[k] for k in nearest[key])):
            nearest[key] = (i, j)
    ordered = []
    for key, (i, j) in nearest.items():
        first, second = (i, j) if mentions[i].start <= mentions[j].start else (j, i)
        speaker_first = 0 if holder_id in key else 1
        ordered.append(((speaker_first, _gap(mentions[i], mentions[j]), mentions[first].start,
                         mentions[second].start), (first, second)))
    ordered.sort()
    kept = [pair for _, pair in ordered[:max(cap, 0)]]
    return kept, len(ordered) - len(kept)


def pair_example(sentence: str, sentence_start: int, first: MentionSpan,
                 second: MentionSpan) -> PairExample:
    """The stance model's input for two mentions (sentence-relative offsets)."""
    return PairExample(sentence, first.start - sentence_start, first.end - sentence_start,
                       second.start - sentence_start, second.end - sentence_start)


def directed(probs: Sequence[float]) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The 5-class answer as (against, neutral, favor) for e1 -> e2 and for e2 -> e1.

    Neutral is everything else: no opinion, or an opinion in the other direction only.
    """
    out = []
    for favor_i, against_i in (FORWARD, BACKWARD):
        favor, against = float(probs[favor_i]), float(probs[against_i])
        out.append((against, max(0.0, 1.0 - favor - against), favor))
    return out[0], out[1]


def document_pairs(analysed: AnalysedDocument, max_per_sentence: int,
                   max_per_document: int) -> tuple[tuple[MentionPair, ...], int]:
    """The document's pairs under both caps, in sentence order, and how many were dropped."""
    if max_per_sentence <= 0:
        return (), 0
    by_sentence = defaultdict(list)
    for m in analysed.mentions:
        by_sentence[m.sentence_index].append(m)
    pairs, dropped = [], 0
    for k in sorted(by_sentence):
        mentions = by_sentence[k]
        if len({m.actor.actor_id for m in mentions}) < 2:
            continue
        spans = [MentionSpan(m.actor.actor_id, m.start, m.end) for m in mentions]
        kept, n_dropped = sentence_pairs(spans, mentions[0].holder_id, max_per_sentence)
        dropped += n_dropped
        for i, j in kept:
            if len(pairs) < max_per_document:
                pairs.append(MentionPair(mentions[i], mentions[j]))
            else:
                dropped += 1
    return tuple(pairs), dropped


@beam.typehints.with_input_types(AnalysedDocument)
@outputs(AnalysedDocument)
class SelectPairsFn(beam.DoFn):
    """AnalysedDocument -> the same with its pairs; a capped document also -> a warning."""

    def __init__(self, max_per_sentence: int, max_per_document: int):
        self.max_per_sentence = max_per_sentence
        self.max_per_document = max_per_document
        self.pairs = beam.metrics.Metrics.counter("stancebeam", "stance_pairs")

    def process(self, analysed: AnalysedDocument):
        pairs, dropped = document_pairs(analysed, self.max_per_sentence, self.max_per_document)
        self.pairs.inc(len(pairs))
        if dropped:
            d = analysed.document
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                d.origin, "stance", f"{dropped} actor pairs not classified for stance (at most "
                f"{self.max_per_sentence} per sentence, {self.max_per_document} per document)",
                severity="warning", excerpt=excerpt(d.title or d.text), doc_id=d.doc_id, date=d.date))
        yield dataclasses.replace(analysed, pairs=pairs)


@beam.typehints.with_input_types(AnalysedDocument)
class SelectPairs(beam.PTransform[PCollection[AnalysedDocument], WithErrors[AnalysedDocument]]):
    """AnalysedDocuments -> the same with the pairs to classify, and warnings for capped ones."""

    def __init__(self, max_per_sentence: int, max_per_document: int):
        super().__init__()
        self.max_per_sentence = max_per_sentence
        self.max_per_document = max_per_document

    def expand(self, analysed) -> WithErrors[AnalysedDocument]:
        return with_errors(analysed | "Pairs" >> beam.ParDo(
            SelectPairsFn(self.max_per_sentence, self.max_per_document)).with_outputs(ERRORS, main=MAIN))
