"""`stancebeam query`: run SQL or a named preset on an output directory and print the rows."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import decimal
import json
import math
import sys
from typing import Any, Callable, TextIO

import duckdb

from stancebeam.analysis.tables import OutputError, Tables, open_output

FORMATS = ("table", "csv", "json")
MAX_CELL = 80  # table format only; csv and json keep full values


class UsageError(Exception):
    """A bad argument or parameter: reported with exit status 2."""


# --- presets -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Param:
    """One preset parameter: how to parse it, and its default (None: optional, unbound filter)."""

    kind: str  # date | int | str | choice
    help: str
    default: Any = None
    required: bool = False
    minimum: int | None = None
    # For kind "choice": value -> SQL fragment. Only these fixed fragments reach the SQL text.
    fragments: dict[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    help: str
    sql: str
    params: dict[str, Param]


_SINCE = Param("date", "first published_date included (YYYY-MM-DD); undated rows drop out")
_UNTIL = Param("date", "last published_date included (YYYY-MM-DD); undated rows drop out")
_ACTOR = Param("str", "actor id (exact) or part of the actor name (case-insensitive; % and _ "
               "are wildcards)", required=True)
_DATES = "($since IS NULL OR published_date >= $since) AND ($until IS NULL OR published_date <= $until)"
_ACTOR_MATCH = "(actor_id = $actor OR actor_name ILIKE '%' || $actor || '%')"

# actor_stance.source filters (transforms/stance.py says what each source is).
STANCE_SOURCES = {
    "all": "TRUE",
    "speakers": "source <> 'article'",
    "pair_model": "source = 'pair_model'",
    "article": "source = 'article'",
}

# date_trunc returns TIMESTAMP in DuckDB 2.0; the cast keeps periods as plain dates.
PERIODS = {
    "day": "published_date",
    "week": "CAST(date_trunc('week', published_date) AS DATE)",  # ISO weeks, from Monday
    "month": "CAST(date_trunc('month', published_date) AS DATE)",
    "quarter": "CAST(date_trunc('quarter', published_date) AS DATE)",
    "year": "CAST(date_trunc('year', published_date) AS DATE)",
}

# Every aggregate weighs a document once: rows are first reduced to one per (actor, document)
# (the pipeline writes one; a re-run or a copy must not count twice), and means are taken over
# those documents, however often a document names the actor.
PER_DOC_SENTIMENT = """
SELECT actor_id, doc_id, min(actor_name) AS actor_name, min(actor_type) AS actor_type,
       min(actor_country) AS actor_country, min(published_date) AS published_date,
       max(n_mentions) AS n_mentions, avg(score) AS score
FROM actor_sentiment
WHERE {where}
GROUP BY actor_id, doc_id
"""

_RANKING = """
WITH per_doc AS ({per_doc})
SELECT actor_id, min(actor_name) AS actor_name, min(actor_type) AS actor_type,
       count(*) AS n_docs, CAST(sum(n_mentions) AS BIGINT) AS n_mentions,
       avg(score) AS mean_score
FROM per_doc
GROUP BY actor_id
HAVING count(*) >= $min_docs AND sum(n_mentions) >= $min_mentions AND avg(score) {sign} 0
ORDER BY mean_score {order}, n_docs DESC, n_mentions DESC, actor_id
LIMIT $limit
"""

# Holder -> target: one row per (pair, document), so cells count documents; statements are detail.
STANCE_MATRIX = """
WITH per_doc AS (
    SELECT holder_id, target_id, doc_id, min(holder_name) AS holder_name,
           min(target_name) AS target_name, max(n_statements) AS n_statements, avg(score) AS score,
           bool_or(stance = 'favor') AS favor, bool_or(stance = 'against') AS against,
           bool_or(source = 'pair_model') AS pair_model
    FROM actor_stance
    WHERE {where}
    GROUP BY holder_id, target_id, doc_id
)
SELECT holder_id, min(holder_name) AS holder_name, target_id, min(target_name) AS target_name,
       count(*) AS n_docs, CAST(sum(n_statements) AS BIGINT) AS n_statements,
       avg(score) AS mean_score,
       count(*) FILTER (WHERE favor) AS n_favor,
       count(*) FILTER (WHERE against) AS n_against,
       count(*) FILTER (WHERE pair_model) AS n_docs_pair_model
FROM per_doc
GROUP BY holder_id, target_id
"""

# A score within this band of 0 has no sign (the report's neutral pill uses the same band).
SIGN_BAND = 0.05

# Evidence, strongest first, but spread: the best item of every document before a second item
# of any, a sentence another document already gave (wire copies) after new ones, and among
# documents' best items those from a source not yet shown first (documents.source, else the
# URL's host). n_docs_agree of n_docs: the actor's documents whose score has the item's sign.
EVIDENCE = """
WITH rows AS (
    SELECT * FROM actor_sentiment WHERE {where}
), docs AS (
    SELECT actor_id, doc_id, avg(score) AS doc_score FROM rows GROUP BY actor_id, doc_id
), signs AS (
    SELECT actor_id, count(*) AS n_docs,
           count(*) FILTER (WHERE doc_score > {band}) AS n_pos,
           count(*) FILTER (WHERE doc_score < -{band}) AS n_neg
    FROM docs GROUP BY actor_id
), items AS (
    SELECT rows.doc_id, rows.actor_id, rows.actor_name, rows.published_date,
           docs.doc_score, unnest(rows.evidence) AS e
    FROM rows JOIN docs USING (actor_id, doc_id)
), keyed AS (
    SELECT items.*, {source_columns},
           regexp_replace(regexp_replace(lower(e.sentence), '[0-9]+', '0', 'g'),
                          '[^a-z0]+', ' ', 'g') AS sentence_key
    FROM items {doc_join}
), ranked AS (
    SELECT *,
           coalesce(nullif(source_name, ''),
                    nullif(regexp_extract(url, '^[a-zA-Z]+://([^/]+)', 1), ''), doc_id) AS origin_key,
           row_number() OVER (PARTITION BY actor_id, doc_id
                              ORDER BY abs(e.score) DESC, e.sentence_index) AS doc_rank
    FROM keyed
), spread AS (
    SELECT *,
           row_number() OVER (PARTITION BY actor_id, sentence_key
                              ORDER BY doc_rank, abs(e.score) DESC, doc_id) AS text_rank,
           row_number() OVER (PARTITION BY actor_id, origin_key, doc_rank = 1
                              ORDER BY abs(e.score) DESC, doc_id) AS origin_rank
    FROM ranked
), ordered AS (
    SELECT spread.*, signs.n_docs,
           CASE WHEN e.score > {band} THEN signs.n_pos WHEN e.score < -{band} THEN signs.n_neg
                ELSE signs.n_docs - signs.n_pos - signs.n_neg END AS n_docs_agree,
           row_number() OVER (PARTITION BY spread.actor_id
                              ORDER BY doc_rank > 1, text_rank > 1,
                                       CASE WHEN doc_rank = 1 THEN origin_rank END,
                                       doc_rank, abs(e.score) DESC,
                                       published_date DESC NULLS LAST, doc_id,
                                       e.sentence_index) AS pick
    FROM spread JOIN signs USING (actor_id)
)
SELECT published_date, actor_id, actor_name, title, url, e.sentence AS sentence, e.label AS label,
       e.score AS score, doc_score, doc_id, n_docs_agree, n_docs
FROM ordered
{per_actor}
ORDER BY {order_actor} pick, actor_id
"""


def evidence_sql(where: str, documents: bool = True, per_actor: bool = False) -> str:
    """The evidence query over actor_sentiment rows matching `where`.

    Args:
        where: a SQL condition with bound parameters only.
        documents: whether to join the documents table (titles, URLs, sources).
        per_actor: keep the first $k items of each actor (ordered by actor) instead of the first
            $limit overall.
    """
    if documents:
        source_columns = "d.title, d.url, d.source AS source_name"
        doc_join = "LEFT JOIN documents AS d ON d.doc_id = items.doc_id"
    else:
        source_columns = "NULL::VARCHAR AS title, NULL::VARCHAR AS url, NULL::VARCHAR AS source_name"
        doc_join = ""
    return EVIDENCE.format(
        where=where, band=SIGN_BAND, source_columns=source_columns,
        doc_join=doc_join, per_actor="WHERE pick <= $k" if per_actor else "",
        order_actor="actor_id," if per_actor else "") + ("" if per_actor else "LIMIT $limit\n")


def _ranking_params() -> dict[str, Param]:
    return {"since": _SINCE, "until": _UNTIL,
            "min_docs": Param("int", "least documents over the range", 1, minimum=0),
            "min_mentions": Param("int", "least mentions over the range", 3, minimum=0),
            "limit": Param("int", "most rows", 10, minimum=1)}


def _ranking(sign: str, order: str) -> str:
    return _RANKING.format(per_doc=PER_DOC_SENTIMENT.format(where=_DATES), sign=sign, order=order)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("top-criticised", "actors with the lowest mean sentiment over documents (mean < 0) "
           "in a date range", _ranking("<", "ASC"), _ranking_params()),
    Preset("top-praised", "actors with the highest mean sentiment over documents (mean > 0) "
           "in a date range", _ranking(">", "DESC"), _ranking_params()),
    Preset("actor-trend", "an actor's mean sentiment over documents per day, week, month, "
           "quarter or year", f"""
WITH per_doc AS ({PER_DOC_SENTIMENT.format(
        where=f"published_date IS NOT NULL AND {_ACTOR_MATCH} AND {_DATES}")})
SELECT {{granularity}} AS period, actor_id, min(actor_name) AS actor_name,
       count(*) AS n_docs, CAST(sum(n_mentions) AS BIGINT) AS n_mentions,
       avg(score) AS mean_score
FROM per_doc
GROUP BY ALL
ORDER BY actor_id, period
""", {"actor": _ACTOR, "since": _SINCE, "until": _UNTIL,
      "granularity": Param("choice", "day, week, month, quarter or year", "month",
                           fragments=PERIODS)}),
    Preset("stance-matrix", "holder x target: documents, statements and mean stance over "
           "documents", f"""
{STANCE_MATRIX.format(where=f"{_DATES} AND {{source}}")}
HAVING count(*) >= $min_docs AND sum(n_statements) >= $min_statements
ORDER BY n_docs DESC, n_statements DESC, holder_id, target_id
LIMIT $limit
""", {"since": _SINCE, "until": _UNTIL,
      "source": Param("choice", "which rows: all, speakers (pair model and speaker sentiment), "
                      "pair_model or article", "all", fragments=STANCE_SOURCES),
      "min_docs": Param("int", "least documents per pair", 1, minimum=0),
      "min_statements": Param("int", "least statements per pair", 1, minimum=0),
      "limit": Param("int", "most rows", 100, minimum=1)}),
    Preset("evidence", "the evidence sentences behind an actor's scores, strongest first, one "
           "per document (and source) before a second; with how many documents agree",
           evidence_sql(f"{_ACTOR_MATCH} AND {_DATES}"),
           {"actor": _ACTOR, "since": _SINCE, "until": _UNTIL,
            "limit": Param("int", "most rows", 20, minimum=1)}),
    Preset("errors-summary", "errors by stage, severity and reason", f"""
SELECT stage, severity, reason, count(*) AS n_errors, count(DISTINCT origin) AS n_origins,
       min(origin) AS example_origin
FROM errors
WHERE {_DATES}
GROUP BY ALL
ORDER BY n_errors DESC, stage, severity, reason
""", {"since": _SINCE, "until": _UNTIL}),
]}


def _parse_int(name: str, spec: Param, raw: str) -> int:
    try:
        value = int(raw, 10)
    except ValueError:
        raise UsageError(f"parameter {name}: expected an integer, got {raw!r}") from None
    if spec.minimum is not None and value < spec.minimum:
        raise UsageError(f"parameter {name}: must be >= {spec.minimum}, got {value}")
    return value


def _parse_date(name: str, raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"parameter {name}: expected a date YYYY-MM-DD, got {raw!r}") from None


def parse_param(name: str, spec: Param, raw: str) -> Any:
    """One parameter value, typed and checked; raises UsageError."""
    if spec.kind == "date":
        return _parse_date(name, raw)
    if spec.kind == "int":
        return _parse_int(name, spec, raw)
    if spec.kind == "choice":
        if raw not in spec.fragments:
            raise UsageError(f"parameter {name}: expected one of {', '.join(spec.fragments)},"
                             f" got {raw!r}")
        return raw
    if not raw:
        raise UsageError(f"parameter {name}: must not be empty")
    return raw


def split_params(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE strings as a dict; raises UsageError on a malformed or repeated key."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE, got {pair!r}")
        if key in out:
            raise UsageError(f"parameter {key} given twice")
        out[key] = value
    return out


def bind_preset(preset: Preset, raw: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The preset's SQL and its typed parameters, from the user's raw KEY=VALUE strings."""
    unknown = sorted(set(raw) - set(preset.params))
    if unknown:
        raise UsageError(f"preset {preset.name} has no parameter {', '.join(unknown)};"
                         f" it takes: {', '.join(preset.params) or 'none'}")
    values, fragments = {}, {}
    for name, spec in preset.params.items():
        if name in raw:
            value = parse_param(name, spec, raw[name])
        elif spec.required:
            raise UsageError(f"preset {preset.name} needs --param {name}=...")
        else:
            value = spec.default
        if spec.kind == "choice":
            fragments[name] = spec.fragments[value]
        else:
            values[name] = value
    since, until = values.get("since"), values.get("until")
    if since and until and since > until:
        raise UsageError(f"since ({since}) is after until ({until})")
    sql = preset.sql.format(**fragments) if fragments else preset.sql
    return sql, values


def list_presets(out: TextIO) -> None:
    for preset in PRESETS.values():
        out.write(f"{preset.name}: {preset.help}\n")
        for name, spec in preset.params.items():
            kind = "|".join(spec.fragments) if spec.fragments else spec.kind
            need = "required" if spec.required else f"default {spec.default}"
            out.write(f"    {name}={kind} ({need}) {spec.help}\n")


# --- output --------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    """Value as JSON-ready Python: ISO dates, floats for decimals, null for NaN."""
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def table_cell(value: Any) -> str:
    """One value as the table format shows it: floats to 3 decimals, nested values as JSON."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (float, decimal.Decimal)):
        text = f"{float(value):.3f}"
        return "0.000" if text == "-0.000" else text
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(_jsonable(value), ensure_ascii=False)
    else:
        text = _jsonable(value) if not isinstance(value, str) else value
        text = str(text)
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def format_table(columns: list[str], rows: list[tuple], out: TextIO) -> None:
    cells = [[table_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [bool(rows) and all(r[i] is None or _is_number(r[i]) for r in rows)
               for i in range(len(columns))]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out.write(line(columns) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    out.write(f"({len(rows)} row{'' if len(rows) == 1 else 's'})\n")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_jsonable(value), ensure_ascii=False)
    return _jsonable(value)


def format_csv(columns: list[str], rows: list[tuple], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_cell(v) for v in row] for row in rows)


def format_json(columns: list[str], rows: list[tuple], out: TextIO) -> None:
    records = [{c: _jsonable(v) for c, v in zip(columns, row)} for row in rows]
    json.dump(records, out, ensure_ascii=False, indent=2, allow_nan=False)
    out.write("\n")


FORMATTERS: dict[str, Callable[[list[str], list[tuple], TextIO], None]] = {
    "table": format_table, "csv": format_csv, "json": format_json}


# --- running -------------------------------------------------------------------------------

def run_sql(tables: Tables, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """Columns and rows of one statement; parameters are bound by DuckDB, never spliced in."""
    cursor = tables.con.execute(sql, params or None)
    if cursor.description is None:
        return [], []
    return [d[0] for d in cursor.description], cursor.fetchall()


def run_preset(tables: Tables, name: str, raw: dict[str, str]) -> tuple[list[str], list[tuple]]:
    """Columns and rows of a preset, from raw KEY=VALUE strings."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    sql, values = bind_preset(PRESETS[name], raw)
    return run_sql(tables, sql, values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stancebeam query",
        description="Query an output directory with DuckDB. Views: documents, mentions, "
                    "actor_sentiment, actor_stance, errors (published_date is a DATE, NULL "
                    "for undated documents).",
        epilog="With plain SQL, --param KEY=VALUE binds $KEY as a string.")
    parser.add_argument("output", nargs="?", help="the pipeline's output directory")
    parser.add_argument("sql", nargs="?", help="a SQL query over the views")
    parser.add_argument("--preset", help="run a named query instead of SQL (see --list-presets)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a preset parameter; repeat for several")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--list-presets", action="store_true", help="list presets and exit")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    if not args.output:
        raise UsageError("OUTPUT directory is required")
    if bool(args.sql) == bool(args.preset):
        raise UsageError("give either a SQL query or --preset NAME")


def _execute(args: argparse.Namespace) -> tuple[list[str], list[tuple]]:
    raw = split_params(args.param)
    if args.preset and args.preset not in PRESETS:
        raise UsageError(f"unknown preset {args.preset!r}; presets: {', '.join(PRESETS)}")
    tables = open_output(args.output)
    try:
        if args.preset:
            return run_preset(tables, args.preset, raw)
        return run_sql(tables, args.sql, raw)
    except duckdb.Error as exc:
        raise UsageError(tables.explain(exc)) from exc
    finally:
        tables.close()


def main(argv: list[str]) -> int:
    """Entry point of `stancebeam query`; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2)
        return int(exc.code or 0)
    if args.list_presets:
        list_presets(sys.stdout)
        return 0
    try:
        _check_args(args)
        columns, rows = _execute(args)
    except (UsageError, OutputError) as exc:
        print(f"stancebeam query: error: {exc}", file=sys.stderr)
        return 2
    if columns:
        FORMATTERS[args.format](columns, rows, sys.stdout)
    return 0
