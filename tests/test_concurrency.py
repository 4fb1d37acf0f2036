"""Runs that overlap: unique run ids, commits that interleave or race lose no row."""
import contextlib
import datetime as dt
import os
import re
import threading
import time

import duckdb
import pyarrow.parquet as pq

from stancebeam.pipeline import builder
from stancebeam.transforms import write
from stancebeam.transforms.write import CommitPartitionFn, StageRowsFn
from tests.test_write import doc_row, write as write_rows

RUN_ID = re.compile(r"^run-\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}$")


def test_run_ids_are_unique_even_in_the_same_microsecond(monkeypatch):
    ids = [builder.make_run_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids) and all(RUN_ID.match(i) for i in ids)
    stamps = [i[4:26] for i in ids]
    assert stamps == sorted(stamps)  # ids sort by launch time (to the microsecond)

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2026, 11, 30, 13, 54, 41, tzinfo=dt.timezone.utc)

    monkeypatch.setattr(builder.dt, "datetime", Frozen)
    together: list[str] = []
    start = threading.Barrier(2)

    def launch():
        start.wait()
        together.append(builder.make_run_id())

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(together)) == 2
    assert all(i.startswith("run-20261130T135441.000000Z-") for i in together)


def staged(root, rows):
    """Stages rows the way a run does: (file key, [(staged path, rows)]) for one final file."""
    stage = StageRowsFn(str(root / "_staging" / f"t{id(rows)}"), max_rows=1000)
    stage.start_bundle()
    for r in rows:
        assert list(stage.process(r)) == []
    [(key, value)] = [wv.value for wv in stage.finish_bundle()]
    return key, [value]


def doc_ids(root) -> list[str]:
    return sorted(r[0] for r in duckdb.sql(
        f"select doc_id from read_parquet('{root}/documents/**/*.parquet')").fetchall())


class HookedCommit(CommitPartitionFn):
    """A commit that runs `hook` between reading the old file and renaming the new one over it."""

    def __init__(self, root, hook=None):
        super().__init__(str(root))
        self.hook = hook
        self.entered = threading.Event()

    def _commit(self, *args):
        self.entered.set()
        return super()._commit(*args)

    def _before_rename(self, path):
        if self.hook:
            self.hook()


def interleave(tmp_path):
    """Run A reads the partition; before A renames, run B commits the same partition."""
    write_rows(tmp_path, [doc_row("old", "2020-01-01", run="r0")])
    a = staged(tmp_path, [doc_row("a1", "2020-01-01", run="rA"), doc_row("a2", "2020-01-01", run="rA")])
    b = staged(tmp_path, [doc_row("b1", "2020-01-01", run="rB"), doc_row("old", "2020-01-01", run="rB")])
    commit_b = HookedCommit(tmp_path)
    thread_b = threading.Thread(target=lambda: list(commit_b.process(b)))
    b_waited = []

    def between_read_and_rename():
        thread_b.start()
        thread_b.join(0.5)  # without a lock B finishes here, inside A's critical section
        b_waited.append(thread_b.is_alive() and not commit_b.entered.is_set())

    assert list(HookedCommit(tmp_path, between_read_and_rename).process(a)) == [("documents", 2)]
    thread_b.join(10)
    assert not thread_b.is_alive()
    return b_waited[0]


def test_interleaved_commits_lose_no_row(tmp_path):
    b_waited = interleave(tmp_path)
    assert b_waited  # B blocked on the lock until A had renamed, then merged into A's file
    assert doc_ids(tmp_path) == ["a1", "a2", "b1", "old"]
    runs = dict(duckdb.sql(f"select doc_id, run_id from read_parquet('{tmp_path}/documents/**/*.parquet')").fetchall())
    assert runs["old"] == "rB"
    assert (tmp_path / "_locks" / "documents" / "published_date=2020-01-01" / "part-00000.parquet.lock").exists()


def test_without_the_lock_the_same_interleaving_loses_rows(tmp_path, monkeypatch):
    # What the lock prevents: A's rename replaces the file B wrote in between.
    monkeypatch.setattr(write, "commit_lock", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(CommitPartitionFn, "_remove_leftovers", lambda self, path: None)  # needs the lock
    assert not interleave(tmp_path)
    assert doc_ids(tmp_path) == ["a1", "a2", "old"]  # b1 is gone, both commits "succeeded"


def commit_rounds(root, name: str, rounds: int, start: threading.Barrier) -> None:
    """One writer: each round commits new documents and rewrites five of its first ones."""
    commit = CommitPartitionFn(str(root))
    start.wait()
    for r in range(rounds):
        rows = [doc_row(f"{name}-{r}-{i}", "2020-01-01", run=name) for i in range(20)]
        rows += [doc_row(f"{name}-0-{i}", "2020-01-01", title=f"round {r}", run=name) for i in range(5) if r]
        assert list(commit.process(staged(root, rows))) == [("documents", len(rows))]


def test_three_writers_committing_one_partition_lose_nothing(tmp_path, monkeypatch):
    # Threads, each with its own lock file descriptor: flock excludes them exactly as it does
    # processes. (Processes would cost a Beam import each; test_faults.py runs real ones.)
    slow_read = CommitPartitionFn._write

    def slowly(self, *args):  # widen the read-to-rename window: without the lock rows get lost
        slow_read(self, *args)
        time.sleep(0.05)

    monkeypatch.setattr(CommitPartitionFn, "_write", slowly)
    start = threading.Barrier(3)
    errors = []

    def writer(name):
        try:
            commit_rounds(tmp_path, name, 3, start)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in "pqr"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    expected = sorted(f"{n}-{r}-{i}" for n in "pqr" for r in range(3) for i in range(20))
    assert doc_ids(tmp_path) == expected  # every document once, none lost
    titles = duckdb.sql(f"select distinct title from read_parquet('{tmp_path}/documents/**/*.parquet') "
                        "where doc_id like '_-0-0' or doc_id like '_-0-4'").fetchall()
    assert titles == [("round 2",)]
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_a_dead_commits_temporary_file_and_stale_staging_are_removed(tmp_path):
    write_rows(tmp_path, [doc_row("a", "2020-01-01")])
    folder = tmp_path / "documents" / "published_date=2020-01-01"
    (folder / "part-00000.parquet.tmp-dead").write_bytes(b"half a file")
    dead, live = tmp_path / "_staging" / "dead", tmp_path / "_staging" / "live"
    for f in (dead, live):
        f.mkdir(parents=True)
        (f / "x.parquet.tmp").write_bytes(b"staged")
    old = time.time() - write.STALE_STAGING_SECONDS - 60
    os.utime(dead / "x.parquet.tmp", (old, old))
    write_rows(tmp_path, [doc_row("b", "2020-01-01")])  # commits the file, removes its staging
    assert not (folder / "part-00000.parquet.tmp-dead").exists()
    assert not dead.exists() and (live / "x.parquet.tmp").exists()
    assert doc_ids(tmp_path) == ["a", "b"]
    assert pq.read_table(folder / "part-00000.parquet").num_rows == 2
