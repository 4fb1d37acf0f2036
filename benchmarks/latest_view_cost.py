"""What the latest-version views cost a query: the same aggregate on the raw files and on the views.

Writes a synthetic output (`--docs` documents, `--mentions` mentions each, `--versions` versions of
every document in separate files, as a streaming pipeline that saw each document that often
would), then times an actor aggregate over `mentions` read raw and through `open_output`.

    .venv/bin/python -m benchmarks.latest_view_cost --docs 100000 --mentions 10 --versions 1
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from stancebeam.analysis.tables import open_output, read_sql

QUERY = "SELECT actor_id, count(DISTINCT doc_id) AS n_docs, avg(score) AS mean_score FROM {} GROUP BY ALL"


def write_output(root: Path, docs: int, mentions: int, versions: int) -> None:
    con = duckdb.connect()
    for v in range(versions):
        stamp = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=v)
        for table, per_doc in (("documents", 1), ("mentions", mentions)):
            folder = root / table / "published_date=2024-01-01"
            folder.mkdir(parents=True, exist_ok=True)
            con.execute(f"""COPY (
                SELECT 'run-' || {v} AS run_id, 'm' AS model_id, 'd' || (i // {per_doc}) AS doc_id,
                       'a' || (i % 500) AS actor_id, (random() * 2 - 1)::FLOAT AS score,
                       TIMESTAMPTZ '{stamp.isoformat()}' AS analysed_at
                FROM range({docs * per_doc}) t(i)) TO '{folder}/part-v{v}.parquet' (FORMAT parquet)""")


def timed(con, sql: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--mentions", type=int, default=10)
    parser.add_argument("--versions", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_output(root, args.docs, args.mentions, args.versions)
        tables = open_output(root)
        raw = timed(tables.con, QUERY.format(read_sql(str(root), "mentions")))
        view = timed(tables.con, QUERY.format("mentions"))
        n_raw = tables.con.execute(f"SELECT count(*) FROM {read_sql(str(root), 'mentions')}").fetchone()[0]
        n_view = tables.con.execute("SELECT count(*) FROM mentions").fetchone()[0]
        tables.close()
    print(json.dumps({**vars(args), "load_average": os.getloadavg(), "mention_rows_in_files": n_raw,
                      "mention_rows_in_view": n_view, "raw_s": raw, "view_s": view}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
