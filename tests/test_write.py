"""Writing tables: Hive partitions, explicit schemas, reruns replace rows instead of adding."""
import apache_beam as beam
import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from stancebeam.transforms.elements import TableRow
from stancebeam.transforms.schemas import DOCUMENTS, NULL_PARTITION
from stancebeam.transforms.write import CommitPartitionFn, StageRowsFn, WriteTables


def doc_row(doc_id, date, title="T", run="r1"):
    return TableRow("documents", date, {
        "run_id": run, "model_id": "m", "doc_id": doc_id, "origin": f"{doc_id}.txt", "title": title,
        "date": date, "source": None, "url": None, "n_chars": 10, "n_chars_processed": 10,
        "n_sentences": 1, "n_mentions": 0, "n_actors": 0, "n_statements": 0, "tone": None,
        "tone_label": None})


def write(root, rows, files=1, **kwargs):
    with TestPipeline() as p:
        _ = p | beam.Create(rows) | WriteTables(str(root), files, **kwargs)


def test_partitions_schema_and_null_dates(tmp_path):
    write(tmp_path, [doc_row("a", "2020-01-01"), doc_row("b", "2020-01-02"), doc_row("c", None)])
    folders = sorted(p.name for p in (tmp_path / "documents").iterdir())
    assert folders == ["published_date=2020-01-01", "published_date=2020-01-02",
                       f"published_date={NULL_PARTITION}"]
    table = ds.dataset(tmp_path / "documents", partitioning="hive").to_table()
    assert table.schema.remove(table.schema.get_field_index("published_date")) == DOCUMENTS
    got = duckdb.sql(f"select doc_id, published_date from read_parquet('{tmp_path}/documents/**/*.parquet', "
                     "hive_partitioning=true) order by doc_id").fetchall()
    assert [r[0] for r in got] == ["a", "b", "c"]


def test_rerun_replaces_rows_of_the_same_documents(tmp_path):
    write(tmp_path, [doc_row("a", "2020-01-01"), doc_row("b", "2020-01-01")], files=2)
    write(tmp_path, [doc_row("a", "2020-01-01", title="new", run="r2")], files=2)
    write(tmp_path, [doc_row("c", "2020-01-01", run="r3")], files=2)
    rows = duckdb.sql(f"select doc_id, title, run_id from read_parquet('{tmp_path}/documents/**/*.parquet') "
                      "order by doc_id").fetchall()
    assert rows == [("a", "new", "r2"), ("b", "T", "r1"), ("c", "T", "r3")]
    assert not list(tmp_path.rglob("*.tmp-*"))


def error_of(i, date):
    return TableRow("errors", date, {
        "run_id": "r1", "model_id": "m", "error_id": f"e{i}", "origin": f"e{i}.txt", "doc_id": None,
        "stage": "parse", "severity": "warning", "reason": "r", "excerpt": ""})


def test_staged_in_small_files_every_row_once_nothing_left(tmp_path):
    dates = ["2020-01-01", "2020-01-02", None]
    rows = [doc_row(f"d{i:02d}", dates[i % 3]) for i in range(50)]
    rows += [error_of(i, dates[i % 3]) for i in range(30)]
    with TestPipeline() as p:
        written = p | beam.Create(rows) | WriteTables(str(tmp_path), 2, stage_rows=3)
        totals = written | beam.CombinePerKey(sum)
        assert_that(totals, equal_to([("documents", 50), ("errors", 30)]))
    got = duckdb.sql(f"select doc_id from read_parquet('{tmp_path}/documents/**/*.parquet', "
                     "hive_partitioning=true) order by doc_id").fetchall()
    assert [r[0] for r in got] == [f"d{i:02d}" for i in range(50)]
    assert duckdb.sql(f"select count(*), count(distinct published_date) from read_parquet("
                      f"'{tmp_path}/**/*.parquet', hive_partitioning=true, union_by_name=true)"
                      ).fetchall() == [(50 + 30, 2)]
    assert not list(tmp_path.rglob("*.tmp*"))
    assert not (tmp_path / "_staging").exists()
    # Many small staged files per final file are coalesced into one row group.
    parts = list((tmp_path / "documents").rglob("*.parquet"))
    assert len(parts) == 6
    assert all(pq.ParquetFile(path).metadata.num_row_groups == 1 for path in parts)


def test_stage_rows_holds_at_most_the_cap(tmp_path):
    fn = StageRowsFn(str(tmp_path / "staging"), files_per_partition=1, max_rows=4)
    fn.start_bundle()
    emitted = []
    for i in range(40):
        emitted += list(fn.process(doc_row(f"d{i}", f"2020-01-0{i % 5 + 1}")))
        assert fn._n <= 4
    emitted += [wv.value for wv in fn.finish_bundle()]
    assert sum(n for _, (_, n) in emitted) == 40
    assert len({path for _, (path, _) in emitted}) == len(emitted)
    assert all(path.endswith(".parquet.tmp") for _, (path, _) in emitted)


def test_rerun_with_two_files_keeps_rows_of_other_documents(tmp_path):
    first = [doc_row(f"d{i}", "2020-01-01") for i in range(8)]
    write(tmp_path, first, files=2, stage_rows=3)
    write(tmp_path, [doc_row("d3", "2020-01-01", title="new", run="r2"),
                     doc_row("d9", "2020-01-01", run="r2")], files=2, stage_rows=3)
    rows = duckdb.sql(f"select doc_id, title, run_id from read_parquet('{tmp_path}/documents/**/*.parquet') "
                      "order by doc_id").fetchall()
    expected = [(f"d{i}", "T", "r1") for i in range(8)] + [("d9", "T", "r2")]
    expected[3] = ("d3", "new", "r2")
    assert rows == expected
    assert len(list((tmp_path / "documents").rglob("*.parquet"))) == 2
    assert not list(tmp_path.rglob("*.tmp*"))


def test_unreadable_existing_file_is_replaced(tmp_path):
    folder = tmp_path / "documents" / "published_date=2020-01-01"
    folder.mkdir(parents=True)
    (folder / "part-00000.parquet").write_bytes(b"not parquet")
    write(tmp_path, [doc_row("a", "2020-01-01")])
    assert pq.read_table(folder / "part-00000.parquet").column("doc_id").to_pylist() == ["a"]
    assert not list(tmp_path.rglob("*.tmp*"))


def test_a_retried_commit_does_not_change_the_file(tmp_path):
    write(tmp_path, [doc_row("a", "2020-01-01"), doc_row("b", "2020-01-01")])
    stage = StageRowsFn(str(tmp_path / "_staging" / "t"), max_rows=1)
    stage.start_bundle()
    staged = [out for r in (doc_row("a", "2020-01-01", run="r2"), doc_row("c", "2020-01-01", run="r2"))
              for out in stage.process(r)] + [wv.value for wv in stage.finish_bundle()]
    key = staged[0][0]
    element = (key, [value for _, value in staged])
    copies = {path: open(path, "rb").read() for _, (path, _) in staged}
    part = tmp_path / "documents" / "published_date=2020-01-01" / "part-00000.parquet"
    commit = CommitPartitionFn(str(tmp_path))
    expected = [("a", "r2"), ("b", "r1"), ("c", "r2")]
    assert list(commit.process(element)) == [("documents", 2)]
    assert sorted(pq.read_table(part).select(["doc_id", "run_id"]).to_pylist(), key=str) == [
        {"doc_id": d, "run_id": r} for d, r in expected]
    for path, data in copies.items():  # renamed, then failed before deleting: committed again
        open(path, "wb").write(data)
    assert list(commit.process(element)) == [("documents", 2)]
    open(next(iter(copies)), "wb").write(next(iter(copies.values())))  # failed while deleting
    assert list(commit.process(element)) == [("documents", 2)]
    got = pq.read_table(part).select(["doc_id", "run_id"]).to_pylist()
    assert sorted((r["doc_id"], r["run_id"]) for r in got) == expected
    assert not list(tmp_path.rglob("*.tmp*"))


def test_a_new_file_from_one_staged_file_is_that_file_renamed(tmp_path):
    stage = StageRowsFn(str(tmp_path / "_staging" / "t"))
    stage.start_bundle()
    for r in (doc_row("a", "2020-01-01"), doc_row("b", "2020-01-01")):
        assert list(stage.process(r)) == []
    [(key, (path, n))] = [wv.value for wv in stage.finish_bundle()]
    data = open(path, "rb").read()
    commit = CommitPartitionFn(str(tmp_path))
    assert list(commit.process((key, [(path, n)]))) == [("documents", 2)]
    part = tmp_path / "documents" / "published_date=2020-01-01" / "part-00000.parquet"
    assert part.read_bytes() == data and not list(tmp_path.rglob("*.tmp*"))
    assert pq.read_schema(part) == DOCUMENTS.with_metadata(pq.read_schema(part).metadata)
    # A retry after the rename finds its staged file gone: committed, nothing changes.
    assert list(commit.process((key, [(path, n)]))) == [("documents", 2)]
    assert part.read_bytes() == data
