"""Reads input files from any Beam filesystem into raw records, one per input document."""
from __future__ import annotations

import itertools
import logging

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.records import ErrorRecord, RawRecord, excerpt

log = logging.getLogger(__name__)

FORMATS = ("auto", "text", "jsonl", "parquet")
ERRORS = "errors"
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
               ".parquet": "parquet", ".pq": "parquet"}
# Past this a text file is still read as a document, but only its head: the rest can never reach
# the model anyway (see max_doc_chars), and reading a stray multi-GB file would exhaust memory.
MAX_TEXT_FILE_BYTES = 8 * 1024 * 1024


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


class ReadRecordsFn(beam.DoFn):
    """Splits one matched file into raw records; unreadable files go to the `errors` output."""

    def __init__(self, input_format: str = "auto"):
        self.input_format = input_format
        self.files = beam.metrics.Metrics.counter("stancebeam", "files_read")

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        self.files.inc()
        try:
            with readable.open() as f:
                head = f.read(8192)
                fmt = detect_format(path, head, self.input_format)
                if fmt == "parquet":
                    yield from self._parquet(path)
                    return
                if looks_binary(head):
                    yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                        path, "read", "binary file (contains NUL bytes)", excerpt=excerpt(head)))
                    return
                if fmt == "jsonl":
                    yield from self._lines(path, head, f)
                else:
                    rest = f.read(MAX_TEXT_FILE_BYTES - len(head) + 1)
                    data = head + rest
                    if len(data) > MAX_TEXT_FILE_BYTES:
                        yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                            path, "read", f"file larger than {MAX_TEXT_FILE_BYTES} bytes: "
                            "only its head is read", severity="warning", excerpt=excerpt(data)))
                        data = data[:MAX_TEXT_FILE_BYTES]
                    yield RawRecord(path, "text", data)
        except Exception as e:  # a broken file must not stop the run
            log.warning("cannot read %s: %s", path, e)
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                path, "read", f"unreadable file: {type(e).__name__}: {e}"))

    def _lines(self, path, head, f):
        # Stream line by line: a JSONL file may be far larger than memory.
        first = (head + f.readline()).splitlines()
        for number, line in enumerate(itertools.chain(first, iter(f.readline, b"")), 1):
            if line.strip():
                yield RawRecord(f"{path}:{number}", "jsonl", line.rstrip(b"\r\n"))

    def _parquet(self, path):
        import pyarrow.parquet as pq

        # Parquet needs random access: open through FileSystems without decompression.
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            parquet = pq.ParquetFile(f)
            row = 0
            for batch in parquet.iter_batches(batch_size=512):
                for record in batch.to_pylist():
                    yield RawRecord(f"{path}#{row}", "parquet", record)
                    row += 1


class ReadDocuments(beam.PTransform):
    """Globs (any Beam filesystem) -> raw records, plus an `errors` output of unreadable files."""

    def __init__(self, patterns: list[str], input_format: str = "auto"):
        super().__init__()
        if input_format not in FORMATS:
            raise ValueError(f"unknown input format {input_format!r}; expected one of {FORMATS}")
        self.patterns = list(patterns)
        self.input_format = input_format

    def expand(self, pbegin):
        return (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "MatchFiles" >> fileio.MatchAll()
            | "Reshuffle" >> beam.Reshuffle()  # spread files over workers
            | "ReadMatches" >> fileio.ReadMatches()
            | "SplitRecords" >> beam.ParDo(ReadRecordsFn(self.input_format)).with_outputs(
                ERRORS, main="records"))
