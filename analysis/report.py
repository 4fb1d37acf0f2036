"""`stancebeam report`: one self-contained HTML file with trend chart, stance heatmap and evidence."""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import html
import math
import sys
from pathlib import Path
from typing import Any

import duckdb

from stancebeam.analysis.query import (PER_DOC_SENTIMENT, PERIODS, SIGN_BAND, STANCE_MATRIX,
                                       evidence_sql)
from stancebeam.analysis.tables import OutputError, Tables, open_output

# Okabe-Ito colours (colour-blind safe), yellow dropped for contrast on white.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
DASHES = ["", "6 3", "2 3"]  # more series than colours: cycle dash patterns too
NEGATIVE, POSITIVE = (215, 48, 39), (26, 152, 80)  # diverging red / green ends


@dataclasses.dataclass
class Actor:
    actor_id: str
    name: str
    kind: str
    country: str | None
    n_docs: int
    n_mentions: int
    mean_score: float
    color: str = PALETTE[0]
    dash: str = ""


@dataclasses.dataclass
class ReportData:
    root: str
    summary: dict[str, Any]
    actors: list[Actor]
    granularity: str
    # actor_id -> [(period, mean score, documents, mentions)]
    series: dict[str, list[tuple[dt.date, float, int, int]]]
    stance: list[dict[str, Any]]
    evidence: dict[str, list[dict[str, Any]]]
    missing: tuple[str, ...]


def esc(value: Any) -> str:
    """Text for HTML content or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt_score(value: float | None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text.replace("-", "\u2212")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _rows(tables: Tables, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cursor = tables.con.execute(sql, params or None)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


# --- data ----------------------------------------------------------------------------------

def collect_summary(tables: Tables) -> dict[str, Any]:
    summary: dict[str, Any] = {"n_docs": None, "first": None, "last": None, "undated": None,
                               "n_errors": None}
    if "documents" in tables.present:
        summary.update(_rows(tables, """
            SELECT count(*) AS n_docs, min(published_date) AS first, max(published_date) AS last,
                   count(*) FILTER (WHERE published_date IS NULL) AS undated
            FROM documents""")[0])
    if "errors" in tables.present:
        summary["n_errors"] = _rows(tables, "SELECT count(*) AS n FROM errors")[0]["n"]
    return summary


def collect_actors(tables: Tables, top: int) -> list[Actor]:
    """The actors in most documents (mentions break ties), each with a colour and dash pattern.

    Documents, not mentions: one long document that repeats a name cannot put it on top.
    """
    rows = _rows(tables, f"""
        WITH per_doc AS ({PER_DOC_SENTIMENT.format(where="TRUE")})
        SELECT actor_id, min(actor_name) AS name, min(actor_type) AS kind,
               min(actor_country) AS country, count(*) AS n_docs,
               CAST(sum(n_mentions) AS BIGINT) AS n_mentions, avg(score) AS mean_score
        FROM per_doc
        GROUP BY actor_id
        ORDER BY n_docs DESC, n_mentions DESC, actor_id
        LIMIT $top""", {"top": top})
    actors = [Actor(**row) for row in rows]
    for i, actor in enumerate(actors):
        actor.color = PALETTE[i % len(PALETTE)]
        actor.dash = DASHES[(i // len(PALETTE)) % len(DASHES)]
    return actors


# The finest period whose count over the data's date span stays readable as points on a line.
_SPANS = (("day", 62), ("week", 183), ("month", 3 * 366), ("quarter", 10 * 366))


def choose_granularity(first: dt.date | None, last: dt.date | None) -> str:
    """Days up to two months of data, weeks up to six months, months up to three years,
    quarters up to ten years, years beyond."""
    if first is None or last is None:
        return "month"
    span = (last - first).days
    return next((name for name, most in _SPANS if span <= most), "year")


def collect_series(tables: Tables, ids: list[str]) -> tuple[str, dict[str, list[tuple]]]:
    span = _rows(tables, """
        SELECT min(published_date) AS first, max(published_date) AS last
        FROM actor_sentiment WHERE list_contains($ids, actor_id)""", {"ids": ids})[0]
    granularity = choose_granularity(span["first"], span["last"])
    where = "published_date IS NOT NULL AND list_contains($ids, actor_id)"
    rows = _rows(tables, f"""
        WITH per_doc AS ({PER_DOC_SENTIMENT.format(where=where)})
        SELECT actor_id, {PERIODS[granularity]} AS period, avg(score) AS mean_score,
               count(*) AS n_docs, CAST(sum(n_mentions) AS BIGINT) AS n_mentions
        FROM per_doc
        GROUP BY ALL ORDER BY actor_id, period""", {"ids": ids})
    series: dict[str, list[tuple]] = {i: [] for i in ids}
    for r in rows:
        series[r["actor_id"]].append((r["period"], r["mean_score"], r["n_docs"], r["n_mentions"]))
    return granularity, series


def collect_stance(tables: Tables) -> list[dict[str, Any]]:
    """Holder x target cells: documents, statements, mean over documents (the stance-matrix preset)."""
    return _rows(tables, STANCE_MATRIX.format(where="TRUE"))


def collect_evidence(tables: Tables, ids: list[str], k: int) -> dict[str, list[dict[str, Any]]]:
    """Per actor, k items from different documents (and sources) first (the evidence preset)."""
    sql = evidence_sql("list_contains($ids, actor_id)", documents="documents" in tables.present,
                       per_actor=True)
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for row in _rows(tables, sql, {"ids": ids, "k": k}):
        out[row["actor_id"]].append(row)
    return out


def collect(tables: Tables, top: int, per_actor: int) -> ReportData:
    """Everything the report shows, read with parameterised queries."""
    actors, series, stance, evidence, granularity = [], {}, [], {}, "month"
    if "actor_sentiment" in tables.present:
        actors = collect_actors(tables, top)
        ids = [a.actor_id for a in actors]
        if ids:  # an empty list parameter has no type DuckDB could bind
            granularity, series = collect_series(tables, ids)
            evidence = collect_evidence(tables, ids, per_actor)
    if "actor_stance" in tables.present:
        stance = collect_stance(tables)
    return ReportData(tables.root, collect_summary(tables), actors, granularity, series, stance,
                      evidence, tables.missing)


# --- trend chart ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Frame:
    """The trend chart's geometry: plot area inside the SVG, legend to its right."""

    width: int = 980
    height: int = 380
    left: int = 60
    right: int = 230
    top: int = 20
    bottom: int = 56

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom

    def y(self, score: float) -> float:
        return self.top + (1 - (max(-1.0, min(1.0, score)) + 1) / 2) * self.plot_h


def _x_scale(periods: list[dt.date], frame: Frame):
    first, last = periods[0], periods[-1]
    span = (last - first).days

    def x(day: dt.date) -> float:
        if span == 0:
            return frame.left + frame.plot_w / 2
        return frame.left + (day - first).days / span * frame.plot_w
    return x


def period_label(day: dt.date, granularity: str) -> str:
    if granularity == "year":
        return str(day.year)
    if granularity == "quarter":
        return f"{day.year} Q{(day.month - 1) // 3 + 1}"
    return day.strftime("%Y-%m") if granularity == "month" else day.isoformat()


def period_index(day: dt.date, granularity: str) -> int:
    """The period's number on a calendar count (consecutive periods differ by one)."""
    if granularity == "day":
        return day.toordinal()
    if granularity == "week":  # ordinal 1 (0001-01-01) is a Monday
        return (day.toordinal() - 1) // 7
    months = {"month": 1, "quarter": 3, "year": 12}[granularity]
    return (day.year * 12 + day.month - 1) // months


def period_start(index: int, granularity: str) -> dt.date:
    """The first day of the period with this period_index."""
    if granularity == "day":
        return dt.date.fromordinal(index)
    if granularity == "week":
        return dt.date.fromordinal(index * 7 + 1)
    month = index * {"month": 1, "quarter": 3, "year": 12}[granularity]
    return dt.date(month // 12, month % 12 + 1, 1)


# Tick label widths are estimated, not measured: 11px system-ui digits are about 6.2px wide.
CHAR_W, LABEL_GAP = 7.0, 12.0
# Label every k-th period, k from these, so that labels fall on round dates (every 3rd month
# starts a quarter, every 5th year ends in 0 or 5).
NICE_STEPS = {"day": (1, 2, 7, 14, 28, 56), "week": (1, 2, 4, 13, 26, 52),
              "month": (1, 2, 3, 6, 12, 24, 60, 120), "quarter": (1, 2, 4, 8, 20, 40),
              "year": (1, 2, 5, 10, 20, 50, 100)}


def x_ticks(first: dt.date, last: dt.date, x, granularity: str) -> list[dt.date]:
    """Calendar periods to label between first and last, so that no two labels overlap.

    The axis is proportional to time, so labels go on the calendar (not on the periods that
    happen to have data, which can crowd at one end): every k-th period, k the smallest nice step
    whose spacing fits the widest label, and any label that would still come too close to the
    previous one (months differ in length) is dropped.
    """
    lo, hi = period_index(first, granularity), period_index(last, granularity)
    ticks = [period_start(i, granularity) for i in range(lo, hi + 1)]
    if len(ticks) < 2:
        return ticks
    width = max(len(period_label(t, granularity)) for t in ticks) * CHAR_W + LABEL_GAP
    spacing = (x(ticks[-1]) - x(ticks[0])) / (len(ticks) - 1)
    need = math.ceil(width / spacing) if spacing > 0 else len(ticks)
    step = next((k for k in NICE_STEPS[granularity] if k >= need), need)
    offset = 1 if granularity == "day" else 0  # day steps of 7 and 14 start on Mondays
    kept: list[dt.date] = []
    for i, tick in zip(range(lo, hi + 1), ticks):
        if (i - offset) % step == 0 and (not kept or x(tick) - x(kept[-1]) >= width):
            kept.append(tick)
    return kept or ticks[:1]


def _y_axis(frame: Frame) -> list[str]:
    parts = []
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        y = frame.y(tick)
        cls = "zero-line" if tick == 0 else "grid-line"
        parts.append(f'<line class="{cls}" x1="{frame.left}" x2="{frame.left + frame.plot_w}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick-label" x="{frame.left - 8}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{fmt_score(tick)}</text>')
    mid = frame.top + frame.plot_h / 2
    parts.append(f'<text class="axis-title" transform="translate(16 {mid:.1f}) rotate(-90)" '
                 f'text-anchor="middle">mean sentiment (p_pos \u2212 p_neg)</text>')
    return parts


def _x_axis(periods: list[dt.date], x, granularity: str, frame: Frame) -> list[str]:
    base = frame.top + frame.plot_h
    parts = [f'<line class="axis-line" x1="{frame.left}" x2="{frame.left + frame.plot_w}" '
             f'y1="{base}" y2="{base}"/>']
    for day in x_ticks(periods[0], periods[-1], x, granularity):
        px = x(day)
        parts.append(f'<line class="tick" x1="{px:.1f}" x2="{px:.1f}" y1="{base}" y2="{base + 5}"/>')
        parts.append(f'<text class="tick-label x-tick" x="{px:.1f}" y="{base + 18}" '
                     f'text-anchor="middle">{esc(period_label(day, granularity))}</text>')
    title = {"day": "day", "week": "week (starting Monday)", "month": "month", "quarter": "quarter",
             "year": "year"}[granularity]
    parts.append(f'<text class="axis-title" x="{frame.left + frame.plot_w / 2:.1f}" '
                 f'y="{frame.height - 10}" text-anchor="middle">published date, by {title}</text>')
    return parts


def _series_svg(actor: Actor, points: list[tuple], x, frame: Frame, granularity: str) -> str:
    coords = [(x(p[0]), frame.y(p[1])) for p in points]
    d = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(coords))
    dash = f' stroke-dasharray="{actor.dash}"' if actor.dash else ""
    parts = [f'<g class="series" data-actor-id="{esc(actor.actor_id)}" '
             f'data-point-count="{len(points)}">',
             f'<path class="series-line" d="{d}" fill="none" stroke="{actor.color}" '
             f'stroke-width="2.2"{dash}/>']
    for (px, py), (day, mean, n_docs, n_mentions) in zip(coords, points):
        tip = (f"{actor.name} \u00b7 {period_label(day, granularity)}: mean {fmt_score(mean)} "
               f"({plural(n_docs, 'doc')}, {plural(n_mentions, 'mention')})")
        parts.append(f'<circle class="series-point" cx="{px:.1f}" cy="{py:.1f}" r="3.5" '
                     f'fill="{actor.color}"><title>{esc(tip)}</title></circle>')
    parts.append("</g>")
    return "".join(parts)


def _legend_svg(actors: list[Actor], frame: Frame) -> str:
    x0 = frame.left + frame.plot_w + 20
    parts = [f'<g class="legend" transform="translate({x0} {frame.top})">']
    for i, actor in enumerate(actors):
        y = i * 22
        dash = f' stroke-dasharray="{actor.dash}"' if actor.dash else ""
        name = actor.name if len(actor.name) <= 26 else actor.name[:25] + "\u2026"
        parts.append(f'<g class="legend-item" data-actor-id="{esc(actor.actor_id)}">'
                     f'<line x1="0" x2="24" y1="{y + 6}" y2="{y + 6}" stroke="{actor.color}" '
                     f'stroke-width="3"{dash}/><text x="30" y="{y + 10}">{esc(name)}'
                     f'<title>{esc(actor.name)} ({esc(actor.kind)})</title></text></g>')
    parts.append("</g>")
    return "".join(parts)


def trend_chart(data: ReportData, frame: Frame = Frame()) -> str:
    """The sentiment-over-time line chart as inline SVG (one series per drawn actor)."""
    drawn = [a for a in data.actors if data.series.get(a.actor_id)]
    periods = sorted({p[0] for a in drawn for p in data.series[a.actor_id]})
    n_points = sum(len(data.series[a.actor_id]) for a in drawn)
    head = (f'<svg id="trend-chart" class="chart trend-chart" xmlns="http://www.w3.org/2000/svg" '
            f'width="{frame.width}" height="{frame.height}" viewBox="0 0 {frame.width} {frame.height}" '
            f'role="img" aria-label="Mean sentiment over time for the actors in most documents" '
            f'data-series-count="{len(drawn)}" data-point-count="{n_points}" '
            f'data-granularity="{data.granularity}">')
    if not drawn:
        return (head + f'<text class="empty" x="{frame.width / 2}" y="{frame.height / 2}" '
                f'text-anchor="middle">No dated actor sentiment rows</text></svg>')
    x = _x_scale(periods, frame)
    body = _y_axis(frame) + _x_axis(periods, x, data.granularity, frame)
    body += [_series_svg(a, data.series[a.actor_id], x, frame, data.granularity) for a in drawn]
    body.append(_legend_svg(drawn, frame))
    return head + "".join(body) + "</svg>"


# --- stance heatmap ------------------------------------------------------------------------

def diverging(score: float) -> str:
    """Red (-1) through white (0) to green (+1), as an rgb() colour."""
    s = max(-1.0, min(1.0, score))
    end = NEGATIVE if s < 0 else POSITIVE
    mix = [round(255 + (c - 255) * abs(s)) for c in end]
    return f"rgb({mix[0]},{mix[1]},{mix[2]})"


def _top_ids(rows: list[dict], key: str, limit: int) -> list[str]:
    """The holders (or targets) in most (document, counterpart) cells: documents, not statements."""
    totals: dict[str, int] = {}
    for r in rows:
        totals[r[key]] = totals.get(r[key], 0) + r["n_docs"]
    return sorted(totals, key=lambda i: (-totals[i], i))[:limit]


def _cell_svg(row: dict, x: float, y: float, size: tuple[int, int]) -> str:
    w, h = size
    tip = (f"{row['holder_name']} \u2192 {row['target_name']}: mean {fmt_score(row['mean_score'])} "
           f"over {plural(row['n_docs'], 'document')} ({plural(row['n_statements'], 'statement')}; "
           f"{row['n_favor']} favor, {row['n_against']} against; the stance model read "
           f"{plural(row.get('n_docs_pair_model') or 0, 'document')} naming both)")
    ink = "#ffffff" if abs(row["mean_score"]) > 0.6 else "#222222"
    return (f'<g class="cell" data-holder-id="{esc(row["holder_id"])}" '
            f'data-target-id="{esc(row["target_id"])}" data-score="{row["mean_score"]:.3f}" '
            f'data-docs="{row["n_docs"]}" data-statements="{row["n_statements"]}">'
            f'<rect class="cell-rect" x="{x}" y="{y}" width="{w - 2}" height="{h - 2}" '
            f'fill="{diverging(row["mean_score"])}" stroke="#bbbbbb"/>'
            f'<text class="cell-count" x="{x + (w - 2) / 2}" y="{y + h / 2 + 3}" '
            f'text-anchor="middle" fill="{ink}">{row["n_docs"]}</text>'
            f'<title>{esc(tip)}</title></g>')


def _gradient_legend(x: float, y: float) -> str:
    stops = "".join(f'<stop offset="{o}%" stop-color="{diverging(s)}"/>'
                    for o, s in ((0, -1), (25, -0.5), (50, 0), (75, 0.5), (100, 1)))
    return (f'<defs><linearGradient id="stance-gradient">{stops}</linearGradient></defs>'
            f'<g class="heatmap-legend" transform="translate({x} {y})">'
            f'<rect width="200" height="12" fill="url(#stance-gradient)" stroke="#999999"/>'
            f'<text x="0" y="28">\u22121 against</text>'
            f'<text x="100" y="28" text-anchor="middle">0</text>'
            f'<text x="200" y="28" text-anchor="end">+1 favor</text></g>')


def stance_heatmap(rows: list[dict], limit: int = 12) -> str:
    """Holder (rows) x target (columns) mean stance over documents, as inline SVG; counts are
    documents (statements are in each cell's tooltip)."""
    holders, targets = _top_ids(rows, "holder_id", limit), _top_ids(rows, "target_id", limit)
    cells = [r for r in rows if r["holder_id"] in holders and r["target_id"] in targets]
    names = {r["holder_id"]: r["holder_name"] for r in rows}
    names.update({r["target_id"]: r["target_name"] for r in rows})
    size, left, top = (64, 34), 180, 130
    width = left + size[0] * max(len(targets), 1) + 120  # room for the last slanted label
    height = top + size[1] * max(len(holders), 1) + 60
    head = (f'<svg id="stance-heatmap" class="chart stance-heatmap" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Mean stance of holders towards targets" data-holder-count="{len(holders)}" '
            f'data-target-count="{len(targets)}" data-cell-count="{len(cells)}">')
    if not cells:
        return head + f'<text class="empty" x="20" y="{top}">No stance rows</text></svg>'
    parts = [head]
    for j, target in enumerate(targets):
        cx = left + j * size[0] + size[0] / 2
        parts.append(f'<text class="col-label" transform="translate({cx:.1f} {top - 8}) rotate(-40)">'
                     f'{esc(names[target])}</text>')
    for i, holder in enumerate(holders):
        parts.append(f'<text class="row-label" x="{left - 8}" y="{top + i * size[1] + size[1] / 2 + 4}" '
                     f'text-anchor="end">{esc(names[holder])}</text>')
    for r in cells:
        x = left + targets.index(r["target_id"]) * size[0]
        y = top + holders.index(r["holder_id"]) * size[1]
        parts.append(_cell_svg(r, x, y, size))
    parts.append(_gradient_legend(left, top + size[1] * len(holders) + 16))
    return "".join(parts) + "</svg>"


# --- evidence and page ---------------------------------------------------------------------

def _link(url: str | None, text: str) -> str:
    # Only web URLs become links: a javascript: or data: URL from a source stays inert text.
    if url and url.lower().startswith(("http://", "https://")):
        return f'<a href="{esc(url)}" rel="noopener noreferrer">{esc(text)}</a>'
    suffix = f' <span class="url">{esc(url)}</span>' if url else ""
    return f"{esc(text)}{suffix}"


_LEANS = {"neg": "negative", "pos": "positive", "neu": "neutral"}


def _agreement(row: dict, sign: str, actor: Actor) -> str:
    if row.get("n_docs") is None:
        return ""
    tip = (f"{actor.name}'s documents whose score (mean over its mentions in the document) is "
           f"{_LEANS[sign]} too" + ("" if sign == "neu" else f" (beyond \u00b1{SIGN_BAND:.2f})"))
    return (f' \u00b7 <span class="agree" data-agree="{row["n_docs_agree"]}" '
            f'data-docs="{row["n_docs"]}" title="{esc(tip)}">{row["n_docs_agree"]} of '
            f'{plural(row["n_docs"], "document")} agree</span>')


def _evidence_item(row: dict, actor: Actor) -> str:
    score = row["score"]
    sign = "neg" if score < -SIGN_BAND else ("pos" if score > SIGN_BAND else "neu")
    title = row["title"] or f"(untitled document {row['doc_id']})"
    date = row["published_date"].isoformat() if row["published_date"] else "undated"
    return (f'<li class="evidence" data-score="{score:.3f}" data-doc-id="{esc(row["doc_id"])}">'
            f'<span class="score {sign}">'
            f'{fmt_score(score)}</span> <q class="sentence">{esc(row["sentence"])}</q>'
            f'<div class="source">{_link(row["url"], title)} \u00b7 '
            f'<time class="doc-date">{esc(date)}</time>{_agreement(row, sign, actor)}</div></li>')


def evidence_section(actor: Actor, rows: list[dict]) -> str:
    facts = " \u00b7 ".join(esc(x) for x in (actor.kind, actor.country) if x)
    items = "".join(_evidence_item(r, actor) for r in rows) or '<li class="empty">No evidence rows</li>'
    return (f'<section class="actor-evidence" data-actor-id="{esc(actor.actor_id)}">'
            f'<h3><span class="swatch" style="background:{actor.color}"></span>{esc(actor.name)} '
            f'<small>{facts} \u00b7 {plural(actor.n_mentions, "mention")} in '
            f'{plural(actor.n_docs, "document")} '
            f'\u00b7 mean over documents {fmt_score(actor.mean_score)}</small></h3>'
            f'<ol class="evidence-list">{items}</ol></section>')


def _summary_html(data: ReportData) -> str:
    s = data.summary
    bits = [f"Output <code>{esc(data.root)}</code>"]
    if s["n_docs"] is not None:
        span = f"{s['first']} to {s['last']}" if s["first"] else "no dated documents"
        bits.append(f"{plural(s['n_docs'], 'document')} ({esc(span)}; {s['undated']} undated)")
    if s["n_errors"] is not None:
        bits.append(plural(s["n_errors"], "error"))
    if data.missing:
        bits.append(f"missing tables: {esc(', '.join(data.missing))}")
    return '<p class="summary">' + " \u00b7 ".join(bits) + "</p>"


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
  margin:0 auto;max-width:1040px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}h3 small{font-weight:normal;color:#666}
.summary,.note{color:#555}.chart{display:block;max-width:100%;height:auto}
.chart text{font-size:11px;fill:#333}.chart .axis-title{font-size:12px;fill:#555}
.grid-line{stroke:#e5e5e5}.zero-line{stroke:#888;stroke-dasharray:4 3}
.axis-line,.tick{stroke:#666}.chart .empty{font-size:14px;fill:#888}
.swatch{display:inline-block;width:12px;height:12px;margin-right:6px;border-radius:2px}
.evidence-list{margin:0;padding-left:22px}.evidence{margin:4px 0}
.score{font-variant-numeric:tabular-nums;font-weight:600;padding:0 4px;border-radius:3px}
.score.neg{background:#fbe3e1;color:#a11b12}.score.pos{background:#e0f2e6;color:#146c3b}
.score.neu{background:#eee;color:#444}.source{color:#666;font-size:12px;margin-left:2px}
.url{font-family:monospace}.agree{color:#444}
"""


def render(data: ReportData, title: str, generated: str) -> str:
    """The whole report as one HTML string (no external resources)."""
    sections = "".join(evidence_section(a, data.evidence.get(a.actor_id, [])) for a in data.actors)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)}</title><style>{_CSS}</style></head><body>'
            f'<h1>{esc(title)}</h1>{_summary_html(data)}'
            f'<p class="note">Generated {esc(generated)}. Scores are p(positive) \u2212 p(negative), '
            f'averaged per document, then over documents.</p>'
            f'<h2>Sentiment over time: the {len(data.actors)} actors in most documents</h2>'
            f'<figure id="trend">{trend_chart(data)}</figure>'
            f'<h2>Who speaks how about whom</h2><p class="note">Rows hold the stance, columns '
            f'receive it; cell numbers count documents (a document counts once, however often '
            f'it repeats a statement). Hover a cell for statements and details.</p>'
            f'<figure id="stance">{stance_heatmap(data.stance)}</figure>'
            f'<h2>Evidence</h2><p class="note">The strongest sentences, one document (and '
            f'source) at a time; \u201cN of M documents agree\u201d: how many of the actor\u2019s '
            f'documents score the same way.</p><div id="evidence">{sections}</div></body></html>\n')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stancebeam report",
                                     description="Write a self-contained HTML report.")
    parser.add_argument("output", help="the pipeline's output directory")
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.add_argument("--top", type=int, default=5, help="actors in the trend chart (default 5)")
    parser.add_argument("--evidence", type=int, default=3, help="evidence sentences per actor")
    parser.add_argument("--title", default="stancebeam report")
    return parser


def main(argv: list[str]) -> int:
    """Entry point of `stancebeam report`; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2)
        return int(exc.code or 0)
    if args.top < 1 or args.evidence < 0:
        print("stancebeam report: error: --top must be >= 1 and --evidence >= 0", file=sys.stderr)
        return 2
    try:
        tables = open_output(args.output)
        try:
            data = collect(tables, args.top, args.evidence)
        finally:
            tables.close()
    except (OutputError, duckdb.Error) as exc:
        print(f"stancebeam report: error: {exc}", file=sys.stderr)
        return 2
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    Path(args.out).write_text(render(data, args.title, generated), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
