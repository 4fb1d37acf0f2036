"""A real-corpus output for the analysis tests: Wikinews articles, the reference article, one junk document.

Rebuild (several minutes on 2 cores; the shipped default models, torch backend):

    nice -n 10 .venv/bin/python -m tests.wikinews_fixture [--wikinews ../shared/data/news/wikinews.jsonl]

It runs `stancebeam run` once on every STRIDE-th article of the Wikinews corpus (a few hundred,
2006-2020: dense months up to 2008, sparse years after), the reference article
`data/samples/2021-07-01-kim-xi-message.txt`, and a junk document that repeats JUNK_SENTENCE up
to the 100,000-character analysis cap, dated inside the dense period. The output's tables are
stored compactly, one Parquet file per table under tests/data/wikinews-report/ (a Hive folder per
date would be hundreds of small files); `materialise(dest)` writes them back out in the pipeline's
layout for `stancebeam query`/`report`, and `open_fixture()` opens them as DuckDB views for the
tests. The article text is CC BY 2.5 (NOTICE.md there).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from stancebeam.analysis.tables import Tables, sql_string
from stancebeam.transforms.schemas import PARTITION_COLUMN, TABLES
from tests.conftest import DATA, ROOT, SAMPLE_ARTICLE

FIXTURE = DATA / "wikinews-report"
WIKINEWS = ROOT.parent / "shared" / "data" / "news" / "wikinews.jsonl"
STRIDE = 8
RUN_ID = "wikinews-fixture"
JUNK_ID = "junk-repeated-un-iran"
JUNK_SENTENCE = "The United Nations criticised Iran."
JUNK_DATE = "2007-06-15"
PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive")


def junk_document(repeats: int = 60_000) -> dict:
    """About 2 MB of one sentence; the pipeline analyses its first 100,000 characters."""
    return {"id": JUNK_ID, "date": JUNK_DATE, "title": "Junk: one sentence, repeated",
            "text": " ".join([JUNK_SENTENCE] * repeats), "source": "junk", "url": None}


def write_inputs(folder: Path, wikinews: Path) -> int:
    lines = wikinews.read_text(encoding="utf-8").splitlines()
    chosen = lines[::STRIDE]
    (folder / "wikinews.jsonl").write_text("\n".join(chosen) + "\n", encoding="utf-8")
    (folder / "junk.jsonl").write_text(json.dumps(junk_document()) + "\n", encoding="utf-8")
    shutil.copy(SAMPLE_ARTICLE, folder)
    return len(chosen)


def compact(output: Path, dest: Path) -> None:
    """One zstd Parquet file per table, published_date as a column, rows in a stable order."""
    dest.mkdir(parents=True, exist_ok=True)
    for table, schema in TABLES.items():
        if not (output / table).is_dir():
            continue
        full = schema.append(pa.field(PARTITION_COLUMN, pa.date32()))
        data = ds.dataset(output / table, format="parquet", partitioning=PARTITIONING,
                          schema=full).to_table()
        key = "error_id" if table == "errors" else "doc_id"
        data = data.sort_by([(key, "ascending")])
        pq.write_table(data, dest / f"{table}.parquet", compression="zstd", compression_level=9)


def materialise(dest: Path, source: Path = FIXTURE) -> Path:
    """The fixture in the pipeline's layout: dest/<table>/published_date=<date>/part-0.parquet."""
    for path in sorted(source.glob("*.parquet")):
        data = pq.read_table(path)
        ds.write_dataset(data, dest / path.stem, format="parquet", partitioning=PARTITIONING,
                         basename_template="part-{i}.parquet", existing_data_behavior="overwrite_or_ignore")
    return dest


NOTICE_HEAD = """# NOTICE: tests/data/wikinews-report/

These Parquet files are stancebeam output tables (run `{run_id}`, shipped default models) for
{n} English Wikinews articles (every {stride}th record of the team's `wikinews.jsonl`), the
reference article `data/samples/2021-07-01-kim-xi-message.txt` and a synthetic junk document
(`{junk}`). They hold titles, URLs and sentences of the articles: derived from
Wikinews content, © Wikinews contributors, CC BY 2.5
(https://creativecommons.org/licenses/by/2.5/). Changes made: the articles were split into
sentences and analysed; the tables keep sentences, not whole texts. Built by
`python -m tests.wikinews_fixture` (tests/wikinews_fixture.py). The corpus notice follows.

"""


def write_notice(dest: Path, n: int) -> None:
    corpus = (ROOT / "data" / "NOTICE-wikinews.md").read_text(encoding="utf-8")
    head = NOTICE_HEAD.format(run_id=RUN_ID, n=n, stride=STRIDE, junk=JUNK_ID)
    (dest / "NOTICE.md").write_text(head + corpus, encoding="utf-8")


def open_fixture(source: Path = FIXTURE) -> Tables:
    """The fixture's tables as DuckDB views on its compact files (no hundreds of small files to
    glob: what open_output gives on the materialised layout, in a fraction of the time)."""
    con = duckdb.connect(":memory:")
    present = []
    for table in TABLES:
        path = source / f"{table}.parquet"
        if path.is_file():
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({sql_string(str(path))})")
            present.append(table)
    return Tables(con, str(source), tuple(present), tuple(t for t in TABLES if t not in present))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.wikinews_fixture")
    parser.add_argument("--wikinews", type=Path, default=WIKINEWS)
    parser.add_argument("--out", type=Path, default=FIXTURE)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the inputs and the pipeline's output here (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        inputs, output = work / "in", work / "out"
        inputs.mkdir(parents=True)
        n = write_inputs(inputs, args.wikinews)
        print(f"{n} Wikinews articles, the reference article and the junk document", flush=True)
        cmd = [sys.executable, "-m", "stancebeam.pipeline.cli", "run", "--input", str(inputs / "*"),
               "--output", str(output), "--run-id", RUN_ID,
               f"--direct_num_workers={args.workers}"]
        subprocess.run(cmd, check=True)
        compact(output, args.out)
        write_notice(args.out, n)
    for path in sorted(args.out.glob("*.parquet")):
        print(f"{path}: {pq.read_metadata(path).num_rows} rows, {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
