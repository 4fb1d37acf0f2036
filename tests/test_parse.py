"""Parsing: the text format and its variants, JSONL/Parquet fields, dates, dead letters."""
import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from stancebeam.transforms.parse import DeduplicateDocuments, DropDuplicates, FindDuplicates, ParseDocuments, parse_date, parse_record
from stancebeam.transforms.elements import Document, ErrorRecord, RawRecord


def parse(fmt, payload, origin="mem"):
    return list(parse_record(RawRecord(origin, fmt, payload)))


def test_sample_format_header_is_date_and_headline():
    [doc] = parse("text", " date 2021-07-01 Kim blasts forces\n\nBody one.\n\nBody two.".encode())
    assert doc.date == "2021-07-01"
    assert doc.title == "Kim blasts forces"
    assert doc.text == "Kim blasts forces\n\nBody one.\n\nBody two."


@pytest.mark.parametrize("header,date,title", [
    ("Date: 2020-03-05 Putin warns", "2020-03-05", "Putin warns"),
    ("2020/03/05 Putin warns", "2020-03-05", "Putin warns"),
    ("date 2020-03-05T10:00:00Z Putin warns", "2020-03-05", "Putin warns"),
    ("Putin warns NATO", None, "Putin warns NATO"),
])
def test_header_variants(header, date, title):
    docs = [d for d in parse("text", f"\n{header}\r\n\r\nBody text.".encode()) if isinstance(d, Document)]
    assert (docs[0].date, docs[0].title) == (date, title)


def test_invalid_date_keeps_document_with_null_date_and_warns():
    out = parse("text", b" date 2020-13-45 Headline\n\nBody.")
    warnings = [e for e in out if isinstance(e, ErrorRecord)]
    [doc] = [d for d in out if isinstance(d, Document)]
    assert doc.date is None and doc.title == "Headline"
    assert warnings[0].severity == "warning" and "invalid date" in warnings[0].reason


@pytest.mark.parametrize("value,expected", [
    ("2020-11-10T08:00:00Z", "2020-11-10"), ("Tue, 10 Nov 2020 08:00:00 +0000", "2020-11-10"),
    (1605000000, "2020-11-10"), ("", None), (None, None), ("0001-01-01", None), ("yesterday", None),
])
def test_parse_date(value, expected):
    assert parse_date(value)[0] == expected


def test_jsonl_aliases():
    line = json.dumps({"doc_id": "a1", "headline": "H", "body": "B text", "published_at": "2020-01-02",
                       "publisher": "P", "link": "http://x"}).encode()
    [doc] = parse("jsonl", line)
    assert (doc.doc_id, doc.title, doc.date, doc.source, doc.url) == ("a1", "H", "2020-01-02", "P", "http://x")


def test_doc_id_is_stable_content_hash_without_id():
    a = parse("text", b" date 2020-01-01 T\n\nSame body.", origin="a.txt")[0]
    b = parse("text", b" date 2020-01-01 T\n\nSame body.", origin="b.txt")[0]
    assert a.doc_id == b.doc_id and a.doc_id.startswith("sha-")


@pytest.mark.parametrize("fmt,payload,reason", [
    ("jsonl", b'{"id": 1, "text": ', "malformed JSON"),
    ("jsonl", b'[1, 2]', "expected a JSON object"),
    ("jsonl", b'{"id": 1}', "missing field"),
    ("jsonl", b'{"id": 1, "text": 5}', "not a string"),
    ("jsonl", b'{"id": 1, "text": "  "}', "empty document"),
    ("text", b"", "empty document"),
    ("text", b" \n\t\n", "empty document"),
    ("text", b" date 2020-01-01 Headline only\n", "headline only"),
    ("text", "caf\xe9".encode("latin-1"), "not valid UTF-8"),
])
def test_bad_records_raise_with_reason(fmt, payload, reason):
    with pytest.raises(ValueError, match=reason):
        parse(fmt, payload)


def test_parse_documents_transform_routes_errors():
    raws = [RawRecord("good.txt", "text", b" date 2020-01-01 T\n\nBody."),
            RawRecord("bad.jsonl:3", "jsonl", b"{not json"),
            RawRecord("p.parquet#0", "parquet", {"id": "p0", "text": "Parquet body", "date": None})]
    with TestPipeline() as p:
        out = p | beam.Create(raws) | ParseDocuments()
        assert_that(out.main | "Ids" >> beam.Map(lambda d: d.origin),
                    equal_to(["good.txt", "p.parquet#0"]), label="documents")
        assert_that(out.errors | "Errs" >> beam.Map(lambda e: (e.origin, e.stage)),
                    equal_to([("bad.jsonl:3", "parse")]), label="errors")


def test_deduplicate_keeps_one_and_reports_the_rest():
    docs = [Document("d1", "b.jsonl:1", "T", "x", None), Document("d1", "a.jsonl:1", "T", "x", None),
            Document("d2", "c.jsonl:1", "T", "y", None)]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | DeduplicateDocuments()
        assert_that(out.main | "Origins" >> beam.Map(lambda d: d.origin),
                    equal_to(["a.jsonl:1", "c.jsonl:1"]), label="kept")
        assert_that(out.errors | "Dups" >> beam.Map(lambda e: (e.origin, e.stage)),
                    equal_to([("b.jsonl:1", "dedupe")]), label="duplicates")


def test_two_pass_deduplication_matches_the_grouping_one():
    docs = [Document("d1", "b.jsonl:1", "T", "x", None), Document("d1", "a.jsonl:1", "T", "x", None),
            Document("d1", "c.jsonl:7", "T", "x", "2020-01-01"), Document("d2", "c.jsonl:1", "T", "y", None)]
    with TestPipeline() as p:
        documents = p | beam.Create(docs)
        out = documents | DropDuplicates(documents | FindDuplicates())
        assert_that(out.main | "Origins" >> beam.Map(lambda d: d.origin),
                    equal_to(["a.jsonl:1", "c.jsonl:1"]), label="kept")
        assert_that(out.errors | "Dups" >> beam.Map(lambda e: (e.origin, e.stage, e.reason, e.date)),
                    equal_to([("b.jsonl:1", "dedupe", "duplicate document id 'd1' (kept a.jsonl:1)", None),
                              ("c.jsonl:7", "dedupe", "duplicate document id 'd1' (kept a.jsonl:1)",
                               "2020-01-01")]), label="duplicates")
