"""Writes windowed rows of an unbounded pipeline to Hive-partitioned Parquet files, one set per window."""
from __future__ import annotations

import uuid

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.pvalue import PCollection
from apache_beam.transforms.window import GlobalWindow

from stancebeam.transforms.elements import TableRow
from stancebeam.transforms.schemas import PARTITION_COLUMN, TABLES, partition_value
from stancebeam.transforms.write import ensure_dir, partition_dir, to_arrow

WINDOW_TIME_FORMAT = "%Y%m%dT%H%M%SZ"  # no ':' in file names: some filesystems and tools reject it


class ParquetSink(fileio.FileSink):
    """One table's rows -> one Parquet file (zstd, the table's explicit schema).

    Rows are buffered and written as one row group on flush(): fileio calls flush() once, right
    before it closes the file, so flush() also writes the Parquet footer.
    """

    def __init__(self, table: str):
        self.table = table
        self._fh = None
        self._rows: list[dict] = []
        self._finished = False

    def create_metadata(self, destination, full_file_name):
        # AUTO would pick a compression from the temporary name; Parquet compresses itself.
        return fileio.FileMetadata(mime_type="application/vnd.apache.parquet",
                                   compression_type=CompressionTypes.UNCOMPRESSED)

    def open(self, fh):
        self._fh = fh
        self._rows = []
        self._finished = False

    def write(self, record: TableRow):
        self._rows.append(record.row)

    def flush(self):
        if self._finished:  # a Parquet file cannot be appended to after its footer
            if self._rows:
                raise RuntimeError(f"{self.table}: rows written after the Parquet file was finished")
            return
        table = to_arrow(self.table, self._rows)
        writer = pq.ParquetWriter(self._fh, table.schema, compression="zstd")
        writer.write_table(table)
        writer.close()  # writes the footer; fileio closes the file handle itself
        self._rows = []
        self._finished = True


def destination_of(element: TableRow) -> str:
    """'table/published_date=<date>', the row's folder under the root."""
    return f"{element.table}/{PARTITION_COLUMN}={partition_value(element.date)}"


def sink_for(destination: str) -> ParquetSink:
    return ParquetSink(destination.split("/", 1)[0])


def _window_bounds(window) -> tuple[str, str]:
    if window is None or window == GlobalWindow():
        return "global", "global"
    return (window.start.to_utc_datetime().strftime(WINDOW_TIME_FORMAT),
            window.end.to_utc_datetime().strftime(WINDOW_TIME_FORMAT))


def window_file_naming(window, pane, shard_index, total_shards, compression, destination) -> str:
    """'<destination>/part-<window start>-<window end>-<shard>-of-<shards>-<unique>.parquet'.

    fileio names files by destination and window only (its WriteToFiles docstring: no multiple
    firings per window), so a late pane of a window would overwrite the on-time pane's file.
    The random part keeps every firing's files. A retried move cannot duplicate a file: its
    temporary source is gone after the first successful rename.
    """
    start, end = _window_bounds(window)
    return (f"{destination}/part-{start}-{end}-{shard_index or 0:05d}-of-{total_shards or 1:05d}-"
            f"{uuid.uuid4().hex[:12]}.parquet")


@beam.typehints.with_input_types(TableRow)
@beam.typehints.with_output_types(TableRow)
class EnsurePartitionDirFn(beam.DoFn):
    """Creates ROOT/<table>/published_date=<date>/ before fileio renames a file into it.

    On the local filesystem fileio's final rename into a missing folder fails, is logged only at
    DEBUG and the output is lost (see FACTS.md), so every folder must exist first.
    """

    def __init__(self, root: str):
        self.root = root

    def setup(self):
        self._made: set[str] = set()

    def process(self, element):
        folder = partition_dir(self.root, element.table, element.date)
        if folder not in self._made:
            ensure_dir(folder)
            self._made.add(folder)
        yield element


@beam.typehints.with_input_types(TableRow)
@beam.typehints.with_output_types(TableRow)
class CountRowsFn(beam.DoFn):
    """Counts rows per table (rows_<table>), as the batch writer does, for the run summary."""

    def __init__(self):
        self.rows = {t: beam.metrics.Metrics.counter("stancebeam", f"rows_{t}") for t in TABLES}

    def process(self, element):
        self.rows[element.table].inc()
        yield element


@beam.typehints.with_input_types(TableRow)
class WriteWindowedTables(beam.PTransform[PCollection[TableRow], PCollection]):
    """Windowed TableRows -> ROOT/<table>/published_date=<date>/part-<window>-....parquet.

    Unlike the batch WriteTables, files are never rewritten: each window (and each late firing of
    it) adds files, so the same document delivered in two windows has rows in both. Readers see
    the latest version only (its rows share `analysed_at`; analysis/tables.py).
    """

    def __init__(self, root: str):
        super().__init__()
        self.root = root

    def expand(self, rows):
        return (rows
                | "CountRows" >> beam.ParDo(CountRowsFn())
                | "EnsurePartitionDirs" >> beam.ParDo(EnsurePartitionDirFn(self.root))
                | "WriteParquetFiles" >> fileio.WriteToFiles(
                    path=self.root, destination=destination_of, sink=sink_for,
                    file_naming=window_file_naming))
