"""Presets and report on a real-corpus output: Wikinews articles plus one repetitive junk document.

The fixture (tests/data/wikinews-report/, built by `python -m tests.wikinews_fixture` with the
shipped models) holds a junk document that repeats "The United Nations criticised Iran." to the
100,000-character cap. It must count as one document everywhere.
"""
from __future__ import annotations

import re
import shutil

import pytest

from stancebeam.analysis.query import run_preset
from stancebeam.analysis.report import collect, render
from tests.test_report_axes import assert_readable, measured_labels
from tests.wikinews_fixture import FIXTURE, JUNK_ID, open_fixture

UN, IRAN = "org:un", "country:IRN"


@pytest.fixture(scope="module")
def tables():
    t = open_fixture()
    yield t
    t.close()


def preset(tables, name: str, **params) -> list[dict]:
    columns, rows = run_preset(tables, name, {k: str(v) for k, v in params.items()})
    return [dict(zip(columns, r)) for r in rows]


def one(tables, sql: str):
    return tables.con.execute(sql).fetchall()[0]


@pytest.fixture(scope="module")
def report(tables):
    """The page `stancebeam report` writes (defaults: --top 5 --evidence 3)."""
    return render(collect(tables, 5, 3), "Wikinews sample", "now")


def test_the_fixture_is_small_real_and_carries_its_notice(tables):
    assert sum(p.stat().st_size for p in FIXTURE.iterdir()) < 3_000_000
    assert "CC BY 2.5" in (FIXTURE / "NOTICE.md").read_text(encoding="utf-8")
    n_docs, first, last = one(tables, "SELECT count(*), min(published_date), max(published_date) "
                                      "FROM documents")
    assert n_docs >= 300 and first.year <= 2006 and last.year >= 2020
    capped, chars = one(tables, f"SELECT n_chars_processed, n_chars FROM documents "
                                f"WHERE doc_id = '{JUNK_ID}'")
    assert 99_000 < capped <= 100_000 and chars > 2_000_000  # the cap ends on a whole word


def test_the_junk_document_counts_once_in_its_tables(tables):
    mentions = one(tables, f"SELECT count(*) FROM mentions WHERE doc_id = '{JUNK_ID}'")[0]
    assert mentions > 2000  # every mention is kept ...
    (n_mentions,) = one(tables, f"SELECT n_mentions FROM actor_sentiment "
                                f"WHERE doc_id = '{JUNK_ID}' AND actor_id = '{IRAN}'")
    # ... but the repeated sentence counts once: the first one (joined to the headline by the
    # sentence splitter) and one copy.
    assert n_mentions == 2
    statements = one(tables, f"SELECT max(n_statements) FROM actor_stance WHERE doc_id = '{JUNK_ID}'")
    assert statements[0] <= 2  # of about 2,800 sentences


def test_no_stance_cell_is_dominated_by_the_junk_document(tables, report):
    rows = preset(tables, "stance-matrix", limit=100_000)
    junk_pairs = {(h, t) for h, t in tables.con.execute(
        f"SELECT holder_id, target_id FROM actor_stance WHERE doc_id = '{JUNK_ID}'").fetchall()}
    assert (UN, IRAN) in junk_pairs
    for r in rows:
        if (r["holder_id"], r["target_id"]) in junk_pairs:
            docs = one(tables, f"SELECT count(DISTINCT doc_id) FROM actor_stance WHERE holder_id = "
                               f"'{r['holder_id']}' AND target_id = '{r['target_id']}'")[0]
            assert r["n_docs"] == docs and r["n_statements"] <= docs * 50
    un_iran = next(r for r in rows if (r["holder_id"], r["target_id"]) == (UN, IRAN))
    assert un_iran["n_statements"] < 20  # 2,777 before repeated sentences counted once
    # The report's cell shows documents: the junk document is one of them.
    cell = re.search(rf'data-holder-id="{UN}" data-target-id="{IRAN}" data-score="[^"]+" '
                     rf'data-docs="(\d+)" data-statements="(\d+)"', report)
    if cell:  # the cell is drawn when both are among the top holders and targets
        assert int(cell.group(1)) == un_iran["n_docs"]
    top = max(int(n) for n in re.findall(r'<text class="cell-count"[^>]*>(\d+)</text>', report))
    assert top >= 10  # the busiest cells are the corpus's, not one document's


def test_evidence_comes_from_distinct_documents(tables, report):
    rows = preset(tables, "evidence", actor=IRAN, limit=10)
    n_docs = one(tables, f"SELECT count(DISTINCT doc_id) FROM actor_sentiment WHERE actor_id = '{IRAN}'")[0]
    assert n_docs >= 10
    assert len({r["doc_id"] for r in rows}) == 10  # ten items, ten documents
    assert sum(r["doc_id"] == JUNK_ID for r in rows) <= 1
    assert all(r["n_docs"] == n_docs and 0 <= r["n_docs_agree"] <= n_docs for r in rows)
    for section in re.findall(r'<section class="actor-evidence".*?</section>', report, re.S):
        docs = re.findall(r'data-doc-id="([^"]+)"', section)
        assert len(set(docs)) == len(docs), section[:200]
        assert re.findall(r"\d+ of \d+ documents agree", section)


def test_actors_and_trend_follow_documents(tables, report):
    top = [r[0] for r in tables.con.execute(
        "SELECT actor_id FROM actor_sentiment GROUP BY actor_id "
        "ORDER BY count(DISTINCT doc_id) DESC, sum(n_mentions) DESC, actor_id LIMIT 5").fetchall()]
    assert re.findall(r'<g class="legend-item" data-actor-id="([^"]+)"', report) == top
    assert 'data-granularity="year"' in report  # 2006-2021: years


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium not on PATH: apt-get install -y chromium (CI installs it)")


@needs_chromium
def test_report_tick_labels_do_not_overlap_in_chromium(report, tmp_path):
    assert_readable(measured_labels(report, tmp_path))
