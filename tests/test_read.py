"""Reading files: format detection, one record per document, unreadable files as errors."""
import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import DATA
from transforms.read import ReadDocuments, detect_format, looks_binary


def test_detect_format():
    assert detect_format("gs://b/x.jsonl.gz", b"") == "jsonl"
    assert detect_format("/x/y.parquet", b"") == "parquet"
    assert detect_format("/x/noext", b"PAR1....") == "parquet"
    assert detect_format("/x/a.txt", b"{") == "text"
    assert detect_format("/x/a.txt", b"", "jsonl") == "jsonl"
    assert looks_binary(b"ab\x00c") and not looks_binary("café".encode())


def test_reads_every_format_and_reports_unreadable_files(tmp_path):
    table = pa.table({"id": ["p1", "p2"], "title": ["A", "B"], "text": ["Body a.", "Body b."],
                      "date": ["2020-01-01", None]})
    pq.write_table(table, tmp_path / "docs.parquet")
    (tmp_path / "a.txt").write_text(" date 2020-01-01 T\n\nBody.")
    (tmp_path / "b.jsonl").write_text('{"id": 1, "text": "x"}\n\n{"id": 2, "text": "y"}\n')
    (tmp_path / "c.txt").write_bytes(b"\x00\x01binary")
    (tmp_path / "d.parquet").write_bytes(b"PAR1 garbage")
    with TestPipeline() as p:
        out = p | ReadDocuments([str(tmp_path / "*")])
        assert_that(out.records | "Origins" >> beam.Map(lambda r: (r.origin.split("/")[-1], r.fmt)),
                    equal_to([("a.txt", "text"), ("b.jsonl:1", "jsonl"), ("b.jsonl:3", "jsonl"),
                              ("docs.parquet#0", "parquet"), ("docs.parquet#1", "parquet")]),
                    label="records")
        assert_that(out.errors | "Errors" >> beam.Map(lambda e: (e.origin.split("/")[-1], e.stage)),
                    equal_to([("c.txt", "read"), ("d.parquet", "read")]), label="errors")


def test_corrupt_fixture_folder_yields_records_or_errors():
    with TestPipeline() as p:
        out = p | ReadDocuments([str(DATA / "corrupt" / "*")])
        total = ((out.records, out.errors) | beam.Flatten() | beam.combiners.Count.Globally())
        # mixed.jsonl: 6 non-blank lines; 7 other files, one input each.
        assert_that(total, equal_to([13]))
