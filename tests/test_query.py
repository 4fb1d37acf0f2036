"""`stancebeam query`: presets against independent pandas expectations, formats, and bad input."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil

import pandas as pd
import pytest

from stancebeam.analysis.query import PRESETS, main, run_preset
from stancebeam.analysis.tables import open_output
from tests.analysis_fixtures import read_frame, write_sample_output

D = dt.date


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_output(tmp_path_factory.mktemp("out"))


def run_json(capsys, *argv) -> list[dict]:
    rc = main([*map(str, argv), "--format", "json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads(captured.out)


def run_fail(capsys, *argv) -> str:
    rc = main(list(map(str, argv)))
    captured = capsys.readouterr()
    assert rc == 2, captured.out
    assert captured.err.startswith("stancebeam query: error:")
    return captured.err


def in_range(frame: pd.DataFrame, since=None, until=None) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if since:
        keep &= frame.published_date.map(lambda d: d is not None and d >= since)
    if until:
        keep &= frame.published_date.map(lambda d: d is not None and d <= until)
    return frame[keep]


def expected_ranking(root, since=None, until=None, min_mentions=3, praised=False,
                     min_docs=1) -> pd.DataFrame:
    frame = in_range(read_frame(root, "actor_sentiment"), since, until)
    g = frame.groupby("actor_id").agg(actor_name=("actor_name", "min"), n_docs=("doc_id", "nunique"),
                                      n_mentions=("n_mentions", "sum"),
                                      mean_score=("score", lambda s: s.astype(float).mean()))
    g = g[(g.n_mentions >= min_mentions) & (g.n_docs >= min_docs)
          & ((g.mean_score > 0) if praised else (g.mean_score < 0))]
    g = g.reset_index().assign(key=lambda x: -x.mean_score if praised else x.mean_score)
    return g.sort_values(["key", "n_docs", "n_mentions", "actor_id"],
                         ascending=[True, False, False, True])


def assert_rows_match(rows: list[dict], expected: pd.DataFrame, columns: list[str]) -> None:
    assert len(rows) == len(expected)
    for row, (_, want) in zip(rows, expected.iterrows()):
        for col in columns:
            if isinstance(want[col], float):
                assert row[col] == pytest.approx(want[col], abs=1e-6), col
            else:
                assert row[col] == want[col], col


def test_top_criticised_matches_pandas(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "top-criticised")
    expected = expected_ranking(sample)
    assert [r["actor_id"] for r in rows] == ["person:olaf_scholz", "org:european_commission", "country:DEU"]
    assert_rows_match(rows, expected, ["actor_id", "actor_name", "n_docs", "n_mentions", "mean_score"])


def test_top_praised_with_date_range_and_min_mentions(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "top-praised", "--param", "since=2024-02-01",
                    "--param", "until=2024-03-31", "--param", "min_mentions=1")
    expected = expected_ranking(sample, D(2024, 2, 1), D(2024, 3, 31), 1, praised=True)
    assert len(rows) >= 2
    assert_rows_match(rows, expected, ["actor_id", "n_docs", "n_mentions", "mean_score"])


def test_min_docs_param(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "top-criticised", "--param", "min_mentions=0",
                    "--param", "min_docs=4")
    expected = expected_ranking(sample, min_mentions=0, min_docs=4)
    assert 0 < len(rows) < len(expected_ranking(sample, min_mentions=0))
    assert_rows_match(rows, expected, ["actor_id", "n_docs", "mean_score"])


def test_a_repeated_row_does_not_weigh_twice(sample, tmp_path, capsys):
    """A document's rows written twice (a re-run into the same folder) still count once."""
    import shutil

    copy = tmp_path / "twice"
    shutil.copytree(sample, copy)
    for table in ("actor_sentiment", "actor_stance"):
        for part in (copy / table).glob("published_date=2024-02-19/*.parquet"):
            shutil.copy(part, part.with_name("again-" + part.name))
    assert run_json(capsys, copy, "--preset", "top-criticised") == \
        run_json(capsys, sample, "--preset", "top-criticised")
    twice = run_json(capsys, copy, "--preset", "stance-matrix")
    once = run_json(capsys, sample, "--preset", "stance-matrix")
    assert [(r["holder_id"], r["target_id"], r["n_docs"], r["n_favor"], r["n_against"]) for r in twice] \
        == [(r["holder_id"], r["target_id"], r["n_docs"], r["n_favor"], r["n_against"]) for r in once]
    assert [r["mean_score"] for r in twice] == pytest.approx([r["mean_score"] for r in once])


def test_limit_param(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "top-praised", "--param", "min_mentions=0",
                    "--param", "limit=1")
    assert [r["actor_id"] for r in rows] == ["person:emmanuel_macron"]


@pytest.mark.parametrize("actor,granularity", [("scholz", "month"), ("person:olaf_scholz", "week"),
                                                ("EMMANUEL", "day"), ("germany", "quarter"),
                                                ("france", "year")])
def test_actor_trend(sample, capsys, actor, granularity):
    rows = run_json(capsys, sample, "--preset", "actor-trend", "--param", f"actor={actor}",
                    "--param", f"granularity={granularity}")
    frame = read_frame(sample, "actor_sentiment")
    frame = frame[(frame.actor_id == actor) | frame.actor_name.str.lower().str.contains(actor.lower())]
    frame = frame[frame.published_date.notna()].copy()
    trunc = {"day": lambda d: d, "week": lambda d: d - dt.timedelta(days=d.weekday()),
             "month": lambda d: d.replace(day=1),
             "quarter": lambda d: d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1),
             "year": lambda d: d.replace(month=1, day=1)}[granularity]
    frame["period"] = frame.published_date.map(trunc)
    g = frame.groupby("period").agg(n_docs=("doc_id", "nunique"), n_mentions=("n_mentions", "sum"),
                                    mean_score=("score", lambda s: s.astype(float).mean()))
    assert [D.fromisoformat(r["period"]) for r in rows] == list(g.index)
    assert [r["n_mentions"] for r in rows] == list(g.n_mentions)
    assert [r["n_docs"] for r in rows] == list(g.n_docs)
    assert [r["mean_score"] for r in rows] == pytest.approx(list(g.mean_score), abs=1e-6)


def expected_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    g = frame.groupby(["holder_id", "target_id"]).agg(
        n_statements=("n_statements", "sum"), n_docs=("doc_id", "nunique"),
        mean_score=("score", lambda s: s.astype(float).mean())).reset_index()
    return g.sort_values(["n_docs", "n_statements", "holder_id", "target_id"],
                         ascending=[False, False, True, True])


def test_stance_matrix(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "stance-matrix", "--param", "until=2024-03-31")
    g = expected_matrix(in_range(read_frame(sample, "actor_stance"), until=D(2024, 3, 31)))
    assert_rows_match(rows, g, ["holder_id", "target_id", "n_statements", "n_docs", "mean_score"])
    assert rows[0]["holder_name"] == "(the article)" and rows[0]["target_name"] == "Olaf Scholz"
    three = run_json(capsys, sample, "--preset", "stance-matrix", "--param", "min_statements=3")
    g = expected_matrix(read_frame(sample, "actor_stance"))
    assert [(r["holder_id"], r["target_id"]) for r in three] == \
        list(g[g.n_statements >= 3][["holder_id", "target_id"]].itertuples(index=False, name=None))
    assert 0 < len(three) < len(g)
    docs = run_json(capsys, sample, "--preset", "stance-matrix", "--param", "min_docs=3")
    assert [(r["holder_id"], r["target_id"]) for r in docs] == \
        list(g[g.n_docs >= 3][["holder_id", "target_id"]].itertuples(index=False, name=None))
    assert all(r["n_favor"] + r["n_against"] <= r["n_docs"] for r in docs)


def test_evidence_joins_documents(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "evidence", "--param", "actor=person:olaf_scholz",
                    "--param", "limit=5")
    docs = read_frame(sample, "documents").set_index("doc_id")
    sent = read_frame(sample, "actor_sentiment")
    sent = sent[sent.actor_id == "person:olaf_scholz"].set_index("doc_id")
    # Scholz is in four documents: d05 and d01 from news.example, d02 too, d07 has no source.
    # Each document's strongest item comes before any second one; the strongest from a source
    # not yet shown first: d05 (-0.80), d07 (-0.40, its own source) before d01 (+0.75).
    assert [r["doc_id"] for r in rows] == ["d05", "d07", "d01", "d02", "d07"]
    assert len({r["doc_id"] for r in rows[:4]}) == 4
    for r in rows:
        assert (r["title"], r["url"]) == (docs.title[r["doc_id"]], docs.url[r["doc_id"]])
        assert r["doc_score"] == pytest.approx(float(sent.score[r["doc_id"]]), abs=1e-6)
        assert r["sentence"] in [e["sentence"] for e in sent.evidence[r["doc_id"]]]
    # How many of the actor's documents lean the item's way (score beyond +-0.05).
    negative = int((sent.score < -0.05).sum())
    assert [(r["n_docs_agree"], r["n_docs"]) for r in rows[:3]] == \
        [(negative, 4), (negative, 4), (int((sent.score > 0.05).sum()), 4)]
    assert rows[0] == {**rows[0], "published_date": "2024-02-19", "actor_name": "Olaf Scholz",
                       "sentence": "Critics blasted Olaf Scholz for the delays."}
    assert rows[0]["score"] == pytest.approx(-0.8)


def test_evidence_includes_undated_documents(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "evidence", "--param", "actor=germany")
    undated = [r for r in rows if r["published_date"] is None]
    assert [r["doc_id"] for r in undated] == ["d08"]


def test_errors_summary(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "errors-summary")
    assert rows == [{"stage": "parse", "severity": "rejected", "reason": "empty body",
                     "n_errors": 1, "n_origins": 1, "example_origin": "data/wire.jsonl:17"}]


def test_plain_sql_and_string_params(sample, capsys):
    rows = run_json(capsys, sample, "SELECT count(*) AS n FROM documents "
                    "WHERE published_date >= CAST($since AS DATE)", "--param", "since=2024-02-01")
    docs = read_frame(sample, "documents")
    assert rows == [{"n": int(docs.published_date.map(lambda d: d is not None and
                                                      d >= D(2024, 2, 1)).sum())}]


def test_table_format_aligns_and_rounds(sample, capsys):
    assert main([str(sample), "--preset", "top-criticised"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rule, first = lines[0], lines[1], lines[2]
    assert header.split() == ["actor_id", "actor_name", "actor_type", "n_docs", "n_mentions",
                              "mean_score"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert len(header) == len(rule) == len(first)  # numbers right-aligned to the rule's end
    assert first.split()[:3] == ["person:olaf_scholz", "Olaf", "Scholz"] and first.endswith("-0.094")
    assert lines[-1] == "(3 rows)"


def test_table_format_shows_nulls(sample, capsys):
    assert main([str(sample), "SELECT doc_id, published_date FROM documents "
                 "WHERE doc_id = 'd08'"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["d08", "NULL"]


def test_csv_matches_json(sample, capsys):
    as_json = run_json(capsys, sample, "--preset", "stance-matrix")
    assert main([str(sample), "--preset", "stance-matrix", "--format", "csv"]) == 0
    as_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["holder_id"] for r in as_csv] == [r["holder_id"] for r in as_json]
    assert [float(r["mean_score"]) for r in as_csv] == pytest.approx(
        [r["mean_score"] for r in as_json])


def test_json_dates_are_iso_and_nested_values_kept(sample, capsys):
    rows = run_json(capsys, sample, "SELECT published_date, evidence FROM actor_sentiment "
                    "WHERE doc_id = 'd03' AND actor_id = 'org:european_commission'")
    assert rows[0]["published_date"] == "2024-01-22"
    assert rows[0]["evidence"][0]["sentence"] == \
        "Macron attacked the European Commission over farm rules."


def test_list_presets(capsys):
    assert main(["--list-presets"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}:" in out for name in PRESETS)


@pytest.mark.parametrize("args,needle", [
    (["--preset", "top-praised", "--param", "since=2024-13-01"], "since"),
    (["--preset", "top-praised", "--param", "since=yesterday"], "YYYY-MM-DD"),
    (["--preset", "top-praised", "--param", "limit=ten"], "integer"),
    (["--preset", "top-praised", "--param", "limit=0"], ">= 1"),
    (["--preset", "top-praised", "--param", "bogus=1"], "no parameter bogus"),
    (["--preset", "top-praised", "--param", "limit"], "KEY=VALUE"),
    (["--preset", "top-praised", "--param", "limit=1", "--param", "limit=2"], "twice"),
    (["--preset", "top-praised", "--param", "since=2024-03-01", "--param", "until=2024-01-01"],
     "after"),
    (["--preset", "actor-trend", "--param", "actor=x", "--param", "granularity=decade"],
     "day, week, month, quarter, year"),
    (["--preset", "actor-trend"], "needs --param actor"),
    (["--preset", "no-such"], "unknown preset"),
    (["SELEC 1"], "syntax error"),
    ([], "either a SQL query or --preset"),
])
def test_bad_input_exits_2(sample, capsys, args, needle):
    assert needle in run_fail(capsys, sample, *args)


def test_missing_output_dir(tmp_path, capsys):
    assert "not found" in run_fail(capsys, tmp_path / "nope", "SELECT 1")


def test_missing_table_is_named(sample, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(sample, partial)
    shutil.rmtree(partial / "errors")
    tables = open_output(partial)
    assert "errors" in tables.missing and "documents" in tables.present
    tables.close()
    err = run_fail(capsys, partial, "--preset", "errors-summary")
    assert "table errors is not in" in err
    assert run_json(capsys, partial, "SELECT count(*) AS n FROM documents") == [{"n": 8}]


@pytest.mark.parametrize("actor", ["x'; DROP VIEW mentions; --", "x' OR '1'='1", "%' OR 1=1 --"])
def test_injection_in_param_is_data(sample, actor):
    tables = open_output(sample)
    try:
        for preset in ("evidence", "actor-trend"):
            columns, rows = run_preset(tables, preset, {"actor": actor})
            assert columns and rows == []
        assert tables.con.execute("SELECT count(*) FROM mentions").fetchone()[0] == 25
        views = {r[0] for r in tables.con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        assert {"documents", "mentions", "actor_sentiment", "actor_stance", "errors"} <= views
    finally:
        tables.close()


def test_injection_via_cli_returns_no_rows(sample, capsys):
    rows = run_json(capsys, sample, "--preset", "evidence", "--param",
                    "actor=x'; DROP VIEW mentions; --")
    assert rows == []
