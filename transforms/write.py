"""Writes rows to Hive-partitioned Parquet tables on any Beam filesystem, replacing rows on rerun.

Each (table, date partition, bucket) becomes one file, `part-<bucket>.parquet`. A rerun rewrites
that file: existing rows owned by the documents being written (same doc_id; for errors, same
error_id) are replaced, rows of other documents are kept. So running the same input twice into
one output leaves one set of rows, and adding a new corpus adds rows.

Rows are not shuffled. A GroupByKey over rows would hold every output row of the run in memory on
the local runner (FnApiRunner keeps a GroupByKey's input as Python objects), so peak memory would
grow with the corpus. Instead, in two steps:

1. Stage: each worker buffers rows per file (at most `stage_rows` rows in all, then the largest
   buffers are flushed; everything at the end of a bundle) and writes each flush as a staged
   Parquet file `<root>/_staging/<token>/<uuid>.parquet.tmp`, a name no `**/*.parquet` reader
   glob picks up. Only (file key, staged path, row count) goes on.
2. Commit: a GroupByKey of those small records gives each final file its staged files; one worker
   merges them batch by batch with the existing file (dropping the existing rows of the owners being
   written) into a temporary file next to the final one, renames it into place (readers never see
   half a file) and deletes the staged files. A new final file from a single staged file is
   that file, renamed into place. Memory is bounded by the stage cap, the row-group
   size and one file's owner ids, not by the corpus. A last step, after every commit, removes
   what is left of the run's staging folder.

`<token>` is new for every WriteTables application and run, so runs into one output do not collide.

Concurrent runs into one output: the read-merge-rename of a final file is a critical section.
Two runs committing the same file at once would each merge into the same old file, and the
last rename would drop the other run's rows. So each commit holds an exclusive lock on that
file (`commit_lock`): on local disks an `flock` on `<root>/_locks/<table>/<partition>/<file>.lock`,
which the kernel releases when the process dies (SIGKILL included), so a crashed run never
leaves a stale lock. Object stores have no such lock; see docs/tables.md ("Concurrent runs") for
the precondition-based mechanism (GCS `ifGenerationMatch`, S3 `If-None-Match`) and why one
writer per object-store output is the supported setting until then.

A run killed at any point leaves only files that readers skip (staged `*.parquet.tmp`, a
commit's `part-*.parquet.tmp-<id>`), and final files that each hold a consistent set of rows per
document; rerunning it rewrites its documents' rows. The next commit of a file removes that
file's leftover temporary files; staging folders untouched for `STALE_STAGING_SECONDS` are
removed at the end of a later run (tests/test_faults.py).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import time
import uuid
from typing import Iterable, Optional

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.pvalue import PCollection
from apache_beam.transforms.window import GlobalWindows

from stancebeam.transforms.elements import ErrorRecord, TableRow, stable_hash
from stancebeam.transforms.faults import fault_point
from stancebeam.transforms.schemas import PARTITION_COLUMN, ROW_OWNER, TABLES, VERSION_COLUMN, partition_value

log = logging.getLogger(__name__)


def error_row(error: ErrorRecord, run_id: str, model_id: str) -> TableRow:
    return TableRow("errors", error.date, {
        "run_id": run_id, "model_id": model_id, "error_id": error.error_id, "origin": error.origin, "doc_id": error.doc_id,
        "stage": error.stage, "severity": error.severity, "reason": error.reason, "excerpt": error.excerpt,
        VERSION_COLUMN: dt.datetime.now(dt.timezone.utc)})


@beam.typehints.with_input_types(ErrorRecord)
@beam.typehints.with_output_types(TableRow)
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


def ensure_dir(path: str) -> None:
    # Local paths need the folder before a file can be renamed into it (see FACTS.md); object
    # stores have no folders and mkdirs is a no-op or already-exists there.
    try:
        FileSystems.mkdirs(path)
    except IOError:
        pass


STAGING = "_staging"
LOCKS = "_locks"
LOCK_TIMEOUT_SECONDS = 1800  # a commit rewrites one file: far less, unless a writer hangs
LOCK_POLL_SECONDS = 0.05
# A staging folder nothing has written to for this long belongs to a dead run. Generous: a
# live batch run stages everything before it commits, and staged files wait for the commit.
STALE_STAGING_SECONDS = 24 * 3600
STAGE_ROWS = 5_000  # rows one StageRowsFn holds in memory before it flushes
ROW_GROUP_ROWS = 50_000  # rows a commit buffers before it writes a row group
BATCH_ROWS = 10_000  # rows read per batch from an existing final file


FileKey = tuple[str, Optional[str], int]  # (table, date, bucket): one final file
StagedFile = tuple[str, int]  # (staged path, rows)


def file_key(element: TableRow, files_per_partition: int) -> FileKey:
    """The final file the row goes to."""
    owner = str(element.row[ROW_OWNER[element.table]])
    return element.table, element.date, int(stable_hash(owner, length=8), 16) % files_per_partition


def final_path(root: str, key) -> str:
    table, date_iso, bucket = key
    return FileSystems.join(partition_dir(root, table, date_iso), f"part-{bucket:05d}.parquet")


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _create(path: str):
    return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)


def is_local(path: str) -> bool:
    return isinstance(FileSystems.get_filesystem(path), LocalFileSystem)


@contextlib.contextmanager
def commit_lock(root: str, path: str, timeout: float = LOCK_TIMEOUT_SECONDS):
    """Holds the exclusive lock on final file `path` (under output `root`) while the block runs.

    Local disks: `flock` on a lock file under `<root>/_locks/`, mirroring the final file's path.
    Lock files are never deleted (deleting one while another process waits on it would let a
    third process lock a new file at the same path), and hold nothing: the lock lives in the
    kernel and ends with the process that holds it. Each commit opens the file itself, so
    commits in threads of one process exclude each other too.
    Other filesystems: no lock (docs/tables.md, "Concurrent runs").
    """
    if not is_local(path):
        yield
        return
    relative = os.path.relpath(path, root)
    lock_path = os.path.join(root, LOCKS, f"{relative}.lock")
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: another writer has held {lock_path} for {timeout} s")
                time.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@beam.typehints.with_input_types(TableRow)
@beam.typehints.with_output_types(tuple[FileKey, StagedFile])
class StageRowsFn(beam.DoFn):
    """TableRow -> (file key, (staged path, rows)), rows staged in Parquet.

    Holds at most `max_rows` rows: past that the largest buffers are written out (until half the
    cap is left), and everything is written at the end of the bundle.
    """

    def __init__(self, staging: str, files_per_partition: int = 1, max_rows: int = STAGE_ROWS):
        self.staging = staging
        self.files_per_partition = max(1, files_per_partition)
        self.max_rows = max(1, max_rows)
        self._made_dir = False

    def start_bundle(self):
        self._buffers: dict[tuple, list[dict]] = {}
        self._n = 0

    def process(self, element):
        key = file_key(element, self.files_per_partition)
        self._buffers.setdefault(key, []).append(element.row)
        self._n += 1
        if self._n > self.max_rows:  # largest first, so a flush frees many rows in few files
            for largest in sorted(self._buffers, key=lambda k: len(self._buffers[k]), reverse=True):
                if self._n <= self.max_rows // 2:
                    break
                yield self._flush(largest)

    def finish_bundle(self):
        for key in list(self._buffers):
            yield GlobalWindows.windowed_value(self._flush(key))

    def _flush(self, key):
        rows = self._buffers.pop(key)
        self._n -= len(rows)
        if not self._made_dir:
            ensure_dir(self.staging)
            self._made_dir = True
        path = FileSystems.join(self.staging, f"{uuid.uuid4().hex}.parquet.tmp")
        with _create(path) as f:
            pq.write_table(to_arrow(key[0], rows), f, compression="zstd")
        return key, (path, len(rows))


def conform(part: pa.Table, schema: pa.Schema) -> pa.Table:
    """A batch of an existing final file in `schema`: nullable columns it lacks (written before they
    were added, like analysed_at) become nulls instead of making the old file unreadable."""
    for field in schema:
        if field.name not in part.column_names and field.nullable:
            part = part.append_column(field.name, pa.nulls(part.num_rows, field.type))
    return part.select(schema.names).cast(schema)


class _OldFileError(Exception):
    """Reading the existing final file failed (unreadable, or from an incompatible version)."""


@beam.typehints.with_input_types(tuple[FileKey, Iterable[StagedFile]])
@beam.typehints.with_output_types(tuple[str, int])
class CommitPartitionFn(beam.DoFn):
    """(file key, staged files) -> the final Parquet file; yields (table, rows written).

    The existing final file's rows are kept unless their owner (doc_id; error_id for errors) is in
    the staged files; then the staged rows are appended. Streams batch by batch.
    """

    def __init__(self, root: str, row_group_rows: int = ROW_GROUP_ROWS):
        self.root = root
        self.row_group_rows = max(1, row_group_rows)
        self.rows = {t: beam.metrics.Metrics.counter("stancebeam", f"rows_{t}") for t in TABLES}

    def process(self, element):
        key, staged = element
        table = key[0]
        staged = sorted(set(staged))  # a stable order; the same file twice would add rows twice
        paths = [p for p, _ in staged]
        n_rows = sum(n for _, n in staged)
        # Staged files are deleted only after the rename, so a missing one means a retried
        # bundle whose earlier attempt already committed this file.
        present = [p for p in paths if FileSystems.exists(p)]
        if len(present) == len(paths):
            fault_point("commit")
            path = final_path(self.root, key)
            with commit_lock(self.root, path):
                present = self._commit(table, path, paths, n_rows)
        else:
            log.info("%s was committed by an earlier attempt", final_path(self.root, key))
        self._delete(present)
        self.rows[table].inc(n_rows)
        yield table, n_rows

    def _commit(self, table: str, path: str, staged: list[str], n_rows: int) -> list[str]:
        """Writes the final file; returns the staged files left to delete. Runs under commit_lock."""
        self._remove_leftovers(path)
        old = path if FileSystems.exists(path) else None
        ensure_dir(FileSystems.split(path)[0])
        if old is None and len(staged) == 1 and n_rows <= self.row_group_rows:
            self._before_rename(path)
            # A new file from one staged file (most files of a first run: one per table and
            # date): that file already has the final schema, compression and a single row
            # group, so the rename is the commit. Re-writing it cost 2.9 of 4.1 s of the
            # commits over 200 articles (724 files, profiled).
            FileSystems.rename(staged, [path])
            return []
        owner = ROW_OWNER[table]
        owners = self._owners(staged, owner)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            try:
                self._write(tmp, table, staged, old, owner, owners)
            except _OldFileError as e:
                log.warning("replacing unreadable or incompatible %s: %s", path, e.__cause__)
                self._write(tmp, table, staged, None, owner, owners)
        except BaseException:
            self._delete([tmp])
            raise
        self._before_rename(path)
        FileSystems.rename([tmp], [path])
        return staged

    def _before_rename(self, path: str) -> None:
        """The point between reading the old file and replacing it: tests interleave commits here."""
        fault_point("rename")

    def _remove_leftovers(self, path: str) -> None:
        """Deletes `path.tmp-*` of commits that died before their rename.

        Only on local disks, where the caller holds the file's lock, so no live commit of this
        file can own one; elsewhere they are left (readers skip them).
        """
        if is_local(path):
            try:
                left = [m.path for r in FileSystems.match([f"{path}.tmp-*"]) for m in r.metadata_list]
            except Exception:  # nothing matched, or the folder does not exist yet
                left = []
            self._delete(left)

    @staticmethod
    def _owners(staged: list[str], owner: str) -> pa.Array:
        ids = []
        for p in staged:
            with _open(p) as f:
                ids.append(pc.unique(pq.read_table(f, columns=[owner])[owner]))
        return pc.unique(pa.chunked_array(ids))

    def _write(self, tmp, table, staged, old, owner, owners) -> None:
        schema = TABLES[table]
        buffered: list[pa.Table] = []
        n = 0
        with _create(tmp) as f, pq.ParquetWriter(f, schema, compression="zstd") as writer:
            def add(part: pa.Table):
                nonlocal n
                if part.num_rows:
                    buffered.append(part)
                    n += part.num_rows
                if n >= self.row_group_rows:
                    flush()

            def flush():
                nonlocal n
                if buffered:
                    writer.write_table(pa.concat_tables(buffered))
                    buffered.clear()
                    n = 0

            if old is not None:
                try:
                    with _open(old) as g:
                        for batch in pq.ParquetFile(g).iter_batches(batch_size=BATCH_ROWS):
                            part = conform(pa.Table.from_batches([batch]), schema)
                            add(part.filter(pc.invert(pc.is_in(part[owner], value_set=owners))))
                except Exception as e:
                    raise _OldFileError() from e
            for p in staged:
                with _open(p) as g:
                    for batch in pq.ParquetFile(g).iter_batches(batch_size=BATCH_ROWS):
                        add(pa.Table.from_batches([batch]).cast(schema))
            flush()

    @staticmethod
    def _delete(paths: list[str]) -> None:
        if paths:
            try:
                FileSystems.delete(paths)
            except Exception as e:  # a leftover staged file is removed with the staging folder
                log.warning("could not delete %s: %s", paths, e)


def remove_staging(_, staging: str, stale_after: float = STALE_STAGING_SECONDS) -> None:
    """Best effort, after every commit: delete what is left in the run's staging folder (files of
    failed attempts) and, on local disks, the folder itself and `_staging` when empty. Also
    removes other runs' staging folders untouched for `stale_after` seconds (dead runs')."""
    remove_stale_staging(os.path.dirname(staging.rstrip("/")), staging, stale_after)
    try:
        left = [m.path for r in FileSystems.match([FileSystems.join(staging, "*")]) for m in r.metadata_list]
        if left:
            FileSystems.delete(left)
    except Exception as e:  # never fail a run over its leftovers
        log.warning("could not clean up staging folder %s: %s", staging, e)
    if isinstance(FileSystems.get_filesystem(staging), LocalFileSystem):  # object stores have no folders
        for folder in (staging, os.path.dirname(staging.rstrip("/"))):
            try:
                os.rmdir(folder)  # only if empty: other runs may be staging in `_staging`
            except OSError:
                pass


def remove_stale_staging(parent: str, own: str, stale_after: float) -> None:
    """Deletes the staging folders under `parent` (but `own`) whose newest file is older than
    `stale_after` seconds: a live run keeps writing or committing its own."""
    try:
        metadata = [m for r in FileSystems.match([FileSystems.join(parent, "*", "*")]) for m in r.metadata_list]
    except Exception:  # no `_staging` folder, or nothing in it
        return
    newest: dict[str, float] = {}
    files: dict[str, list[str]] = {}
    for m in metadata:
        folder = FileSystems.split(m.path)[0]
        if folder.rstrip("/") == own.rstrip("/"):
            continue
        newest[folder] = max(newest.get(folder, 0.0), m.last_updated_in_seconds or 0.0)
        files.setdefault(folder, []).append(m.path)
    cutoff = time.time() - stale_after
    for folder, paths in files.items():
        if newest[folder] < cutoff:
            log.info("removing the staging folder of a dead run: %s (%d files)", folder, len(paths))
            CommitPartitionFn._delete(paths)
            if is_local(folder):
                try:
                    os.rmdir(folder)
                except OSError:
                    pass


@beam.typehints.with_input_types(TableRow)
@beam.typehints.with_output_types(tuple[str, int])
class WriteTables(beam.PTransform[PCollection[TableRow], PCollection[tuple[str, int]]]):
    """TableRows -> OUTPUT/<table>/published_date=<date>/part-<bucket>.parquet.

    Outputs (table, rows written) per final file. `stage_rows` caps the rows a worker holds in
    memory; `row_group_rows` sets the row-group size of the final files.
    """

    def __init__(self, root: str, files_per_partition: int = 1, *, stage_rows: int = STAGE_ROWS,
                 row_group_rows: int = ROW_GROUP_ROWS):
        super().__init__()
        self.root = root
        self.files_per_partition = max(1, files_per_partition)
        self.stage_rows = stage_rows
        self.row_group_rows = row_group_rows

    def expand(self, rows) -> PCollection[tuple[str, int]]:
        staging = FileSystems.join(self.root, STAGING, uuid.uuid4().hex)
        written = (rows
                   | "StageRows" >> beam.ParDo(
                       StageRowsFn(staging, self.files_per_partition, self.stage_rows))
                   | "GroupByFile" >> beam.GroupByKey()
                   | "CommitParquet" >> beam.ParDo(CommitPartitionFn(self.root, self.row_group_rows)))
        _ = (written
             | "CountFiles" >> beam.combiners.Count.Globally()
             | "RemoveStaging" >> beam.Map(remove_staging, staging))
        return written
