"""Parses raw records (plain text, JSONL, Parquet rows) into documents or error records."""
from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from typing import Iterable, Iterator, Union

import apache_beam as beam
from apache_beam.pvalue import PCollection

from stancebeam.transforms.elements import (ERRORS, MAIN, Document, ErrorRecord, RawRecord, WithErrors, excerpt,
                                             outputs, stable_hash, with_errors)

# Field aliases seen in news dumps, most specific first.
ALIASES = {
    "id": ("id", "doc_id", "document_id", "guid", "uuid", "article_id"),
    "title": ("title", "headline", "heading"),
    "text": ("text", "body", "content", "article", "full_text", "maintext"),
    "date": ("date", "published_at", "published", "publish_date", "pub_date", "date_published",
             "datetime", "timestamp", "created_at"),
    "source": ("source", "publisher", "outlet", "site", "source_name"),
    "url": ("url", "link", "href", "source_url"),
}

# " date 2021-07-01 Headline", "Date: 2021-07-01 Headline", "2021-07-01 Headline", "date: Headline".
_HEADER = re.compile(r"^\s*(?:(?P<kw>date)\b\s*[:=]?\s*)?(?P<date>\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
                     r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)?\s*"
                     r"(?P<title>.*)$", re.IGNORECASE)
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
MIN_YEAR, MAX_YEAR = 1800, 2100


def parse_date(value) -> tuple[str | None, str | None]:
    """Returns (ISO date or None, warning or None) for the date formats news data uses."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:  # epoch seconds, or milliseconds when too large
            seconds = value / 1000 if value > 1e11 else value
            day = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).date()
        except (OverflowError, OSError, ValueError):
            return None, f"invalid date {value!r}"
    else:
        text = str(value).strip()
        day = None
        match = _ISO_DATE.match(text)
        try:
            if match:
                day = dt.date(*(int(g) for g in match.groups()))
            else:
                day = email.utils.parsedate_to_datetime(text).date()  # RFC 2822, as in RSS
        except (TypeError, ValueError, IndexError):
            return None, f"invalid date {text[:40]!r}"
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return None, f"implausible date {day.isoformat()}"
    return day.isoformat(), None


def make_doc_id(given, title: str, text: str) -> str:
    """The input's own id when it has one, otherwise a hash of the content: stable across runs."""
    if given is not None and str(given).strip():
        return str(given).strip()
    return "sha-" + stable_hash(title, text)


def pick(record: dict, field: str):
    for key in ALIASES[field]:
        if key in record and record[key] is not None:
            return record[key]
        for variant in (key.upper(), key.capitalize()):
            if variant in record and record[variant] is not None:
                return record[variant]
    return None


def decode_utf8(data: bytes) -> str:
    """Strict UTF-8 (BOM allowed); raises ValueError naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"not valid UTF-8 at byte {e.start}") from e


def parse_text_file(raw: RawRecord) -> Iterator[Union[Document, ErrorRecord]]:
    text = decode_utf8(raw.payload).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ValueError("empty document")
    header = _HEADER.match(lines[first])
    date_text = header.group("date")
    title = header.group("title").strip()
    body = "\n".join(lines[first + 1:]).strip()
    date, warning = parse_date(date_text)
    if header.group("kw") and not date_text:
        # "date <something not a date> headline": keep the headline, flag the date.
        warning = f"invalid or missing date in header line {lines[first][:60]!r}"
    yield from build_document(raw, None, title, body, date, None, None, warning)


def parse_mapping(raw: RawRecord, record) -> Iterator[Union[Document, ErrorRecord]]:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    text = pick(record, "text")
    if text is None:
        raise ValueError("missing field 'text' (or body/content)")
    if not isinstance(text, str):
        raise ValueError(f"field 'text' is {type(text).__name__}, not a string")
    title = pick(record, "title")
    date, warning = parse_date(pick(record, "date"))
    source, url = pick(record, "source"), pick(record, "url")
    yield from build_document(raw, pick(record, "id"), "" if title is None else str(title),
                              text.strip(), date, None if source is None else str(source),
                              None if url is None else str(url), warning)


def build_document(raw, given_id, title, body, date, source, url, date_warning):
    if not body.strip():
        raise ValueError("empty document: no body text" + (" (headline only)" if title else ""))
    # The analysed text is the headline, a blank line, then the body: headlines carry stance too.
    # Mention offsets refer to this text.
    full = f"{title}\n\n{body}" if title else body
    doc_id = make_doc_id(given_id, title, body)
    if date_warning:
        yield ErrorRecord(raw.origin, "parse", date_warning + ": document kept with a null date",
                          severity="warning", excerpt=excerpt(title or body), doc_id=doc_id)
    yield Document(doc_id=doc_id, origin=raw.origin, title=title, text=full, date=date,
                   source=source, url=url, n_chars=len(full))


def parse_record(raw: RawRecord) -> Iterator[Union[Document, ErrorRecord]]:
    if raw.fmt == "text":
        yield from parse_text_file(raw)
    elif raw.fmt == "jsonl":
        line = decode_utf8(raw.payload)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"malformed JSON: {e.msg} at column {e.colno}") from e
        yield from parse_mapping(raw, record)
    elif raw.fmt == "parquet":
        yield from parse_mapping(raw, raw.payload)
    else:
        raise ValueError(f"unknown record format {raw.fmt!r}")


@beam.typehints.with_input_types(RawRecord)
@outputs(Document)
class ParseDocumentFn(beam.DoFn):
    """RawRecord -> Document (main output) or ErrorRecord (`errors` output); never raises."""

    def __init__(self, metrics_namespace: str = "stancebeam"):
        self.parsed = beam.metrics.Metrics.counter(metrics_namespace, "documents_parsed")
        self.rejected = beam.metrics.Metrics.counter(metrics_namespace, "documents_rejected_parse")

    def process(self, raw: RawRecord):
        try:
            results = list(parse_record(raw))
        except Exception as e:  # any parse failure becomes a dead letter, with its origin
            self.rejected.inc()
            reason = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                raw.origin, "parse", reason, excerpt=excerpt(raw.payload)))
            return
        for item in results:
            if isinstance(item, ErrorRecord):
                yield beam.pvalue.TaggedOutput(ERRORS, item)
            else:
                self.parsed.inc()
                yield item


@beam.typehints.with_input_types(RawRecord)
class ParseDocuments(beam.PTransform[PCollection[RawRecord], WithErrors[Document]]):
    """Raw records -> documents, and errors for what cannot be parsed."""

    def __init__(self, metrics_namespace: str = "stancebeam"):
        super().__init__()
        self.metrics_namespace = metrics_namespace

    def expand(self, records) -> WithErrors[Document]:
        return with_errors(records | "Parse" >> beam.ParDo(ParseDocumentFn(self.metrics_namespace)).with_outputs(
            ERRORS, main=MAIN))


def doc_id_key(document: Document) -> tuple[str, Document]:
    return document.doc_id, document


@beam.typehints.with_input_types(tuple[str, Iterable[Document]])
@outputs(Document)
class KeepFirstPerIdFn(beam.DoFn):
    """(doc_id, [documents]) -> the document from the smallest origin, the rest as duplicates."""

    def process(self, element):
        _, docs = element
        docs = sorted(docs, key=lambda d: d.origin)
        yield docs[0]
        for dup in docs[1:]:
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                dup.origin, "dedupe", f"duplicate document id {dup.doc_id!r} (kept {docs[0].origin})",
                excerpt=excerpt(dup.title or dup.text), doc_id=dup.doc_id, date=dup.date))


@beam.typehints.with_input_types(Document)
class DeduplicateDocuments(beam.PTransform[PCollection[Document], WithErrors[Document]]):
    """One document per doc_id (per window), so repeated inputs never double-count rows."""

    def expand(self, documents) -> WithErrors[Document]:
        return with_errors(documents
                           | "KeyByDocId" >> beam.Map(doc_id_key).with_output_types(tuple[str, Document])
                           | "GroupByDocId" >> beam.GroupByKey()
                           | "KeepFirst" >> beam.ParDo(KeepFirstPerIdFn()).with_outputs(ERRORS, main=MAIN))


# Batch deduplication in two passes over the input. Grouping whole documents by doc_id would
# make the local runner hold the corpus in memory (a GroupByKey keeps its input there); instead
# a first pass groups only (doc_id, origin) pairs, and the second pass drops the copies it found.


def id_and_origin(document: Document) -> tuple[str, str]:
    return document.doc_id, document.origin


def extra_copies(element):
    """(doc_id, [origins]) -> (origin, kept origin) for every copy but the smallest origin."""
    _, origins = element
    origins = sorted(set(origins))
    for origin in origins[1:]:
        yield origin, origins[0]


@beam.typehints.with_input_types(Document)
@beam.typehints.with_output_types(tuple[str, str])
class FindDuplicates(beam.PTransform[PCollection[Document], PCollection[tuple[str, str]]]):
    """Documents -> (origin of a duplicate, origin of the copy kept): small, usually empty."""

    def expand(self, documents) -> PCollection[tuple[str, str]]:
        return (documents
                | "IdAndOrigin" >> beam.Map(id_and_origin).with_output_types(tuple[str, str])
                | "GroupOriginsById" >> beam.GroupByKey()
                | "ExtraCopies" >> beam.FlatMap(extra_copies).with_output_types(tuple[str, str]))


@beam.typehints.with_input_types(Document, dict[str, str])  # the side input: FindDuplicates' pairs
@outputs(Document)
class DropDuplicatesFn(beam.DoFn):
    """Passes documents through, except the copies in the side input (`errors` output)."""

    def process(self, document: Document, duplicates: dict):
        kept = duplicates.get(document.origin)
        if kept is None:
            yield document
            return
        yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
            document.origin, "dedupe", f"duplicate document id {document.doc_id!r} (kept {kept})",
            excerpt=excerpt(document.title or document.text), doc_id=document.doc_id, date=document.date))


@beam.typehints.with_input_types(Document)
class DropDuplicates(beam.PTransform[PCollection[Document], WithErrors[Document]]):
    """Documents minus the copies `duplicates` (from FindDuplicates on the same input) names."""

    def __init__(self, duplicates: PCollection[tuple[str, str]]):
        super().__init__()
        self.duplicates = duplicates

    def expand(self, documents) -> WithErrors[Document]:
        return with_errors(documents | "DropCopies" >> beam.ParDo(
            DropDuplicatesFn(), beam.pvalue.AsDict(self.duplicates)).with_outputs(ERRORS, main=MAIN))
