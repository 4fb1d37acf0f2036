"""Builds the streaming pipeline: Pub/Sub messages in, windowed Parquet tables out."""
from __future__ import annotations

import logging
import threading

import apache_beam as beam
from apache_beam.io.gcp.pubsub import ReadFromPubSub
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.transforms.window import FixedWindows
from apache_beam.utils.timestamp import Duration

from stancebeam.pipeline.builder import AnalyseDocuments, JobSettings, count_actors
from stancebeam.pipeline.options import StancebeamOptions
from stancebeam.transforms.parse import DeduplicateDocuments, ParseDocuments
from stancebeam.transforms.records import RawRecord
from stancebeam.transforms.window_write import WriteWindowedTables
from stancebeam.transforms.write import ErrorRowFn

log = logging.getLogger(__name__)

ALLOWED_LATENESS_SECONDS = 0  # see AnalyseMessages
CANCEL_WAIT_SECONDS = 2


class StreamingTestOptions(PipelineOptions):
    """Options for tests and demos of the streaming pipeline only."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--streaming-run-seconds", "--streaming_run_seconds", dest="streaming_run_seconds",
            type=float, default=None,
            help="tests and demos: cancel a streaming run after this many seconds (default: "
                 "run until cancelled); windows not yet closed by then are not written")


class MessageToRecordFn(beam.DoFn):
    """PubsubMessage -> RawRecord: the payload parses exactly like a JSONL line."""

    def __init__(self, subscription: str):
        self.subscription = subscription

    def process(self, message):
        yield RawRecord(f"pubsub:{self.subscription}:{message.message_id}", "jsonl", message.data)


class AnalyseMessages(beam.PTransform):
    """PubsubMessages -> windowed Parquet tables (documents, ..., errors) under `output`.

    Event time is the message's publish time (ReadFromPubSub's element timestamp). Documents are
    deduplicated per window, so a message delivered twice in one window yields one set of rows.

    Allowed lateness is 0 by default. Each document is classified and aggregated as a whole (no
    join), so a late document within a larger allowed lateness is written complete in a late pane
    (tests/test_streaming.py); but a late pane holds only the late elements, so a redelivered
    copy arriving late is not recognised as a duplicate of the on-time one. With publish-time
    timestamps the Pub/Sub watermark follows the backlog's oldest publish time, so data is late
    only if the runner's watermark estimate runs ahead of a delivery; Beam drops such data at the
    first GroupByKey (Dataflow counts it; the Python SDK has no counter for it).
    A redelivered message in the same window becomes a `dedupe` row of the errors table.
    """

    def __init__(self, settings: JobSettings, subscription: str, window_seconds: int, output: str,
                 allowed_lateness_seconds: float = ALLOWED_LATENESS_SECONDS):
        super().__init__()
        self.settings = settings
        self.subscription = subscription
        self.window_seconds = window_seconds
        self.output = output
        self.allowed_lateness = allowed_lateness_seconds

    def expand(self, messages):
        records = messages | "ToRawRecords" >> beam.ParDo(MessageToRecordFn(self.subscription))
        windowed = records | "FixedWindows" >> beam.WindowInto(
            FixedWindows(self.window_seconds), allowed_lateness=Duration(seconds=self.allowed_lateness))
        parsed = windowed | "ParseDocuments" >> ParseDocuments()
        unique = parsed.documents | "Deduplicate" >> DeduplicateDocuments()
        rows, analysis_errors = unique.documents | "Analyse" >> AnalyseDocuments(self.settings)
        errors = ((parsed.errors, unique.errors, analysis_errors)
                  | "FlattenErrors" >> beam.Flatten())
        error_rows = errors | "ErrorRows" >> beam.ParDo(ErrorRowFn(
            self.settings.run.run_id, self.settings.run.model_id))
        all_rows = (rows, error_rows) | "AllRows" >> beam.Flatten()
        count_actors(rows)
        return all_rows | "WriteTables" >> WriteWindowedTables(self.output)


class BoundedRunPipeline(beam.Pipeline):
    """A pipeline whose run() result stops the job after `seconds` (--streaming-run-seconds)."""

    def __init__(self, seconds: float, **kwargs):
        super().__init__(**kwargs)
        self.seconds = seconds

    def run(self, test_runner_api="AUTO"):
        return BoundedRunResult(super().run(test_runner_api), self.seconds)


class BoundedRunResult(PipelineResult):
    """Wraps a running job: wait_until_finish() waits at most `seconds`, then cancels the job."""

    def __init__(self, result: PipelineResult, seconds: float):
        super().__init__(result.state)
        self._result = result
        self.seconds = seconds

    @property
    def state(self):
        return self._result.state

    def metrics(self):
        return self._result.metrics()

    def cancel(self):
        return self._result.cancel()

    def wait_until_finish(self, duration=None):
        try:
            self._result.wait_until_finish(duration=int(self.seconds * 1000))
        except NotImplementedError:
            # The DirectRunner cannot wait for a duration: wait in a daemon thread instead. After
            # cancel() that thread stays blocked on the runner's update queue until the process ends.
            self._wait_in_thread()
        if not PipelineState.is_terminal(self.state):
            log.info("streaming run: %.0f s passed, cancelling the job", self.seconds)
            self._cancel()
        return self.state

    def _cancel(self):
        # The DirectRunner's cancel() joins its worker threads, and one may be inside a Pub/Sub
        # pull that returns only after 30 s on an idle subscription: do not wait for that.
        canceller = threading.Thread(target=self._result.cancel, name="stancebeam-cancel", daemon=True)
        canceller.start()
        canceller.join(CANCEL_WAIT_SECONDS)
        if canceller.is_alive():
            log.warning("streaming run: the job is still stopping after %d s; not waiting for it",
                        CANCEL_WAIT_SECONDS)

    def _wait_in_thread(self):
        failure: list[BaseException] = []

        def wait():
            try:
                self._result.wait_until_finish()
            except BaseException as e:  # re-raised in the caller's thread
                failure.append(e)

        waiter = threading.Thread(target=wait, name="stancebeam-bounded-run", daemon=True)
        waiter.start()
        waiter.join(self.seconds)
        if failure:
            raise failure[0]


def build_streaming_pipeline(options: PipelineOptions, settings: JobSettings) -> beam.Pipeline:
    """Pub/Sub subscription -> windowed tables under --output; built, not run."""
    opts = options.view_as(StancebeamOptions)
    run_seconds = options.view_as(StreamingTestOptions).streaming_run_seconds
    p = BoundedRunPipeline(run_seconds, options=options) if run_seconds else beam.Pipeline(options=options)
    messages = p | "ReadPubSub" >> ReadFromPubSub(subscription=opts.input_subscription, with_attributes=True)
    _ = messages | "AnalyseMessages" >> AnalyseMessages(
        settings, opts.input_subscription, opts.window_seconds, opts.output)
    return p
