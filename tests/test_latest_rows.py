"""Readers count each document once: the views keep the latest version of each document's rows."""
from __future__ import annotations

import datetime as dt
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from stancebeam.analysis.query import PRESETS, main, run_preset
from stancebeam.analysis.report import collect
from stancebeam.analysis.tables import open_output
from stancebeam.transforms.schemas import NULL_PARTITION, TABLES, VERSION_COLUMN
from tests.analysis_fixtures import sample_rows
from tests.conftest import ROOT

T1, T2, T3 = (dt.datetime(2024, 4, 1, h, tzinfo=dt.timezone.utc) for h in (1, 2, 3))
PARAMS = {"actor-trend": {"actor": "scholz"}, "evidence": {"actor": "scholz"}}


def put(root, table, partition, name, rows, schema=None):
    folder = root / table / f"published_date={partition}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema or TABLES[table]), folder / name)


def stamped(rows, when, **changes):
    return [{**r, VERSION_COLUMN: when, **changes} for r in rows]


def write_version(root, when, prefix, **changes):
    """The sample output as one version: every row stamped `when`, in files named prefix-*."""
    for table, parts in sample_rows().items():
        for i, (partition, rows) in enumerate(parts):
            put(root, table, partition, f"{prefix}-{i:05d}.parquet", stamped(rows, when, **changes))


def older_version(root):
    """Rows an earlier version left: other scores, an extra mention, one document under another date."""
    for table, parts in sample_rows().items():
        for i, (partition, rows) in enumerate(parts):
            old = stamped(rows, T1, run_id="run-old")
            if table in ("mentions", "actor_sentiment", "actor_stance"):
                old = [{**r, "score": -r["score"]} for r in old]
                if table == "mentions" and i == 0:
                    old.append({**old[0], "mention_id": "stale-mention"})
            if table == "documents" and i == 0:
                partition = "2023-12-31"  # a rerun after the date was corrected moves the rows
            put(root, table, partition, f"old-{i:05d}.parquet", old)


def results(root) -> dict:
    tables = open_output(root)
    try:
        got = {name: run_preset(tables, name, PARAMS.get(name, {})) for name in PRESETS}
        got["counts"] = {t: tables.con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables.present}
        got["report"] = collect(tables, 5, 3)
        got["report"].root = None
        got["report"].stance.sort(key=lambda r: (r["holder_id"], r["target_id"]))  # unordered there
        return got
    finally:
        tables.close()


def test_presets_and_report_ignore_older_versions_of_documents(tmp_path):
    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    write_version(clean, T2, "part")
    write_version(dirty, T2, "part")
    older_version(dirty)
    want = results(clean)
    assert want["counts"]["documents"] == len(sample_rows()["documents"])
    assert results(dirty) == want  # every preset, the row counts and everything the report shows


def test_the_latest_version_wins_and_stancebeam_query_counts_it_once(tmp_path, capsys):
    write_version(tmp_path, T2, "part")
    # The same documents analysed again later (a redelivery in a later streaming window):
    write_version(tmp_path, T3, "later", run_id="run-later", title="again")
    assert main([str(tmp_path), "select count(*) as n, count(distinct doc_id) as d, min(title) as t, "
                 "min(run_id) as r from documents", "--format", "json"]) == 0
    n_docs = len(sample_rows()["documents"])
    assert json.loads(capsys.readouterr().out) == [{"n": n_docs, "d": n_docs, "t": "again", "r": "run-later"}]
    tables = open_output(tmp_path)
    try:
        mention_runs = tables.con.execute("select distinct run_id from mentions").fetchall()
        n_mentions = tables.con.execute("select count(*) from mentions").fetchone()[0]
    finally:
        tables.close()
    assert mention_runs == [("run-later",)]
    assert n_mentions == sum(len(rows) for _, rows in sample_rows()["mentions"])


def test_outputs_written_before_analysed_at_are_deduplicated_by_run_id(tmp_path):
    legacy = {t: pa.schema([f for f in s if f.name != VERSION_COLUMN]) for t, s in TABLES.items()}
    rows = sample_rows()
    (partition, doc), (_, mentions) = rows["documents"][0], rows["mentions"][0]
    for run in ("run-20240101T000000Z", "run-20240102T000000Z"):
        put(tmp_path, "documents", partition, f"{run}.parquet", [{**d, "run_id": run} for d in doc],
            legacy["documents"])
        put(tmp_path, "mentions", partition, f"{run}.parquet", [{**m, "run_id": run} for m in mentions],
            legacy["mentions"])
    tables = open_output(tmp_path)
    try:
        assert tables.con.execute("select run_id from documents").fetchall() == [("run-20240102T000000Z",)]
        assert tables.con.execute("select count(*), min(run_id) from mentions").fetchone() == (
            len(mentions), "run-20240102T000000Z")
    finally:
        tables.close()


def test_errors_keep_one_row_per_error_id(tmp_path):
    [(_, [error])] = sample_rows()["errors"]
    put(tmp_path, "errors", NULL_PARTITION, "a.parquet", stamped([error], T1, run_id="run-a"))
    put(tmp_path, "errors", NULL_PARTITION, "b.parquet", stamped([error], T2, run_id="run-b"))
    tables = open_output(tmp_path)
    try:
        assert tables.con.execute("select run_id from errors").fetchall() == [("run-b",)]
    finally:
        tables.close()


def test_the_sql_in_docs_tables_md_gives_the_views(tmp_path):
    write_version(tmp_path, T2, "part")
    older_version(tmp_path)
    doc = (ROOT / "docs" / "tables.md").read_text(encoding="utf-8")
    section = doc[doc.index("The same in DuckDB on the files"):]
    sql = section[section.index("```sql") + len("```sql"):section.index("```", section.index("```sql") + 6)]
    con = duckdb.connect()
    for statement in filter(str.strip, sql.replace("'out/", f"'{tmp_path}/").split(";")):
        con.execute(statement)
    tables = open_output(tmp_path)
    try:
        for table in ("documents", "mentions", "errors"):
            query = f"SELECT * FROM {table} ORDER BY ALL"
            assert con.execute(query).fetchall() == tables.con.execute(query).fetchall(), table
    finally:
        tables.close()
