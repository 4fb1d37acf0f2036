"""Sentences, actor mentions and speakers of each document, with spaCy and the gazetteer."""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Iterable, Optional

import apache_beam as beam
from apache_beam.pvalue import PCollection
from apache_beam.utils import shared

from stancebeam.classifier.resources import resolve_file
from stancebeam.transforms.gazetteer import PERSON, Actor, Gazetteer, clean_surface, unknown_actor
from stancebeam.transforms.memory import release_free_memory
from stancebeam.transforms.elements import (ERRORS, MAIN, AnalysedDocument, Document, ErrorRecord, Mention,
                                             WithErrors, excerpt, outputs, with_errors)
from stancebeam.transforms.speakers import ARTICLE, CUE_PRIORITY, continue_quotes, evaluation_cues, find_speaker

log = logging.getLogger(__name__)
ACTOR_LABELS = frozenset({"PERSON", "NORP", "ORG", "GPE"})
GAZETTEER_LABEL = "GAZETTEER"
# Components that sentence splitting, the parse (for speakers) and NER do not need.
UNUSED_PIPES = ("tagger", "attribute_ruler", "lemmatizer", "senter")


def split_bracketed_hyphens(nlp) -> None:
    """Splits "[North Korean]-China" and "(US)-China" so both names become tokens."""
    from spacy.util import compile_infix_regex

    infixes = list(nlp.Defaults.infixes) + [r"(?<=[A-Za-z])[\]\)](?=-)", r"(?<=[\]\)])-(?=[A-Za-z])"]
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer


def truncate_text(text: str, limit: int) -> str:
    """Cuts at the last whitespace before `limit`, so no word is split."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[:cut if cut > limit // 2 else limit]


def _raw_spans(doc, matcher, gazetteer: Gazetteer):
    """(start_token, end_token, Actor, ner_label): dictionary matches win over NER spans."""
    from spacy.util import filter_spans

    # A dictionary name inside a longer place name is not that actor: "America" in
    # "Latin America", "Jersey" in "New Jersey".
    places = [e for e in doc.ents if e.label_ in ("GPE", "LOC", "FAC")]
    matches = [doc[s:e] for _, s, e in matcher(doc)
               if not any(p.start <= s and e <= p.end and (e - s) < len(p) for p in places)]
    gaz = filter_spans(matches)
    taken = set()
    spans = []
    for span in gaz:
        actor = gazetteer.lookup(span.text)
        if actor:
            spans.append((span.start, span.end, actor, GAZETTEER_LABEL))
            taken.update(range(span.start, span.end))
    for ent in doc.ents:
        if ent.label_ not in ACTOR_LABELS or taken.intersection(range(ent.start, ent.end)):
            continue
        if not clean_surface(ent.text):
            continue
        actor = gazetteer.lookup(ent.text) or unknown_actor(ent.text, ent.label_)
        spans.append((ent.start, ent.end, actor, ent.label_))
    spans.sort(key=lambda s: s[0])
    return spans


def link_short_forms(doc, spans):
    """Within a document, joins a short name to the full person name it abbreviates.

    "Kim" -> "Kim Jong Un", "Wang" -> "Wang Wenbin": a mention whose words are the first or last
    words of a longer person name in the same document takes that person's actor. Among several
    candidates a gazetteer person wins ("Biden" -> Joe Biden over Hunter Biden), then the nearest
    preceding full name, then the first following one. The NER label of the short form is not
    trusted (spaCy tags "Wang" as ORG at times); dictionary matches are never relinked.
    """
    people = [(s, e, actor, label == GAZETTEER_LABEL) for s, e, actor, label in spans
              if actor.actor_type == PERSON and e - s > 1]
    linked = []
    for start, end, actor, label in spans:
        if label != GAZETTEER_LABEL and not any(s == start and e == end for s, e, _, _ in people):
            words = [w for w in (clean_surface(t.text) for t in doc[start:end]) if w]
            candidates = []
            for s, e, person, known in people:
                full = [clean_surface(t.text) for t in doc[s:e]]
                if 0 < len(words) < len(full) and (full[:len(words)] == words or full[-len(words):] == words):
                    # gazetteer people first, then the nearest preceding, then the nearest following
                    candidates.append(((not known, s > start, abs(start - s)), person))
            if candidates:
                actor = min(candidates, key=lambda c: c[0])[1]
        linked.append((start, end, actor, label))
    return linked


def mention_cue(cues: dict[int, str], start: int, end: int) -> Optional[str]:
    """The cue on any of a mention's tokens; a victim's cue wins over `criticised` (see speakers)."""
    found = {cues[i] for i in range(start, end) if i in cues}
    for cue in CUE_PRIORITY:
        if cue in found:
            return cue
    return None


class ActorExtractor:
    """Holds spaCy and the gazetteer; turns documents into AnalysedDocuments."""

    def __init__(self, spacy_model: str, gazetteer_path: str, max_doc_chars: int):
        import spacy
        from spacy.matcher import PhraseMatcher

        self.nlp = spacy.load(spacy_model, exclude=list(UNUSED_PIPES))
        split_bracketed_hyphens(self.nlp)
        self.gazetteer = Gazetteer.from_yaml(resolve_file(gazetteer_path))  # a reference: see resources.py
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="ORTH")
        phrases = list(self.gazetteer.phrases)
        self.matcher.add("GAZETTEER", list(self.nlp.tokenizer.pipe(phrases)))
        self.max_doc_chars = max_doc_chars

    def analyse(self, documents: list[Document], batch_size: int = 16) -> Iterable[tuple]:
        """Yields (document, AnalysedDocument or None, warning or None) in input order."""
        texts = [truncate_text(d.text, self.max_doc_chars) for d in documents]
        # spaCy keeps every new word it sees in its vocabulary for the life of the process; in a
        # memory zone those entries are freed at the end of the batch, so memory stays flat over
        # a corpus. Nothing spaCy-owned outlives the zone: the results are plain Python values.
        with self.nlp.memory_zone():
            for document, text, doc in zip(documents, texts, self.nlp.pipe(texts, batch_size=batch_size)):
                warning = None
                if len(text) < len(document.text):
                    warning = (f"document has {len(document.text)} characters: only the first "
                               f"{len(text)} were analysed (max_doc_chars)")
                yield document, self._analyse_one(document, text, doc), warning

    def _analyse_one(self, document: Document, text: str, doc) -> AnalysedDocument:
        spans = link_short_forms(doc, _raw_spans(doc, self.matcher, self.gazetteer))
        by_token: dict[int, Actor] = {}
        for start, end, actor, _ in spans:
            for i in range(start, end):
                by_token[i] = actor
        person_starts = [(s, actor) for s, _, actor, _ in spans if actor.actor_type == PERSON]

        def actor_at(i: int) -> Optional[str]:
            actor = by_token.get(i)
            return actor.actor_id if actor else None

        def last_person(i: int) -> Optional[str]:
            before = [actor for s, actor in person_starts if s < i]
            return before[-1].actor_id if before else None

        sentences = list(doc.sents)
        holders = continue_quotes([sent.text for sent in sentences],
                                  [find_speaker(sent, actor_at, last_person) or ARTICLE for sent in sentences])
        cues = {i: cue for sent in sentences for i, cue in evaluation_cues(sent).items()}
        sent_of_token = {}
        for k, sent in enumerate(sentences):
            for i in range(sent.start, sent.end):
                sent_of_token[i] = k
        actors = {a.actor_id: a for _, _, a, _ in spans}
        mentions = []
        for index, (start, end, actor, label) in enumerate(spans):
            k = sent_of_token[start]
            sent = sentences[k]
            span = doc[start:end]
            # Keep the display form's offsets: drop a leading "the" and a trailing possessive.
            surface = clean_surface(span.text) or span.text
            offset = span.text.find(surface)
            s_char = span.start_char + max(offset, 0)
            mentions.append(Mention(
                doc_id=document.doc_id, index=index, actor=actor, text=surface,
                start=s_char, end=s_char + len(surface), ner_label=label, sentence_index=k,
                sentence=sent.text.strip(), sentence_start=sent.start_char + (len(sent.text) - len(sent.text.lstrip())),
                holder_id=holders[k], cue=mention_cue(cues, start, end)))
        # A holder that is itself an actor of the document has its name there already.
        return AnalysedDocument(
            document=document, n_chars_processed=len(text), n_sentences=len(sentences),
            n_statements=sum(h != ARTICLE for h in holders), mentions=tuple(mentions), actors=actors)


@beam.typehints.with_input_types(list[Document])
@outputs(AnalysedDocument)
class ExtractActorsFn(beam.DoFn):
    """Batches of documents -> AnalysedDocuments; spaCy loads once per worker in setup()."""

    def __init__(self, spacy_model: str, gazetteer_path: str, max_doc_chars: int,
                 progress_every: int = 500):
        self.spacy_model = spacy_model
        self.gazetteer_path = gazetteer_path
        self.max_doc_chars = max_doc_chars
        self.progress_every = progress_every
        self.shared_handle = shared.Shared()
        self.mentions = beam.metrics.Metrics.counter("stancebeam", "mentions")
        self.analysed = beam.metrics.Metrics.counter("stancebeam", "documents_analysed")

    def setup(self):
        # One spaCy per process, shared by every instance of this DoFn: the bundle-based
        # (streaming) DirectRunner sets up a new DoFn instance for each bundle.
        tag = f"{self.spacy_model}|{self.gazetteer_path}|{self.max_doc_chars}"
        self.extractor = self.shared_handle.acquire(
            lambda: ActorExtractor(self.spacy_model, self.gazetteer_path, self.max_doc_chars), tag=tag)
        self.seen, self.started = 0, time.time()

    def process(self, batch: list[Document]):
        try:
            results = list(self.extractor.analyse(batch))
        except Exception:  # one bad document must not sink its batch: retry one by one
            results = []
            for document in batch:
                try:
                    results.extend(self.extractor.analyse([document]))
                except Exception as e:
                    results.append((document, None, f"{type(e).__name__}: {e}"))
        release_free_memory()
        for document, analysed, warning in results:
            if analysed is None:
                yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                    document.origin, "nlp", f"analysis failed: {warning}", excerpt=excerpt(document.text),
                    doc_id=document.doc_id, date=document.date))
                continue
            if warning:
                yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                    document.origin, "nlp", warning, severity="warning",
                    excerpt=excerpt(document.text), doc_id=document.doc_id, date=document.date))
            self.mentions.inc(len(analysed.mentions))
            self.analysed.inc()
            self._progress()
            yield analysed

    def _progress(self):
        self.seen += 1
        if self.seen % self.progress_every == 0:
            rate = self.seen / max(time.time() - self.started, 1e-9)
            log.info("actors: %d documents analysed in this worker (%.1f docs/s)", self.seen, rate)


@beam.typehints.with_input_types(Document)
class ExtractActors(beam.PTransform[PCollection[Document], WithErrors[AnalysedDocument]]):
    """Documents -> AnalysedDocuments, and the documents spaCy failed on (or had to cut)."""

    def __init__(self, spacy_model: str, gazetteer_path: str, max_doc_chars: int = 100_000,
                 batch_size: int = 16, batch_chars: int = 40_000):
        super().__init__()
        self.fn = ExtractActorsFn(spacy_model, gazetteer_path, max_doc_chars)
        self.batch_size = batch_size
        self.weight = DocumentWeight(max(1, batch_chars // max(1, batch_size)), max_doc_chars)

    def expand(self, documents) -> WithErrors[AnalysedDocument]:
        # A batch holds at most `batch_size` documents and, beyond single long documents, about
        # `batch_chars` characters: spaCy's working memory grows with the characters it parses
        # at once (about 3 MB per 1,000), so a few long articles together made memory spikes.
        # The batch size is fixed (min = max): Beam's adaptive sizing starts at 1, and over 200
        # articles most spaCy calls then held a single document (about 5% slower, timed by hand).
        return with_errors(documents
                           | "BatchDocuments" >> beam.BatchElements(
                               min_batch_size=self.batch_size, max_batch_size=self.batch_size,
                               element_size_fn=self.weight)
                           | "Analyse" >> beam.ParDo(self.fn).with_outputs(ERRORS, main=MAIN))


@dataclasses.dataclass(frozen=True)
class DocumentWeight:
    """A document's weight in a spaCy batch: 1 per started `unit_chars` of analysed text."""

    unit_chars: int
    max_doc_chars: int

    def __call__(self, document: Document) -> int:
        return max(1, -(-min(len(document.text), self.max_doc_chars) // self.unit_chars))
