"""A run killed with SIGKILL at any point, then rerun, leaves the tables a clean run leaves."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import duckdb
import pytest

from stancebeam.analysis.tables import open_output
from stancebeam.pipeline.runner import run
from stancebeam.transforms.faults import FAULT_ENV
from stancebeam.transforms.schemas import TABLES, VERSION_COLUMN
from tests.conftest import ROOT

# Where each killed run dies (transforms/faults.py): while documents are being analysed; after
# every row is staged, before the first commit; and in the middle of the commits, with two
# final files in place and the third about to be renamed. Each kill costs a process start
# (Beam, torch, spaCy, the models): three, as few as cover the phases. A dead commit's
# half-written merge is covered in tests/test_concurrency.py.
KILLS = ["analysis:2", "commit:1", "rename:3"]
VOLATILE = {"run_id", VERSION_COLUMN}  # differ between any two runs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three short documents on three dates, a duplicate and a malformed line: every table."""
    lines = (ROOT / "data" / "samples" / "wikinews-sample.jsonl").read_text(encoding="utf-8").splitlines()
    folder = tmp_path_factory.mktemp("input")
    (folder / "docs.jsonl").write_text("\n".join([*(lines[i] for i in (6, 7, 12)), lines[6], '{"id": '])
                                       + "\n", encoding="utf-8")
    return folder


def args(corpus, out, config) -> list[str]:
    return [f"--input={corpus}/*", f"--output={out}", f"--config={config}"]


def killed_run(corpus, out, config, fault: str) -> None:
    env = {**os.environ, FAULT_ENV: fault}
    proc = subprocess.run([sys.executable, "-m", "stancebeam.pipeline.cli", "run", *args(corpus, out, config)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, (fault, proc.returncode, proc.stderr[-2000:])


def tables_of(root, views: bool) -> dict[str, list[str]]:
    """Every table's rows, without the columns that name the run, sorted: raw files or the views."""
    out = {}
    con = open_output(root).con if views else duckdb.connect()
    for table in TABLES:
        source = table if views else (f"read_parquet('{root}/{table}/**/*.parquet', hive_partitioning = true,"
                                      " union_by_name = true)")
        cursor = con.execute(f"SELECT * EXCLUDE ({', '.join(sorted(VOLATILE))}) FROM {source}")
        columns = [d[0] for d in cursor.description]
        out[table] = sorted(json.dumps(dict(zip(columns, r)), default=str, sort_keys=True) for r in cursor.fetchall())
    con.close()
    return out


def test_killed_runs_then_a_rerun_equal_a_clean_run(corpus, tmp_path, tiny_config):
    assert run(args(corpus, tmp_path / "clean", tiny_config)) == 0
    clean = tables_of(tmp_path / "clean", views=False)
    assert all(clean.values()) and len(clean["documents"]) == 3

    out = tmp_path / "out"
    for fault in KILLS:
        killed_run(corpus, out, tiny_config, fault)
        n_final = len(list(out.rglob("*.parquet")))
        assert n_final == (2 if fault == "rename:3" else 0), (fault, n_final)  # rename:3: two committed
    assert list((out / "_staging").iterdir())  # the dead runs' staged files are still there

    assert run(args(corpus, out, tiny_config)) == 0  # the rerun
    assert tables_of(out, views=False) == clean  # the files themselves: nothing lost, nothing twice
    assert tables_of(out, views=True) == tables_of(tmp_path / "clean", views=True) == clean
    assert not list(out.rglob("*.parquet.tmp-*"))  # a dead commit's half-written file: removed
