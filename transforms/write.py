"""Writes rows to Hive-partitioned Parquet tables on any Beam filesystem, replacing rows on rerun.

Each (table, date partition, bucket) becomes one file, `part-<bucket>.parquet`, written by one
worker after a GroupByKey. A rerun rewrites that file: existing rows owned by the documents being
written (same doc_id; for errors, same error_id) are replaced, rows of other documents are kept.
So running the same input twice into one output leaves one set of rows, and adding a new corpus
adds rows. Files are written under a temporary name and renamed, so readers never see half a file.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.records import ErrorRecord, stable_hash
from transforms.schemas import PARTITION_COLUMN, ROW_OWNER, TABLES, partition_value

log = logging.getLogger(__name__)


def error_row(error: ErrorRecord, run_id: str, model_id: str) -> tuple[str, str | None, dict]:
    return "errors", error.date, {
        "run_id": run_id, "model_id": model_id, "error_id": error.error_id, "origin": error.origin, "doc_id": error.doc_id,
        "stage": error.stage, "severity": error.severity, "reason": error.reason, "excerpt": error.excerpt}


class ErrorRowFn(beam.DoFn):
    """ErrorRecord -> errors-table row, counting rejected documents and warnings."""

    def __init__(self, run_id: str, model_id: str):
        self.run_id = run_id
        self.model_id = model_id
        self.counts = {s: beam.metrics.Metrics.counter("stancebeam", f"errors_{s}")
                       for s in ("rejected", "warning")}

    def process(self, error: ErrorRecord):
        self.counts[error.severity].inc()
        yield error_row(error, self.run_id, self.model_id)


def partition_dir(root: str, table: str, date_iso: str | None) -> str:
    return FileSystems.join(root, table, f"{PARTITION_COLUMN}={partition_value(date_iso)}")


def to_arrow(table: str, rows: list[dict]) -> pa.Table:
    schema = TABLES[table]
    if "date" in schema.names:
        rows = [{**r, "date": dt.date.fromisoformat(r["date"]) if isinstance(r.get("date"), str) else r.get("date")}
                for r in rows]
    return pa.Table.from_pylist(rows, schema=schema)


def merge_existing(path: str, new: pa.Table, owner: str) -> pa.Table:
    """New rows plus the rows of an existing file at `path` that the new rows do not replace."""
    if not FileSystems.exists(path):
        return new
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            old = pq.read_table(f).cast(new.schema)
    except Exception as e:  # unreadable or from an incompatible version: replace it
        log.warning("replacing unreadable or incompatible %s: %s", path, e)
        return new
    keep = pc.invert(pc.is_in(old[owner], value_set=pc.unique(new[owner])))
    return pa.concat_tables([old.filter(keep), new])


def ensure_dir(path: str) -> None:
    # Local paths need the folder before a file can be renamed into it (see FACTS.md); object
    # stores have no folders and mkdirs is a no-op or already-exists there.
    try:
        FileSystems.mkdirs(path)
    except IOError:
        pass


class WritePartitionFn(beam.DoFn):
    """((table, partition, bucket), rows) -> one Parquet file; yields (table, rows written)."""

    def __init__(self, root: str):
        self.root = root
        self.rows = {t: beam.metrics.Metrics.counter("stancebeam", f"rows_{t}") for t in TABLES}

    def process(self, element):
        (table, date_iso, bucket), rows = element
        rows = list(rows)
        self.rows[table].inc(len(rows))
        folder = partition_dir(self.root, table, date_iso)
        path = FileSystems.join(folder, f"part-{bucket:05d}.parquet")
        merged = merge_existing(path, to_arrow(table, rows), ROW_OWNER[table])
        ensure_dir(folder)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            pq.write_table(merged, f, compression="zstd")
        FileSystems.rename([tmp], [path])
        yield table, len(rows)


class WriteTables(beam.PTransform):
    """(table, date, row) tuples -> OUTPUT/<table>/published_date=<date>/part-<bucket>.parquet."""

    def __init__(self, root: str, files_per_partition: int = 1):
        super().__init__()
        self.root = root
        self.files_per_partition = max(1, files_per_partition)

    def _key(self, element):
        table, date_iso, row = element
        owner = str(row[ROW_OWNER[table]])
        bucket = int(stable_hash(owner, length=8), 16) % self.files_per_partition
        return (table, date_iso, bucket), row

    def expand(self, rows):
        return (rows
                | "KeyByFile" >> beam.Map(self._key)
                | "GroupByFile" >> beam.GroupByKey()
                | "WriteParquet" >> beam.ParDo(WritePartitionFn(self.root)))

