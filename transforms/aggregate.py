"""Per-document aggregation: mention rows, actor sentiment, holder-to-target stance, document tone."""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Iterable

import apache_beam as beam
import numpy as np
from apache_beam.pvalue import PCollection

from stancebeam.classifier.model import LABELS
from stancebeam.transforms.elements import AnalysedDocument, ClassifiedDocument, MentionSentiment, TableRow
from stancebeam.transforms.faults import fault_point
from stancebeam.transforms.gazetteer import Actor
from stancebeam.transforms.repeats import first_of_repeats
from stancebeam.transforms.speakers import ARTICLE
from stancebeam.transforms.schemas import VERSION_COLUMN
from stancebeam.transforms.stance import (PAIR_MODEL, grouped, pair_statements, sentiment_statements,
                                          summarise)

ARTICLE_ACTOR = Actor(ARTICLE, "(the article)", "article")
TOP_EVIDENCE = 3


@dataclasses.dataclass(frozen=True)
class RunInfo:
    run_id: str
    model_id: str  # the target sentiment model's
    stance_model_id: str = ""  # the directed stance model's (actor_stance rows it answered)


def label_of(probs) -> str:
    return LABELS[int(np.argmax(probs))]


def evidence(classified: list[MentionSentiment], limit: int = TOP_EVIDENCE) -> list[dict]:
    """The mentions with the strongest signal (|p_pos - p_neg|), one per sentence, strongest first."""
    ranked = sorted(classified, key=lambda c: (-abs(c.score), c.mention.index))
    seen, out = set(), []
    for c in ranked:
        if c.mention.sentence_index in seen:
            continue
        seen.add(c.mention.sentence_index)
        out.append({"sentence": c.mention.sentence, "sentence_index": c.mention.sentence_index,
                    "start": c.mention.start, "end": c.mention.end,
                    "label": label_of(c.oriented), "score": round(c.score, 6)})
        if len(out) == limit:
            break
    return out


def mean_probs(classified: list[MentionSentiment]) -> np.ndarray:
    return np.mean([c.oriented for c in classified], axis=0)


def _actor_columns(actor: Actor, prefix: str) -> dict:
    return {f"{prefix}_id": actor.actor_id, f"{prefix}_name": actor.name, f"{prefix}_type": actor.actor_type}


def mention_row(c: MentionSentiment, run: RunInfo) -> dict:
    m = c.mention
    return {"run_id": run.run_id, "model_id": c.model_id or run.model_id, "doc_id": m.doc_id,
            "mention_id": m.mention_id, **_actor_columns(m.actor, "actor"),
            "actor_country": m.actor.country, "text": m.text, "start": m.start, "end": m.end,
            "ner_label": m.ner_label, "sentence_index": m.sentence_index, "sentence": m.sentence,
            "holder_id": m.holder_id, "cue": m.cue, "label": label_of(c.probs),
            "p_negative": c.probs[0], "p_neutral": c.probs[1], "p_positive": c.probs[2],
            "score": c.probs[2] - c.probs[0]}


def distinct_mentions(classified: list[MentionSentiment]) -> list[MentionSentiment]:
    """The mentions less those in a near-duplicate of an earlier sentence (transforms/repeats.py)."""
    return first_of_repeats(classified, lambda c: c.mention.sentence_index, lambda c: c.mention.sentence)


def actor_sentiment_rows(doc_id: str, classified: list[MentionSentiment], run: RunInfo) -> Iterable[dict]:
    """One row per actor: means over its mentions, a repeated sentence counting once."""
    by_actor = defaultdict(list)
    for c in distinct_mentions(classified):
        by_actor[c.mention.actor.actor_id].append(c)
    for actor_id in sorted(by_actor):
        group = by_actor[actor_id]
        actor = group[0].mention.actor
        probs = mean_probs(group)
        top = evidence(group)
        yield {"run_id": run.run_id, "model_id": run.model_id, "doc_id": doc_id,
               **_actor_columns(actor, "actor"), "actor_country": actor.country,
               "n_mentions": len(group), "p_negative": probs[0], "p_neutral": probs[1],
               "p_positive": probs[2], "score": float(probs[2] - probs[0]), "label": label_of(probs),
               "evidence_sentence": top[0]["sentence"], "evidence": top}


def stance_rows(document: ClassifiedDocument, classified: list[MentionSentiment], run: RunInfo,
                cues: frozenset = frozenset()) -> Iterable[dict]:
    """Holder -> target rows from the document's statements (transforms/stance.py).

    A sentence the document repeats (near-duplicates, transforms/repeats.py) is one statement.

    The pair model's answers come first; a (sentence, holder, target) it did not answer falls
    back to the target's sentiment in the holder's sentence (an unnamed speaker, a capped pair,
    or the article).
    """
    analysed = document.analysed
    statements = [s for p in document.stances
                  for s in pair_statements(p.pair.first, p.pair.second, p.probs, cues)]
    covered = {(s.target.sentence_index, s.holder_id, s.target.actor.actor_id) for s in statements}
    statements += sentiment_statements(classified, covered)
    # A repeated sentence is one statement, however often the document repeats it.
    statements = first_of_repeats(statements, lambda s: s.target.sentence_index,
                                  lambda s: s.target.sentence)
    groups = grouped(statements)
    for holder_id, target_id in sorted(groups):
        group = groups[(holder_id, target_id)]
        holder = ARTICLE_ACTOR if holder_id == ARTICLE else analysed.actors.get(
            holder_id, Actor(holder_id, holder_id, "unknown"))
        target = group[0].target.actor
        columns = summarise(group)
        model_id = run.stance_model_id if columns["source"] == PAIR_MODEL else run.model_id
        yield {"run_id": run.run_id, "model_id": model_id, "doc_id": analysed.document.doc_id,
               **_actor_columns(holder, "holder"), **_actor_columns(target, "target"), **columns}


def document_row(analysed: AnalysedDocument, classified: list[MentionSentiment], run: RunInfo) -> dict:
    d = analysed.document
    distinct = distinct_mentions(classified)
    tone = float(np.mean([c.score for c in distinct])) if distinct else None
    return {"run_id": run.run_id, "model_id": run.model_id, "doc_id": d.doc_id, "origin": d.origin,
            "title": d.title, "date": d.date, "source": d.source, "url": d.url,
            "n_chars": d.n_chars, "n_chars_processed": analysed.n_chars_processed,
            "n_sentences": analysed.n_sentences, "n_mentions": len(classified),
            "n_actors": len({c.mention.actor.actor_id for c in classified}),
            "n_statements": analysed.n_statements, "tone": tone,
            "tone_label": None if tone is None else tone_label(tone)}


def tone_label(tone: float, band: float = 0.1) -> str:
    """Document tone is a mean of scores in [-1, 1]: a small band around 0 counts as neutral."""
    return "positive" if tone > band else "negative" if tone < -band else "neutral"


@beam.typehints.with_input_types(ClassifiedDocument)
@beam.typehints.with_output_types(TableRow)
class AggregateDocumentFn(beam.DoFn):
    """ClassifiedDocument -> its rows of documents, mentions, actor_sentiment and actor_stance."""

    def __init__(self, run: RunInfo, cues: frozenset = frozenset()):
        self.run = run
        self.cues = frozenset(cues)
        self.actors = beam.metrics.Metrics.counter("stancebeam", "actor_rows")
        self.documents = beam.metrics.Metrics.counter("stancebeam", "documents_written")

    def process(self, document: ClassifiedDocument):
        analysed = document.analysed
        classified = sorted(document.sentiments, key=lambda c: c.mention.index)
        d = analysed.document
        fault_point("analysis")
        self.documents.inc()
        # One stamp for all of this document's rows: readers keep the latest version per doc_id.
        version = {VERSION_COLUMN: dt.datetime.now(dt.timezone.utc)}
        yield TableRow("documents", d.date, {**document_row(analysed, classified, self.run), **version})
        for c in classified:
            yield TableRow("mentions", d.date, {**mention_row(c, self.run), **version})
        for row in actor_sentiment_rows(d.doc_id, classified, self.run):
            self.actors.inc()
            yield TableRow("actor_sentiment", d.date, {**row, **version})
        for row in stance_rows(document, classified, self.run, self.cues):
            yield TableRow("actor_stance", d.date, {**row, **version})


@beam.typehints.with_input_types(ClassifiedDocument)
@beam.typehints.with_output_types(TableRow)
class AggregateDocuments(beam.PTransform[PCollection[ClassifiedDocument], PCollection[TableRow]]):
    """ClassifiedDocuments -> rows for every table but errors (aggregation has no failures)."""

    def __init__(self, run: RunInfo, cues: frozenset = frozenset()):
        super().__init__()
        self.run = run
        self.cues = frozenset(cues)

    def expand(self, classified) -> PCollection[TableRow]:
        return classified | "Rows" >> beam.ParDo(AggregateDocumentFn(self.run, self.cues))
