"""Reads input files from any Beam filesystem into raw records, one per input document."""
from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import PCollection

from stancebeam.transforms.elements import (ERRORS, MAIN, ErrorRecord, FileRange, RawRecord, WithErrors, excerpt,
                                             outputs, with_errors)

log = logging.getLogger(__name__)

FORMATS = ("auto", "text", "jsonl", "parquet")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
               ".parquet": "parquet", ".pq": "parquet"}
# Past this a text file is still read as a document, but only its head: the rest can never reach
# the model anyway (see max_doc_chars), and reading a stray multi-GB file would exhaust memory.
MAX_TEXT_FILE_BYTES = 8 * 1024 * 1024
# Read ranges: small enough that a corpus in one file still spreads evenly over workers,
# large enough that a range's overhead (open, seek) is negligible.
RANGE_BYTES = 64 * 1024
RANGE_ROWS = 256


def detect_format(path: str, head: bytes, requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    name = path.lower()
    for suffix in (".gz", ".bz2", ".zst", ".deflate"):
        name = name.removesuffix(suffix)
    for ext, fmt in _EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    if head.startswith(b"PAR1"):
        return "parquet"
    return "text"


def looks_binary(head: bytes) -> bool:
    """NUL bytes do not occur in text in any of the encodings we accept."""
    return b"\x00" in head


@beam.typehints.with_input_types(fileio.ReadableFile)
@outputs(FileRange)
class SplitFilesFn(beam.DoFn):
    """One matched file -> FileRanges of about `range_bytes` (jsonl) / `range_rows` (parquet).

    Splitting files is what lets several workers share one large JSONL or Parquet file without
    shuffling its documents (a shuffle would hold them all in the local runner's memory).
    Binary and unreadable files go to the `errors` output.
    """

    def __init__(self, input_format: str = "auto", range_bytes: int = RANGE_BYTES,
                 range_rows: int = RANGE_ROWS):
        self.input_format = input_format
        self.range_bytes = range_bytes
        self.range_rows = range_rows
        self.files = beam.metrics.Metrics.counter("stancebeam", "files_read")

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        self.files.inc()
        try:
            with readable.open() as f:
                head = f.read(8192)
                fmt = detect_format(path, head, self.input_format)
                if fmt == "parquet":
                    yield from self._parquet_ranges(path)
                elif looks_binary(head):
                    yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                        path, "read", "binary file (contains NUL bytes)", excerpt=excerpt(head)))
                elif fmt == "jsonl" and not is_compressed(path):
                    f.seek(0)
                    yield from self._jsonl_ranges(path, f)
                else:  # a text document, or compressed JSONL (which cannot be entered mid-stream)
                    yield FileRange(path, fmt)
        except Exception as e:  # a broken file must not stop the run
            log.warning("cannot read %s: %s", path, e)
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                path, "read", f"unreadable file: {type(e).__name__}: {e}"))

    def _jsonl_ranges(self, path, f):
        start = position = 0
        first_line = line_number = 1
        for line in iter(f.readline, b""):
            position += len(line)
            line_number += 1
            if position - start >= self.range_bytes:
                yield FileRange(path, "jsonl", start, position, first_line)
                start, first_line = position, line_number
        if position > start or position == 0:
            yield FileRange(path, "jsonl", start, None, first_line)

    def _parquet_ranges(self, path):
        import pyarrow.parquet as pq

        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            metadata = pq.ParquetFile(f).metadata  # a corrupt file fails here, as an error row
        start = row = first_row = 0
        for group in range(metadata.num_row_groups):
            row += metadata.row_group(group).num_rows
            if row - first_row >= self.range_rows:
                yield FileRange(path, "parquet", start, group + 1, first_row=first_row)
                start, first_row = group + 1, row
        if start < metadata.num_row_groups:
            yield FileRange(path, "parquet", start, metadata.num_row_groups, first_row=first_row)


def is_compressed(path: str) -> bool:
    return CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED


@beam.typehints.with_input_types(FileRange)
@outputs(RawRecord)
class ReadRangeFn(beam.DoFn):
    """FileRange -> raw records, one per input document; read failures go to `errors`."""

    def process(self, file_range: FileRange):
        try:
            if file_range.fmt == "parquet":
                yield from self._parquet(file_range)
            elif file_range.fmt == "jsonl":
                yield from self._lines(file_range)
            else:
                yield from self._text(file_range.path)
        except Exception as e:  # a broken file must not stop the run
            log.warning("cannot read %s: %s", file_range.path, e)
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                file_range.path, "read", f"unreadable file: {type(e).__name__}: {e}"))

    @staticmethod
    def _text(path):
        with FileSystems.open(path) as f:
            data = f.read(MAX_TEXT_FILE_BYTES + 1)
        if len(data) > MAX_TEXT_FILE_BYTES:
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                path, "read", f"file larger than {MAX_TEXT_FILE_BYTES} bytes: "
                "only its head is read", severity="warning", excerpt=excerpt(data)))
            data = data[:MAX_TEXT_FILE_BYTES]
        yield RawRecord(path, "text", data)

    @staticmethod
    def _lines(r: FileRange):
        # Stream line by line: a JSONL file may be far larger than memory.
        with FileSystems.open(r.path) as f:
            if r.start:
                f.seek(r.start)
            position = r.start
            for number, line in enumerate(iter(f.readline, b""), r.first_line):
                if r.stop is not None and position >= r.stop:
                    break
                position += len(line)
                if line.strip():
                    yield RawRecord(f"{r.path}:{number}", "jsonl", line.rstrip(b"\r\n"))

    @staticmethod
    def _parquet(r: FileRange):
        import pyarrow.parquet as pq

        # Parquet needs random access: open through FileSystems without decompression.
        with FileSystems.open(r.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            parquet = pq.ParquetFile(f)
            row = r.first_row
            for batch in parquet.iter_batches(batch_size=512, row_groups=range(r.start, r.stop)):
                for record in batch.to_pylist():
                    yield RawRecord(f"{r.path}#{row}", "parquet", record)
                    row += 1


class ListFileRanges(beam.PTransform[beam.pvalue.PBegin, WithErrors[FileRange]]):
    """Globs (any Beam filesystem) -> FileRanges spread over workers, and read errors."""

    def __init__(self, patterns: list[str], input_format: str = "auto"):
        super().__init__()
        if input_format not in FORMATS:
            raise ValueError(f"unknown input format {input_format!r}; expected one of {FORMATS}")
        self.patterns = list(patterns)
        self.input_format = input_format

    def expand(self, pbegin) -> WithErrors[FileRange]:
        return with_errors(
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "MatchFiles" >> fileio.MatchAll()
            # A file that several patterns match is read once. The grouping also spreads files
            # over workers: splitting a file means scanning it, so that work is shared too.
            | "KeyByPath" >> beam.Map(lambda metadata: (metadata.path, metadata))
            | "SpreadFiles" >> beam.GroupByKey()
            | "OncePerPath" >> beam.Map(lambda path_matches: next(iter(path_matches[1])))
            | "ReadMatches" >> fileio.ReadMatches()
            | "SplitFiles" >> beam.ParDo(SplitFilesFn(self.input_format)).with_outputs(ERRORS, main=MAIN))


@beam.typehints.with_input_types(FileRange)
class ReadRanges(beam.PTransform[PCollection[FileRange], WithErrors[RawRecord]]):
    """FileRanges -> raw records, one per input document, and read failures."""

    def expand(self, ranges) -> WithErrors[RawRecord]:
        return with_errors(ranges | "ReadRange" >> beam.ParDo(ReadRangeFn()).with_outputs(ERRORS, main=MAIN))


def spread(ranges: PCollection[FileRange]) -> PCollection[FileRange]:
    # Only ranges (a few numbers each) cross this shuffle, never the documents.
    return ranges | "SpreadRanges" >> beam.Reshuffle()

