"""Open a stancebeam output directory as a DuckDB connection with one view per table."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb

from stancebeam.transforms.schemas import PARTITION_COLUMN, TABLES

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


def view_sql(root: str, table: str) -> str:
    """CREATE VIEW for one table, with the Hive partition column typed as DATE.

    hive_types pins the type: with autocast alone, an output whose only partition is
    __HIVE_DEFAULT_PARTITION__ would type published_date as VARCHAR (DuckDB reads that
    folder value as NULL either way).
    """
    source = (f"read_parquet({sql_string(table_glob(root, table))}, hive_partitioning = true,"
              f" union_by_name = true, hive_types = {{'{PARTITION_COLUMN}': 'DATE'}})")
    return f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {source}"


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
        for table in TABLE_NAMES:
            if _has_files(con, table_glob(root, table)):
                con.execute(view_sql(root, table))
                present.append(table)
            else:
                missing.append(table)
    except duckdb.Error as exc:
        con.close()
        raise OutputError(f"cannot read {root}: {exc}") from exc
    return Tables(con, root, tuple(present), tuple(missing))
