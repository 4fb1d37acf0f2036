"""`stancebeam report`: the HTML's structure, and its rendering in headless Chromium."""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stancebeam.analysis import screenshot
from stancebeam.analysis.report import main
from tests.analysis_fixtures import read_frame, write_sample_output


class Elements(HTMLParser):
    """Every start tag as (tag, attrs), plus the page's text."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str | None = None, cls: str | None = None, **attrs) -> list[dict]:
        return [a for t, a in self.elements if (tag is None or t == tag)
                and (cls is None or cls in a.get("class", "").split())
                and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_output(tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def report(sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main([str(sample), "--out", str(out), "--top", "5", "--title", "EU <test> report"]) == 0
    return out


@pytest.fixture(scope="module")
def page(report) -> Elements:
    return Elements(report.read_text(encoding="utf-8"))


def expected_points(sample) -> int:
    """Distinct (actor, week) pairs among dated rows: the sample spans 11 weeks, so weekly."""
    frame = read_frame(sample, "actor_sentiment")
    frame = frame[frame.published_date.notna()]
    weeks = frame.published_date.map(lambda d: d - dt.timedelta(days=d.weekday()))
    return len(set(zip(frame.actor_id, weeks)))


def test_trend_chart_structure(page, sample):
    (chart,) = page.find("svg", id="trend-chart")
    assert chart["data-series-count"] == "5" and chart["data-granularity"] == "week"
    assert int(chart["data-point-count"]) == expected_points(sample)
    assert len(page.find("path", "series-line")) == 5
    assert len(page.find("circle", "series-point")) == expected_points(sample)
    legend = [a["data-actor-id"] for a in page.find("g", "legend-item")]
    assert legend[0] == "person:olaf_scholz" and len(legend) == 5  # most documents, then mentions
    assert "2024-01-08" in page.text and "published date, by week (starting Monday)" in page.text


def test_heatmap_structure(page, sample):
    (heatmap,) = page.find("svg", id="stance-heatmap")
    stance = read_frame(sample, "actor_stance")
    pairs = stance.groupby(["holder_id", "target_id"]).n_statements.sum()
    assert int(heatmap["data-cell-count"]) == len(pairs) == len(page.find("rect", "cell-rect"))
    cell = page.find("g", "cell", data_holder_id="person:emmanuel_macron", data_target_id="person:olaf_scholz")[0]
    assert float(cell["data-score"]) > 0
    fills = {a["fill"] for a in page.find("rect", "cell-rect")}
    assert any(f.startswith("rgb(2") for f in fills) and len(fills) > 3  # reds and greens


def document_counts(sample) -> list[int]:
    """Documents per (holder, target) pair, sorted: the numbers the heatmap cells show."""
    stance = read_frame(sample, "actor_stance")
    return sorted(stance.groupby(["holder_id", "target_id"]).doc_id.nunique().tolist())


def test_heatmap_tooltips_and_counts(report, sample):
    text = report.read_text(encoding="utf-8")
    assert ("<title>Emmanuel Macron \u2192 Olaf Scholz: mean +0.43 over 2 documents (2 statements;"
            " 1 favor, 0 against; the stance model read 2 documents naming both)</title>") in text
    assert "Olaf Scholz \u2192 France: mean \u22120.75 over 1 document (1 statement; " in text
    counts = re.findall(r'<text class="cell-count"[^>]*>(\d+)</text>', text)
    assert sorted(map(int, counts)) == document_counts(sample)
    # Scholz is named in five sentences of four documents: the cell shows 4.
    assert "(the article) \u2192 Olaf Scholz: mean \u22120.26 over 4 documents (5 statements;" in text
    assert re.search(r'data-holder-id="article" data-target-id="person:olaf_scholz" '
                     r'data-score="-0.263" data-docs="4" data-statements="5">', text)


def test_evidence_sections(page):
    sections = [a["data-actor-id"] for a in page.find("section", "actor-evidence")]
    assert sections == ["person:olaf_scholz", "country:FRA", "person:emmanuel_macron", "country:DEU", "org:european_commission"]
    assert len(page.find("li", "evidence")) == 15  # three per actor
    assert "Critics blasted Olaf Scholz for the delays." in page.text


def test_evidence_comes_from_distinct_documents_and_counts_agreement(report, sample):
    text = report.read_text(encoding="utf-8")
    frame = read_frame(sample, "actor_sentiment")
    for section in re.findall(r'<section class="actor-evidence".*?</section>', text, re.S):
        actor = re.search(r'data-actor-id="([^"]+)"', section).group(1)
        scores = frame[frame.actor_id == actor].set_index("doc_id").score.astype(float)
        docs = re.findall(r'<li class="evidence" data-score="[^"]+" data-doc-id="([^"]+)"', section)
        first = docs[:min(len(docs), len(scores))]
        assert len(set(first)) == len(first), (actor, docs)  # one per document first
        for score, agree, total in re.findall(r'<li class="evidence" data-score="([^"]+)".*?'
                                              r'data-agree="(\d+)" data-docs="(\d+)"', section):
            score = float(score)
            same = (scores > 0.05) if score > 0.05 else (scores < -0.05) if score < -0.05 else \
                scores.abs() <= 0.05
            assert (int(agree), int(total)) == (int(same.sum()), len(scores)), actor
    assert re.search(r'>1 of 4 documents agree</span>', text)


def test_text_is_escaped_and_urls_inert(report, page):
    text = report.read_text(encoding="utf-8")
    assert "Macron &amp; Scholz: &quot;No &lt;deal&gt;&quot; yet" in text
    assert "<deal>" not in text and "<test>" not in text
    assert "EU &lt;test&gt; report" in text
    hrefs = [a["href"] for a in page.find("a")]
    assert hrefs and all(h.startswith("https://") for h in hrefs)  # javascript: never linked
    assert "javascript:alert(1)" in page.text  # still shown, as text


def test_self_contained(report, page):
    text = report.read_text(encoding="utf-8")
    assert not page.find("script") and not page.find("link") and not page.find("img")
    assert not any("src" in a for _, a in page.elements)
    assert "@import" not in text and "url(http" not in text


def test_missing_tables_still_render(sample, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(sample, partial, ignore=shutil.ignore_patterns("actor_stance", "errors"))
    out = tmp_path / "r.html"
    assert main([str(partial), "--out", str(out)]) == 0
    page = Elements(out.read_text(encoding="utf-8"))
    assert page.find("svg", id="stance-heatmap")[0]["data-cell-count"] == "0"
    assert page.find("svg", id="trend-chart")[0]["data-series-count"] == "5"
    assert "missing tables: actor_stance, errors" in "".join(page.text)


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main([str(tmp_path), "--out", str(tmp_path / "r.html"), "--top", "0"]) == 2


# --- rendering in Chromium -----------------------------------------------------------------

# Injected into a copy of the report only: measures what Chromium actually laid out.
PROBE = """<script>
const q = s => Array.from(document.querySelectorAll(s));
const box = e => { const b = e.getBoundingClientRect(); return [b.width, b.height]; };
const probe = {
  trend: box(document.getElementById('trend-chart')),
  heatmap: box(document.getElementById('stance-heatmap')),
  lines: q('#trend-chart path.series-line').map(p => p.getTotalLength()),
  points: q('#trend-chart circle.series-point').filter(c => box(c)[0] > 0).length,
  cells: q('#stance-heatmap rect.cell-rect').filter(r => box(r)[0] > 20).length,
  fills: q('#stance-heatmap rect.cell-rect').map(r => getComputedStyle(r).fill),
  evidence: q('.actor-evidence li.evidence').filter(e => box(e)[1] > 0).length,
};
const pre = document.createElement('pre');
pre.id = 'render-probe';
pre.textContent = JSON.stringify(probe);
document.body.appendChild(pre);
</script>"""

needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium not on PATH: apt-get install -y chromium (CI installs it)")


def png_facts(path: Path) -> tuple[int, int, int]:
    """Width, height and distinct byte values of the decompressed pixel data of a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


@needs_chromium
def test_renders_in_chromium(report, sample, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                      encoding="utf-8")
    done = screenshot.run_chromium(probed, dump_dom=True, size=(1280, 2000), timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="render-probe">(.*?)</pre>', done.stdout, re.S)
    assert match, done.stdout[-2000:]
    probe = json.loads(match.group(1))
    assert probe["trend"][0] > 600 and probe["trend"][1] > 200
    assert probe["heatmap"][0] > 300 and probe["heatmap"][1] > 150
    assert len(probe["lines"]) == 5 and all(length > 50 for length in probe["lines"])
    assert probe["points"] == expected_points(sample)
    assert probe["cells"] == len(document_counts(sample)) and len(set(probe["fills"])) > 3
    assert probe["evidence"] == 15


@needs_chromium
def test_screenshot_is_nontrivial(report, tmp_path):
    png = tmp_path / "report.png"
    assert screenshot.main([str(report), str(png), "--width", "1280", "--height", "2000",
                            "--timeout", "90"]) == 0
    width, height, distinct = png_facts(png)
    assert (width, height) == (1280, 2000)
    # A blank page compresses to a few KB of a handful of byte values; the charts do not.
    assert png.stat().st_size > 30_000 and distinct > 100
