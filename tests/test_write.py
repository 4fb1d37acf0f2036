"""Writing tables: Hive partitions, explicit schemas, reruns replace rows instead of adding."""
import apache_beam as beam
import duckdb
import pyarrow.dataset as ds
from apache_beam.testing.test_pipeline import TestPipeline

from transforms.schemas import DOCUMENTS, NULL_PARTITION
from transforms.write import WriteTables


def doc_row(doc_id, date, title="T", run="r1"):
    return ("documents", date, {
        "run_id": run, "model_id": "m", "doc_id": doc_id, "origin": f"{doc_id}.txt", "title": title,
        "date": date, "source": None, "url": None, "n_chars": 10, "n_chars_processed": 10,
        "n_sentences": 1, "n_mentions": 0, "n_actors": 0, "n_statements": 0, "tone": None,
        "tone_label": None})


def write(root, rows, files=1):
    with TestPipeline() as p:
        _ = p | beam.Create(rows) | WriteTables(str(root), files)


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
