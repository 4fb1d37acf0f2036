"""Reading files: format detection, one record per document, unreadable files as errors."""
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import DATA
from stancebeam.transforms.read import ListFileRanges, ReadRanges, detect_format, looks_binary, spread


class ReadDocuments(beam.PTransform):
    """The batch pipeline's reading, in one pass: globs -> `records` and read `errors`."""

    def __init__(self, patterns):
        super().__init__()
        self.patterns = patterns

    def expand(self, pbegin):
        listed = pbegin | ListFileRanges(self.patterns)
        read = spread(listed.main) | ReadRanges()
        return ReadOutputs(read.main, (listed.errors, read.errors) | beam.Flatten())


class ReadOutputs(NamedTuple):
    records: beam.PCollection
    errors: beam.PCollection


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


def check_ranges(pattern, expected_records, expected_ranges, **split_args):
    """Splits then reads `pattern`: (origin tail, payload) records and the number of ranges."""
    from stancebeam.transforms.elements import ERRORS, MAIN
    from stancebeam.transforms.read import SplitFilesFn

    with TestPipeline() as p:
        listed = (p | beam.Create([pattern]) | fileio.MatchAll() | fileio.ReadMatches()
                  | beam.ParDo(SplitFilesFn(**split_args)).with_outputs(ERRORS, main=MAIN))
        records = spread(listed.main) | ReadRanges()
        assert_that(listed.main | beam.combiners.Count.Globally(), equal_to([expected_ranges]),
                    label="ranges")
        assert_that(records.main | beam.Map(lambda r: (r.origin.split("/")[-1], r.payload)),
                    equal_to(expected_records), label="records")


def test_a_jsonl_file_splits_into_ranges_that_read_every_line_once(tmp_path):
    lines = [f'{{"id": {i}, "text": "{"x" * (i % 7)}"}}' for i in range(1, 41)]
    lines[9] = "   "  # a blank line: skipped, but still counted in the line numbers
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    expected = [(f"big.jsonl:{n}", line.encode()) for n, line in enumerate(lines, 1) if line.strip()]
    # ranges of at least four short lines' bytes: 10 ranges, the last one shorter
    check_ranges(str(tmp_path / "big.jsonl"), expected, 10, range_bytes=len(lines[0]) * 4 + 3)


def test_parquet_splits_by_row_groups_and_keeps_row_numbers(tmp_path):
    table = pa.table({"id": [f"p{i}" for i in range(10)], "text": [f"Body {i}." for i in range(10)]})
    pq.write_table(table, tmp_path / "docs.parquet", row_group_size=2)
    expected = [(f"docs.parquet#{i}", {"id": f"p{i}", "text": f"Body {i}."}) for i in range(10)]
    # row groups of 2 rows gathered into ranges of at least 4 rows: 4 + 4 + 2
    check_ranges(str(tmp_path / "docs.parquet"), expected, 3, range_rows=4)


def test_compressed_jsonl_is_one_range(tmp_path):
    import gzip

    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.write('{"id": 1, "text": "a"}\n{"id": 2, "text": "b"}\n')
    expected = [("c.jsonl.gz:1", b'{"id": 1, "text": "a"}'), ("c.jsonl.gz:2", b'{"id": 2, "text": "b"}')]
    check_ranges(str(tmp_path / "c.jsonl.gz"), expected, 1, range_bytes=10)


def test_a_file_matched_by_two_patterns_is_read_once(tmp_path):
    (tmp_path / "a.txt").write_text(" date 2020-01-01 T\n\nBody.")
    (tmp_path / "b.jsonl").write_text('{"id": 1, "text": "x"}\n')
    with TestPipeline() as p:
        out = p | ReadDocuments([str(tmp_path / "*"), str(tmp_path / "a.txt")])
        assert_that(out.records | beam.Map(lambda r: r.origin.split("/")[-1]), equal_to(["a.txt", "b.jsonl:1"]))
