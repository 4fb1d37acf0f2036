"""The output tables read the same through DuckDB, pyarrow.dataset, pandas and polars."""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pytest

from stancebeam.analysis.tables import open_output
from tests.analysis_fixtures import DATE_PARTITIONING, sample_rows, write_sample_output
from stancebeam.transforms.schemas import NULL_PARTITION, PARTITION_COLUMN, TABLES

SCORE_COLUMN = {"documents": "tone", "mentions": "score", "actor_sentiment": "score",
                "actor_stance": "score", "errors": None}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_output(tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def expected():
    """Row count, score sum and partition dates per table, straight from the written rows."""
    out = {}
    for table, parts in sample_rows().items():
        rows = [(part, row) for part, rs in parts for row in rs]
        col = SCORE_COLUMN[table]
        scores = [r[col] for _, r in rows if col and r[col] is not None]
        dates = {None if p == NULL_PARTITION else dt.date.fromisoformat(p) for p, _ in rows}
        out[table] = (len(rows), math.fsum(scores), dates)
    return out


def _as_date(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value.date() if isinstance(value, dt.datetime) else value


def read_duckdb(root, table) -> list[dict]:
    tables = open_output(root)
    try:
        cursor = tables.con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r)) for r in cursor.fetchall()]
    finally:
        tables.close()


def read_pyarrow(root, table) -> list[dict]:
    # Typed Hive partitioning: the plain 'hive' flavour infers the type from the folder names
    # and fails on a table whose only partition is __HIVE_DEFAULT_PARTITION__ (errors here).
    dataset = ds.dataset(root / table, format="parquet", partitioning=DATE_PARTITIONING)
    return dataset.to_table().to_pylist()


def read_pandas(root, table) -> list[dict]:
    # pandas needs an explicit partitioning (see docs/tables.md): the inferred dictionary one
    # cannot mix dates with __HIVE_DEFAULT_PARTITION__.
    frame = pd.read_parquet(root / table, partitioning=DATE_PARTITIONING)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def read_polars(root, table) -> list[dict]:
    lazy = pl.scan_parquet(str(root / table / "**" / "*.parquet"), hive_partitioning=True)
    return lazy.collect().to_dicts()


READERS = {"duckdb": read_duckdb, "pyarrow": read_pyarrow, "pandas": read_pandas,
           "polars": read_polars}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("table", list(TABLES))
def test_reader_agrees(sample, expected, table, reader):
    rows = READERS[reader](sample, table)
    n_rows, score_sum, dates = expected[table]
    assert len(rows) == n_rows
    assert {_as_date(r[PARTITION_COLUMN]) for r in rows} == dates
    assert set(rows[0]) == set(TABLES[table].names) | {PARTITION_COLUMN}
    col = SCORE_COLUMN[table]
    if col:
        assert math.fsum(r[col] for r in rows if r[col] is not None) == pytest.approx(score_sum)


def _evidence_of(rows, doc_id, actor_id):
    (row,) = [r for r in rows if r["doc_id"] == doc_id and r["actor_id"] == actor_id]
    return list(row["evidence"])


@pytest.mark.parametrize("reader", READERS)
def test_nested_evidence_agrees(sample, reader):
    evidence = _evidence_of(READERS[reader](sample, "actor_sentiment"), "d03", "org:european_commission")
    assert [e["sentence"] for e in evidence] == [
        "Macron attacked the European Commission over farm rules.",
        "The European Commission said talks continue."]
    assert evidence[0]["score"] == pytest.approx(-0.75)
    assert evidence[0]["sentence_index"] == 0 and evidence[0]["label"] == "negative"


@pytest.mark.parametrize("reader", READERS)
def test_undated_rows_agree(sample, reader):
    rows = READERS[reader](sample, "documents")
    undated = [r["doc_id"] for r in rows if _as_date(r[PARTITION_COLUMN]) is None]
    assert undated == ["d08"]


def test_duckdb_partition_is_a_date_even_when_all_undated(sample):
    # errors holds only __HIVE_DEFAULT_PARTITION__: without hive_types DuckDB would say VARCHAR.
    tables = open_output(sample)
    try:
        types = dict(tables.con.execute(
            "SELECT table_name, data_type FROM information_schema.columns "
            "WHERE column_name = 'published_date'").fetchall())
    finally:
        tables.close()
    assert types == {t: "DATE" for t in TABLES}


def test_polars_and_pandas_type_the_partition_as_date(sample):
    lazy = pl.scan_parquet(str(sample / "documents" / "**" / "*.parquet"), hive_partitioning=True)
    assert lazy.collect_schema()[PARTITION_COLUMN] == pl.Date
    frame = pd.read_parquet(sample / "documents", partitioning=DATE_PARTITIONING)
    assert {type(d) for d in frame[PARTITION_COLUMN].dropna()} == {dt.date}


@pytest.mark.parametrize("table", [t for t in TABLES if t != "errors"])
def test_pyarrow_plain_hive_flavour_gives_strings(sample, expected, table):
    # partitioning="hive" works where some partition is dated, typing published_date as text.
    rows = ds.dataset(sample / table, format="parquet", partitioning="hive").to_table().to_pylist()
    values = {r[PARTITION_COLUMN] for r in rows}
    assert str in {type(v) for v in values} <= {str, type(None)}
    assert {_as_date(v) for v in values} == expected[table][2]
