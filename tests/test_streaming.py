"""The streaming path: windows, per-window dedupe, late data, windowed Parquet files, Pub/Sub end to end."""
import functools
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import apache_beam as beam
import duckdb
import pyarrow.parquet as pq
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import FixedWindows, GlobalWindow, IntervalWindow, TimestampedValue
from apache_beam.utils.timestamp import Duration

from stancebeam.pipeline.builder import job_settings, new_pipeline
from stancebeam.pipeline.config import load_config
from stancebeam.pipeline.options import StancebeamOptions
from stancebeam.pipeline.options import validate
from stancebeam.pipeline.runner import make_options
from stancebeam.pipeline.streaming import AnalyseMessages, build_streaming_pipeline
from stancebeam.transforms.elements import Document, TableRow
from stancebeam.transforms.parse import DeduplicateDocuments
from stancebeam.transforms.schemas import TABLES
from stancebeam.transforms.window_write import ParquetSink, WriteWindowedTables, window_file_naming
from tests.bounded_run import BoundedRunPipeline
from tests.conftest import ROOT

SUBSCRIPTION = "projects/test-project/subscriptions/docs-sub"
LINES = (ROOT / "data" / "samples" / "wikinews-sample.jsonl").read_text(encoding="utf-8").splitlines()
DOC_IDS = [json.loads(line)["id"] for line in LINES]
FIRST_WINDOW = "part-19700101T000000Z-19700101T000100Z-"  # [0 s, 60 s) of the epoch
SECOND_WINDOW = "part-19700101T000100Z-19700101T000200Z-"


def streaming_options(*extra) -> PipelineOptions:
    return PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming", *extra])


def message(message_id: str, payload: str) -> PubsubMessage:
    return PubsubMessage(payload.encode("utf-8"), {}, message_id=message_id)


def origin(message_id: str) -> str:
    return f"pubsub:{SUBSCRIPTION}:{message_id}"


def files_of(root: Path, table: str) -> list[Path]:
    return sorted((root / table).glob("*/*.parquet"))


def query(sql: str) -> list[tuple]:
    return sorted(duckdb.connect().execute(sql).fetchall())


def table_sql(root: Path, table: str) -> str:
    return f"read_parquet('{root}/{table}/**/*.parquet', hive_partitioning=true, filename=true)"


def run_analysis(root: Path, config: Path, stream: TestStream, allowed_lateness_seconds=None) -> None:
    options = streaming_options(f"--output={root}", f"--config={config}", "--run-id=stream-test")
    settings = job_settings(load_config(config), options.view_as(StancebeamOptions))
    lateness = {} if allowed_lateness_seconds is None else {"allowed_lateness_seconds": allowed_lateness_seconds}
    with beam.Pipeline(options=options) as p:
        _ = (p | "Messages" >> stream
             | "AnalyseMessages" >> AnalyseMessages(settings, SUBSCRIPTION, 60, str(root), **lateness))


# --- Window-aware file naming and the Parquet sink ---------------------------------------------

def test_file_names_carry_the_window_and_stay_unique():
    window = IntervalWindow(60, 120)
    first = window_file_naming(window, None, 0, 2, "", "documents/published_date=2021-07-01")
    second = window_file_naming(window, None, 0, 2, "", "documents/published_date=2021-07-01")
    assert first.startswith("documents/published_date=2021-07-01/" + SECOND_WINDOW + "00000-of-00002-")
    assert first.endswith(".parquet") and first != second  # a late pane must not overwrite
    assert "part-global-global-" in window_file_naming(GlobalWindow(), None, None, None, "", "errors/x")


def test_parquet_sink_writes_the_explicit_schema():
    sink, buffer = ParquetSink("errors"), io.BytesIO()
    sink.open(buffer)
    row = {"run_id": "r", "model_id": "m", "error_id": "e1", "origin": "o", "doc_id": None,
           "stage": "parse", "severity": "rejected", "reason": "bad", "excerpt": "{", "analysed_at": None}
    sink.write(TableRow("errors", None, row))
    sink.flush()
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    assert table.schema.equals(TABLES["errors"]) and table.to_pylist() == [row]


# --- Windowing, dedupe and late data on the writer, with synthetic documents ------------------

def document_row(doc: Document) -> TableRow:
    return TableRow("documents", doc.date, {
        "run_id": "r", "model_id": "m", "doc_id": doc.doc_id, "origin": doc.origin, "title": doc.title,
        "date": doc.date, "source": None, "url": None, "n_chars": len(doc.text), "n_chars_processed": len(doc.text),
        "n_sentences": 1, "n_mentions": 0, "n_actors": 0, "n_statements": 0, "tone": None, "tone_label": None})


def doc(doc_id: str, origin_: str) -> Document:
    return Document(doc_id=doc_id, origin=origin_, title="", text="text", date="2021-07-01")


def test_late_rows_within_allowed_lateness_are_written_beyond_it_dropped(tmp_path):
    stream = (TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(doc("a", "m1"), 5), TimestampedValue(doc("a", "m2"), 6)])
              .advance_watermark_to(70)  # window [0, 60) fires on time
              .add_elements([TimestampedValue(doc("b", "m3"), 10)])  # late by 10 s: within 60 s
              .advance_watermark_to(200)  # window [0, 60) expires at 120
              .add_elements([TimestampedValue(doc("c", "m4"), 20)])  # beyond the lateness: dropped
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=streaming_options()) as p:
        unique = (p | "Documents" >> stream
                  | "Window" >> beam.WindowInto(FixedWindows(60), allowed_lateness=Duration(seconds=60))
                  | "Deduplicate" >> DeduplicateDocuments())
        _ = (unique.main
             | "ToRows" >> beam.Map(document_row).with_output_types(TableRow)
             | "Write" >> WriteWindowedTables(str(tmp_path)))
    files = files_of(tmp_path, "documents")
    # The on-time pane and the late pane each add a file; neither overwrites the other.
    assert len(files) == 2 and all(f.name.startswith(FIRST_WINDOW) for f in files)
    assert query(f"select doc_id, origin from {table_sql(tmp_path, 'documents')}") == [("a", "m1"), ("b", "m3")]


# --- The whole streaming analysis under TestStream ----------------------------------------------

def test_windows_dedupe_errors_and_late_data_through_the_analysis(tmp_path, tiny_config):
    stream = (TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(message("m1", LINES[0]), 5),
                             TimestampedValue(message("m2", LINES[0]), 6),  # the same document again
                             TimestampedValue(message("m3", '{"id": "x", "text": '), 7)])
              .add_elements([TimestampedValue(message("m4", LINES[1]), 65)])
              .advance_watermark_to(130)
              .add_elements([TimestampedValue(message("m5", LINES[2]), 30)])  # its window has closed
              .advance_watermark_to_infinity())
    run_analysis(tmp_path, tiny_config, stream)

    documents = query(f"select doc_id, origin, parse_filename(filename) from {table_sql(tmp_path, 'documents')}")
    assert [(d, o) for d, o, _ in documents] == [(DOC_IDS[0], origin("m1")), (DOC_IDS[1], origin("m4"))]
    assert documents[0][2].startswith(FIRST_WINDOW) and documents[1][2].startswith(SECOND_WINDOW)

    mentions = dict(query(f"select doc_id, count(*) from {table_sql(tmp_path, 'mentions')} group by doc_id"))
    n_mentions = dict(query(f"select doc_id, n_mentions from {table_sql(tmp_path, 'documents')}"))
    assert mentions == n_mentions and all(n > 0 for n in mentions.values())

    errors = query(f"select origin, stage, severity from {table_sql(tmp_path, 'errors')}")
    assert errors == [(origin("m2"), "dedupe", "rejected"), (origin("m3"), "parse", "rejected")]

    for table, schema in TABLES.items():
        for path in files_of(tmp_path, table):
            assert pq.read_schema(path).equals(schema), path


def test_late_document_within_allowed_lateness_keeps_its_mentions(tmp_path, tiny_config):
    stream = (TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(message("m1", LINES[0]), 5)])
              .advance_watermark_to(70)
              .add_elements([TimestampedValue(message("m2", LINES[1]), 30)])  # late, within 120 s
              .advance_watermark_to_infinity())
    run_analysis(tmp_path, tiny_config, stream, allowed_lateness_seconds=120)
    n_mentions = dict(query(f"select doc_id, n_mentions from {table_sql(tmp_path, 'documents')}"))
    mentions = dict(query(f"select doc_id, count(*) from {table_sql(tmp_path, 'mentions')} group by doc_id"))
    assert set(n_mentions) == {DOC_IDS[0], DOC_IDS[1]}
    assert mentions == n_mentions and n_mentions[DOC_IDS[1]] > 0


# --- Pub/Sub emulator, end to end through the command-line runner -----------------------------

EMULATOR_START_TIMEOUT_S = 60
WINDOW_SECONDS = 2  # short, so that waiting for a window to close costs little
# The DirectRunner never finishes a Pub/Sub read: the run is cancelled once the expected rows are
# written, or after RUN_SECONDS. The window is written about 6 s after the start on a quiet
# machine, several times that on a busy one; if documents are missing, raise this.
RUN_SECONDS = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(process: subprocess.Popen) -> None:
    """The emulator is gcloud (python) plus a java child: end the whole group, bounded."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def pubsub_emulator(tmp_path_factory):
    """A Pub/Sub emulator on a free port, with PUBSUB_EMULATOR_HOST pointing at it."""
    gcloud = shutil.which("gcloud")
    if not gcloud:
        pytest.skip("gcloud is not installed: the Pub/Sub emulator test needs `gcloud beta emulators pubsub`")
    port = free_port()
    log = tmp_path_factory.mktemp("pubsub-emulator") / "emulator.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
             "--project=test-project"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the Pub/Sub emulator exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Pub/Sub emulator did not start in {EMULATOR_START_TIMEOUT_S} s:\n"
                                f"{log.read_text()[-2000:]}")
                time.sleep(0.3)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")
            yield f"127.0.0.1:{port}"
    finally:
        stop_process_group(process)


def wait_for_a_fresh_window(seconds: int, margin: float = 1.0) -> None:
    """Sleeps past a window boundary if one is near, so the messages share one window."""
    left = seconds - time.time() % seconds
    if left < margin:
        time.sleep(left + 0.1)


def set_when(done: threading.Event, condition, timeout: float, settle: float = 1.0) -> None:
    """Sets `done` once `condition()` holds (then `settle` s more, for the window's other files)."""
    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    time.sleep(settle)
                    break
            except duckdb.Error:  # no files yet
                pass
            time.sleep(0.5)
        done.set()

    threading.Thread(target=watch, name="stancebeam-test-watch", daemon=True).start()


def test_pubsub_messages_become_tables_exactly_once(pubsub_emulator, tmp_path, tiny_config):
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path("test-project", "docs")
    publisher.create_topic(name=topic, timeout=30)
    subscriber.create_subscription(name=SUBSCRIPTION, topic=topic, timeout=30)
    payloads = [LINES[0], LINES[1], LINES[0], "not json {", LINES[2]]  # a duplicate, a malformed one
    wait_for_a_fresh_window(WINDOW_SECONDS)
    futures = [publisher.publish(topic, p.encode("utf-8")) for p in payloads]
    ids = [f.result(timeout=30) for f in futures]
    # The DirectRunner sets the Pub/Sub watermark to the wall clock after each pull: start once
    # the messages' window has ended, so that the first pull already closes it.
    time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.2)

    out = tmp_path / "out"
    options = make_options(["--streaming", f"--input-subscription={SUBSCRIPTION}", f"--output={out}",
                            f"--config={tiny_config}", f"--window-seconds={WINDOW_SECONDS}", "--run-id=pubsub-test"])
    settings = job_settings(load_config(str(tiny_config)), validate(options))
    done = threading.Event()
    set_when(done, lambda: (len(query(f"select doc_id from {table_sql(out, 'documents')}")) == 3
                            and len(query(f"select origin from {table_sql(out, 'errors')}")) == 2), RUN_SECONDS,
             settle=3.0)  # time for rows that should not come
    pipeline = build_streaming_pipeline(options, settings, functools.partial(BoundedRunPipeline, RUN_SECONDS, done))
    pipeline.run().wait_until_finish()

    documents = query(f"select doc_id, origin from {table_sql(out, 'documents')}")
    assert documents == sorted([(DOC_IDS[0], origin(ids[0])), (DOC_IDS[1], origin(ids[1])),
                                (DOC_IDS[2], origin(ids[4]))]), f"see RUN_SECONDS; got {documents}"
    errors = query(f"select origin, stage, reason from {table_sql(out, 'errors')}")
    assert [(o, s) for o, s, _ in errors] == sorted([(origin(ids[2]), "dedupe"), (origin(ids[3]), "parse")])
    assert any("malformed JSON" in reason for _, _, reason in errors)
    for table in TABLES:
        for path in files_of(out, table):
            assert pq.read_metadata(path).num_rows > 0, path  # a valid Parquet footer


REDELIVERY_RUN_SECONDS = 180  # an upper bound: the run stops as soon as both windows are written


def windows_written(root: Path, table: str) -> set[str]:
    """The window starts of the table's files ('part-<start>-<end>-...')."""
    return {f.name.split("-")[1] for f in files_of(root, table)}


def test_a_document_delivered_again_in_a_later_window_counts_once(pubsub_emulator, tmp_path, tiny_config, capsys):
    from google.cloud import pubsub_v1

    from stancebeam.analysis.query import main as query_main

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path("test-project", "redelivery")
    subscription = "projects/test-project/subscriptions/redelivery-sub"
    publisher.create_topic(name=topic, timeout=30)
    subscriber.create_subscription(name=subscription, topic=topic, timeout=30)
    out = tmp_path / "out"
    done, failures = threading.Event(), []

    def publish(payload: str) -> None:
        publisher.publish(topic, payload.encode("utf-8")).result(timeout=30)

    def until_written(n_windows: int, deadline: float) -> None:
        # The DirectRunner moves the Pub/Sub watermark when a pull returns: keep messages coming
        # (malformed ones, rows of the errors table only) until the window is written.
        while not all(len(windows_written(out, t)) >= n_windows for t in ("documents", "mentions")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"window {n_windows} not written in time; see REDELIVERY_RUN_SECONDS")
            publish("tick, not a document")
            time.sleep(1)

    def publish_twice():
        try:
            deadline = time.monotonic() + REDELIVERY_RUN_SECONDS - 5
            publish(LINES[0])
            until_written(1, deadline)  # the document's window is written...
            publish(LINES[0])  # ...then the same document arrives again (a new message)
            until_written(2, deadline)
            time.sleep(1)  # the other tables' files of that window
        except BaseException as e:
            failures.append(e)
        finally:
            done.set()

    options = make_options(["--streaming", f"--input-subscription={subscription}", f"--output={out}",
                            f"--config={tiny_config}", f"--window-seconds={WINDOW_SECONDS}"])
    settings = job_settings(load_config(str(tiny_config)), validate(options))
    # build_streaming_pipeline, with allowed lateness: the DirectRunner sets the Pub/Sub watermark
    # to the wall clock after every pull, whatever is still in flight, so on a busy machine rows
    # that take seconds to analyse reach the writer's GroupByKey late and are dropped (seen here:
    # the redelivered document and the ticks around it vanished). Real runners hold the watermark.
    pipeline = new_pipeline(options, functools.partial(BoundedRunPipeline, REDELIVERY_RUN_SECONDS, done))
    _ = (pipeline
         | "ReadPubSub" >> ReadFromPubSub(subscription=subscription, with_attributes=True)
         | "AnalyseMessages" >> AnalyseMessages(settings, subscription, WINDOW_SECONDS, str(out),
                                                allowed_lateness_seconds=REDELIVERY_RUN_SECONDS))
    publisher_thread = threading.Thread(target=publish_twice, daemon=True)
    publisher_thread.start()
    pipeline.run().wait_until_finish()
    publisher_thread.join(10)
    assert not failures, failures

    raw = query(f"select doc_id, parse_filename(filename) from {table_sql(out, 'documents')}")
    assert [d for d, _ in raw] == [DOC_IDS[0], DOC_IDS[0]]  # rows in two windows' files
    assert len({name.split("-")[1] for _, name in raw}) == 2
    assert query_main([str(out), "select count(*) as documents, count(distinct doc_id) as ids from documents",
                       "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"documents": 1, "ids": 1}]
    assert query_main([str(out), "--preset", "top-praised", "--param", "min_mentions=1", "--format", "json"]) == 0
    praised = json.loads(capsys.readouterr().out)
    assert praised == [] or max(r["n_docs"] for r in praised) == 1
    assert query_main([str(out), "--preset", "top-criticised", "--param", "min_mentions=1", "--format", "json"]) == 0
    criticised = json.loads(capsys.readouterr().out)
    assert criticised == [] or max(r["n_docs"] for r in criticised) == 1
    assert praised or criticised  # the document's actors are counted, once
