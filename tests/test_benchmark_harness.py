"""The benchmark harness and the throughput benchmark work end to end on a few documents with the tiny model (no speed asserted)."""
from __future__ import annotations

import json
import sys

import pytest

from benchmarks import harness
from benchmarks import throughput as tp
from stancebeam.pipeline.config import load_config
from tests.conftest import ROOT

SAMPLES = ROOT / "data" / "samples"


@pytest.fixture(scope="module")
def sources():
    return harness.source_documents(SAMPLES / "wikinews-sample.jsonl", SAMPLES)


def test_corpus_cycles_with_distinct_ids_and_parses_back(sources, tmp_path):
    n = len(sources) + 3  # forces a second cycle
    records = harness.build_corpus(sources, n)
    path = harness.write_corpus(records, tmp_path / "corpus.jsonl")
    documents = harness.read_corpus(path)
    assert len(documents) == n
    assert len({d.doc_id for d in documents}) == n, "repeats must not be deduplicated away"
    # A repeated document is the same text as its original, as the pipeline will parse it.
    assert documents[len(sources)].text == sources[0].text
    assert documents[len(sources)].doc_id == f"{sources[0].doc_id}~1"
    assert [d.text for d in documents[:len(sources)]] == [d.text for d in sources]


def test_limit_measurement_on_five_documents(sources, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("STANCEBEAM_CACHE", str(tmp_path / "cache"))
    documents = harness.read_corpus(harness.write_corpus(harness.build_corpus(sources, 5), tmp_path / "c.jsonl"))
    limit = tp.measure_limit(documents, str(tiny_model_dir), load_config())
    clf = limit["classifier"]
    assert limit["documents"] == 5
    assert clf["mentions"] > 0 and clf["tokens"] > clf["mentions"]
    for backend in ("torch", "onnx-int8"):
        assert clf[backend]["forward_s"] > 0
        summary = limit["by_backend"][backend]
        assert summary["seconds"] == pytest.approx(sum(summary["parts_s"].values()))
        assert sum(summary["shares"].values()) == pytest.approx(1.0)
    assert limit["spacy"]["analyse_s"] > 0 and limit["spacy"]["nlp_pipe_s"] > 0
    report = {"pipeline": {}, "limit": limit}
    assert tp.ratios(report)["int8_over_fp32_classifier"] > 0
    json.dumps(limit)  # everything in it is JSON-ready


def test_monitor_sees_the_peak_rss_of_a_process_tree(tmp_path):
    # A parent that starts a child holding ~60 MB: the tree's peak must count the child.
    child = "import time; b = bytearray(60 * 2**20); time.sleep(1.0)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    run = harness.run_monitored([sys.executable, "-c", parent], env=None, timeout=30, cwd=tmp_path)
    assert run["returncode"] == 0 and not run["timed_out"]
    assert run["peak_processes"] >= 2
    assert run["peak_rss_mb"] > 60


def test_a_run_past_its_timeout_is_killed(tmp_path):
    run = harness.run_monitored([sys.executable, "-c", "import time; time.sleep(30)"], env=None,
                           timeout=1, cwd=tmp_path)
    assert run["timed_out"] and run["wall_s"] < 10


def test_summary_line_is_read_from_the_last_json_line():
    out = "stancebeam: 3 documents\n{\"documents\": 3, \"mentions\": 7}\n"
    assert harness.last_json_line(out) == {"documents": 3, "mentions": 7}
    assert harness.last_json_line("no json here") is None


def test_memory_slopes_per_series():
    scan = [{"documents": 200, "malloc_trim": False, "peak_rss_mb": 1265.0, "ok": True},
            {"documents": 200, "malloc_trim": True, "peak_rss_mb": 1000.0, "ok": True},
            {"documents": 2000, "malloc_trim": False, "peak_rss_mb": 1715.0, "ok": True},
            {"documents": 2000, "malloc_trim": True, "peak_rss_mb": 1018.0, "ok": True},
            {"documents": 5000, "malloc_trim": True, "peak_rss_mb": 0.0, "ok": False}]
    assert tp.memory_slopes(scan) == pytest.approx({"no_trim": 0.25, "malloc_trim": 0.01})
    assert tp.memory_slopes(scan[:2]) == {}  # one size: no slope


def test_peak_rss_by_part_of_the_run():
    monitor = harness.TreeMonitor(None)
    monitor.sample_times = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    monitor.rss_samples = [1, 5, 2, 2, 3, 1, 4, 4, 9]
    assert monitor.peak_rss_by_part(4) == [5.0, 2.0, 3.0, 9.0]
    assert monitor.median_rss == 3.0


def test_inference_batches_group_consecutive_documents_and_count_padding():
    from benchmarks.inference_batching import group_by_mentions, padded_tokens

    docs = [["a"] * 3, [], ["bbbb"] * 2, ["cc"]]
    assert group_by_mentions(docs, 3) == [["a"] * 3, ["bbbb", "bbbb", "cc"]]
    assert group_by_mentions(docs, 100) == [["a"] * 3 + ["bbbb"] * 2 + ["cc"]]
    # Sorted by length then cut into sub-batches of 2: [a, a], [a, cc], [bbbb, bbbb].
    assert padded_tokens([["a"] * 3 + ["cc"] + ["bbbb"] * 2], 2, 4096) == 2 * 1 + 2 * 2 + 2 * 4
