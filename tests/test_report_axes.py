"""The trend chart's time axis: granularity from the data, and tick labels that never overlap."""
from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil

import pytest

from stancebeam.analysis import screenshot
from stancebeam.analysis.report import (CHAR_W, Actor, Frame, ReportData, _x_scale,
                                        choose_granularity, period_index, period_label,
                                        period_start, render, x_ticks)

D = dt.date


@pytest.mark.parametrize("days,granularity", [
    (0, "day"), (62, "day"), (63, "week"), (183, "week"), (184, "month"), (3 * 366, "month"),
    (3 * 366 + 1, "quarter"), (10 * 366, "quarter"), (10 * 366 + 1, "year"), (40 * 366, "year")])
def test_granularity_follows_the_span_of_the_data(days, granularity):
    first = D(2006, 4, 14)
    assert choose_granularity(first, first + dt.timedelta(days=days)) == granularity
    assert choose_granularity(None, None) == "month"


@pytest.mark.parametrize("granularity", ["day", "week", "month", "quarter", "year"])
def test_periods_on_the_calendar(granularity):
    day = D(2023, 12, 25)
    for _ in range(800):
        start = period_start(period_index(day, granularity), granularity)
        assert start <= day and period_index(start, granularity) == period_index(day, granularity)
        assert granularity != "week" or start.weekday() == 0  # weeks start on Mondays (ISO)
        nxt = period_start(period_index(day, granularity) + 1, granularity)
        assert nxt > day and period_index(nxt, granularity) == period_index(day, granularity) + 1
        day += dt.timedelta(days=1)


def test_tick_labels_fit_between_ticks_for_any_span():
    """Estimated label boxes never meet, on 300 random spans of every granularity."""
    rng, frame = random.Random(15), Frame()
    for _ in range(300):
        granularity = rng.choice(["day", "week", "month", "quarter", "year"])
        first = D(2000, 1, 1) + dt.timedelta(days=rng.randrange(9000))
        last = first + dt.timedelta(days=rng.randrange(1, 30 * 366))
        x = _x_scale([first, last], frame)
        ticks = x_ticks(first, last, x, granularity)
        assert ticks and all(first - dt.timedelta(days=366) <= t <= last for t in ticks)
        for a, b in zip(ticks, ticks[1:]):
            width = max(len(period_label(t, granularity)) for t in (a, b)) * CHAR_W
            assert x(b) - x(a) > width, (granularity, first, last, a, b)


def test_ticks_fall_on_round_dates():
    frame = Frame()
    first, last = D(2006, 4, 1), D(2008, 11, 1)
    ticks = x_ticks(first, last, _x_scale([first, last], frame), "month")
    assert [t.month for t in ticks] == [4, 7, 10, 1] * 2 + [4, 7, 10]  # quarter starts
    first, last = D(2024, 1, 3), D(2024, 3, 4)
    assert all(t.weekday() == 0 for t in x_ticks(first, last, _x_scale([first, last], frame), "day"))


def dense_then_sparse(first: dt.date, dense: int, step: dt.timedelta, sparse: list[dt.date]) -> list[dt.date]:
    return [first + i * step for i in range(dense)] + sparse


# Each case: periods with data (dense at one end, sparse at the other) and the granularity.
CASES = {
    "day": (dense_then_sparse(D(2024, 1, 1), 20, dt.timedelta(days=1), [D(2024, 2, 20), D(2024, 3, 2)]), "day"),
    "week": (dense_then_sparse(D(2024, 1, 1), 12, dt.timedelta(days=7), [D(2024, 6, 3)]), "week"),
    "month": ([D(2006, m, 1) for m in range(5, 13)] + [D(2007, m, 1) for m in range(1, 5)]
              + [D(2008, 6, 1), D(2009, 1, 1), D(2009, 3, 1)], "month"),
    "quarter": ([D(2006, m, 1) for m in (4, 7, 10)] + [D(2007, m, 1) for m in (1, 4, 7, 10)]
                + [D(2012, 1, 1), D(2015, 10, 1)], "quarter"),
    "year": ([D(y, 1, 1) for y in range(1985, 2006)] + [D(2020, 1, 1), D(2026, 1, 1)], "year"),
}


def chart_data(periods: list[dt.date], granularity: str) -> ReportData:
    actors = [Actor("country:IRN", "Iran", "country", "IRN", 9, 9, -0.2),
              Actor("org:un", "United Nations", "organisation", None, 9, 9, 0.1, color="#D55E00")]
    series = {a.actor_id: [(p, 0.4 * ((i % 5) - 2) / 2 * (1 if j else -1), 1, 1)
                           for i, p in enumerate(periods)] for j, a in enumerate(actors)}
    return ReportData("out", {"n_docs": None, "n_errors": None}, actors, granularity, series, [],
                      {}, ())


def test_dense_periods_would_collide_as_labels():
    """The cases are hard ones: labelling every period with data would overlap."""
    frame = Frame()
    for periods, granularity in CASES.values():
        x = _x_scale(periods, frame)
        width = len(period_label(periods[0], granularity)) * 6.0
        assert min(x(b) - x(a) for a, b in zip(periods, periods[1:])) < width


# Injected into the page: every tick label's laid-out box, per chart.
PROBE = """<script>
const charts = Array.from(document.querySelectorAll('svg.trend-chart')).map(svg => ({
  granularity: svg.dataset.granularity,
  box: (b => [b.left, b.top, b.right, b.bottom])(svg.getBoundingClientRect()),
  labels: Array.from(svg.querySelectorAll('text.tick-label')).map(t => {
    const b = t.getBoundingClientRect();
    return {text: t.textContent, x: t.classList.contains('x-tick'), box: [b.left, b.top, b.right, b.bottom]};
  }),
}));
const pre = document.createElement('pre');
pre.id = 'axis-probe';
pre.textContent = JSON.stringify(charts);
document.body.appendChild(pre);
</script>"""


def measured_labels(page_html: str, tmp_path) -> list[dict]:
    page = tmp_path / "page.html"
    page.write_text(page_html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = screenshot.run_chromium(page, dump_dom=True, size=(1280, 1200), timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="axis-probe">(.*?)</pre>', done.stdout, re.S)
    assert match, done.stdout[-2000:]
    return json.loads(match.group(1))


def overlapping(labels: list[dict]) -> list[tuple[str, str]]:
    """Pairs of labels whose laid-out boxes intersect (touching edges do not count)."""
    out = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            (l1, t1, r1, b1), (l2, t2, r2, b2) = a["box"], b["box"]
            if min(r1, r2) - max(l1, l2) > 0.5 and min(b1, b2) - max(t1, t2) > 0.5:
                out.append((a["text"], b["text"]))
    return out


def assert_readable(charts: list[dict]) -> None:
    for chart in charts:
        x_labels = [label for label in chart["labels"] if label["x"]]
        assert len(x_labels) >= 2, chart
        assert not overlapping(chart["labels"]), (chart["granularity"], overlapping(chart["labels"]))
        left, _, right, _ = chart["box"]
        assert all(left <= label["box"][0] and label["box"][2] <= right for label in x_labels)


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium not on PATH: apt-get install -y chromium (CI installs it)")


@needs_chromium
def test_tick_labels_do_not_overlap_in_chromium(tmp_path):
    """Every granularity, dates dense at one end and sparse at the other, one page, one Chromium."""
    pages = [render(chart_data(periods, granularity), f"axis {name}", "now")
             for name, (periods, granularity) in CASES.items()]
    bodies = [re.search(r'<figure id="trend">.*?</figure>', p, re.S).group(0) for p in pages]
    page_html = pages[0].replace(bodies[0], "".join(bodies))
    charts = measured_labels(page_html, tmp_path)
    assert [c["granularity"] for c in charts] == [g for _, g in CASES.values()]
    assert_readable(charts)
