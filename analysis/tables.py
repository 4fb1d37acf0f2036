"""Open a stancebeam output directory as a DuckDB connection with one view per table.

The views show the latest version of each document's rows, whatever the files hold: a document
can have rows from several versions where streaming windows saw it twice (a Pub/Sub redelivery),
a run died part-way, or a rerun gave it a new date (another partition). A version is one
analysis of a document: its rows share (run_id, analysed_at). `documents` keeps one row per
doc_id, the latest by analysed_at (then run_id); `mentions`, `actor_sentiment` and
`actor_stance` keep the rows of exactly that version; `errors` keeps the latest row per
error_id. docs/tables.md gives the same SQL for other readers.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb

from stancebeam.transforms.schemas import PARTITION_COLUMN, ROW_OWNER, TABLES, VERSION_COLUMN

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)

# Matches "gs://", "s3://", "https://": DuckDB reads those through its httpfs extension.
_REMOTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class OutputError(Exception):
    """The output directory is missing or unreadable, or a query used a table it lacks."""


@dataclasses.dataclass
class Tables:
    """A DuckDB connection on one output directory, and which tables it holds."""

    con: duckdb.DuckDBPyConnection
    root: str
    present: tuple[str, ...]
    missing: tuple[str, ...]

    def explain(self, exc: Exception) -> str:
        """The message for a failed query, naming any table the output lacks."""
        message = str(exc).strip()
        absent = [t for t in self.missing if re.search(rf"\b{t}\b", message)]
        if isinstance(exc, duckdb.CatalogException) and absent:
            names = ", ".join(absent)
            return (f"table {names} is not in {self.root} (no {names}/**/*.parquet files);"
                    f" tables present: {', '.join(self.present) or 'none'}\n{message}")
        return message

    def close(self) -> None:
        self.con.close()


def is_remote(root: str) -> bool:
    """Whether root is a URL (gs://, s3://, https://) rather than a local path."""
    return bool(_REMOTE.match(root))


def sql_string(value: str) -> str:
    """A single-quoted SQL string literal; only for our own paths, since views take no parameters."""
    return "'" + value.replace("'", "''") + "'"


def table_glob(root: str, table: str) -> str:
    """The glob that matches every Parquet part of one table."""
    return f"{root.rstrip('/')}/{table}/**/*.parquet"


def read_sql(root: str, table: str) -> str:
    """read_parquet over every file of one table, with the Hive partition column typed as DATE.

    hive_types pins the type: with autocast alone, an output whose only partition is
    __HIVE_DEFAULT_PARTITION__ would type published_date as VARCHAR (DuckDB reads that
    folder value as NULL either way).
    """
    return (f"read_parquet({sql_string(table_glob(root, table))}, hive_partitioning = true,"
            f" union_by_name = true, hive_types = {{'{PARTITION_COLUMN}': 'DATE'}})")


# Newest first. NULL analysed_at (files written before the column existed) counts as oldest.
_LATEST_FIRST = f"{VERSION_COLUMN} DESC NULLS LAST, run_id DESC"
DOCUMENT_TABLES = ("mentions", "actor_sentiment", "actor_stance")  # rows owned by a documents row


def view_sql(root: str, table: str, versioned: bool = True, anchored: bool = True) -> str:
    """CREATE VIEW for one table: its latest rows per document (or per error).

    Args:
        root: the output directory.
        table: a key of TABLES.
        versioned: whether the table's files have the analysed_at column (older outputs do not:
            then run_id alone orders versions).
        anchored: for mentions, actor_sentiment and actor_stance, keep the rows of the version
            the `documents` view shows (it must exist and be versioned alike). Without it, each
            table keeps its own latest version per doc_id.
    """
    source = read_sql(root, table)
    order = _LATEST_FIRST if versioned else "run_id DESC"
    if table in DOCUMENT_TABLES and anchored:
        same_version = "t.run_id = d.run_id"
        if versioned:
            same_version += f" AND t.{VERSION_COLUMN} IS NOT DISTINCT FROM d.{VERSION_COLUMN}"
        body = (f"SELECT t.* FROM {source} AS t SEMI JOIN documents AS d"
                f" ON t.doc_id = d.doc_id AND {same_version}")
    elif table in DOCUMENT_TABLES:
        # All rows of the latest version: rank() keeps ties, and a version's rows tie.
        body = f"SELECT * FROM {source} QUALIFY rank() OVER (PARTITION BY doc_id ORDER BY {order}) = 1"
    else:  # documents and errors: one row per owner
        body = (f"SELECT * FROM {source}"
                f" QUALIFY row_number() OVER (PARTITION BY {ROW_OWNER[table]} ORDER BY {order}) = 1")
    return f"CREATE OR REPLACE VIEW {table} AS {body}"


def _columns(con: duckdb.DuckDBPyConnection, root: str, table: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {read_sql(root, table)}").fetchall()}


def _has_files(con: duckdb.DuckDBPyConnection, pattern: str) -> bool:
    # DuckDB's glob() works the same on local paths and, with httpfs, on gs:// and s3://.
    return con.execute("SELECT count(*) FROM glob(?)", [pattern]).fetchone()[0] > 0


def _check_root(root: str) -> None:
    if not is_remote(root) and not Path(root).is_dir():
        raise OutputError(f"output directory not found: {root}")


def open_output(root: str | Path) -> Tables:
    """Connect to an in-memory DuckDB with a view per table that has files under root.

    Remote roots (gs://bucket/out) need DuckDB's httpfs extension and credentials, e.g.
    `INSTALL httpfs; LOAD httpfs; CREATE SECRET (TYPE gcs, KEY_ID ..., SECRET ...)`.
    """
    root = str(root)
    _check_root(root)
    con = duckdb.connect(":memory:")
    present, missing = [], []
    try:
        versioned = {}
        for table in TABLE_NAMES:  # documents first: the document tables' views select from it
            if _has_files(con, table_glob(root, table)):
                versioned[table] = VERSION_COLUMN in _columns(con, root, table)
                anchored = versioned.get("documents") == versioned[table]
                con.execute(view_sql(root, table, versioned[table], anchored))
                present.append(table)
            else:
                missing.append(table)
    except duckdb.Error as exc:
        con.close()
        raise OutputError(f"cannot read {root}: {exc}") from exc
    return Tables(con, root, tuple(present), tuple(missing))
