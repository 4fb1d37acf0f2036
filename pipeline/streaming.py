"""Builds the streaming pipeline: Pub/Sub messages in, windowed Parquet tables out."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import PCollection
from apache_beam.transforms.window import FixedWindows
from apache_beam.utils.timestamp import Duration

from stancebeam.pipeline.builder import AnalyseDocuments, JobSettings, count_actors, new_pipeline
from stancebeam.pipeline.options import StancebeamOptions
from stancebeam.transforms.elements import Document, ErrorRecord, RawRecord, TableRow, WithErrors
from stancebeam.transforms.parse import DeduplicateDocuments, ParseDocuments
from stancebeam.transforms.window_write import WriteWindowedTables
from stancebeam.transforms.write import ErrorRowFn

ALLOWED_LATENESS_SECONDS = 0  # see AnalyseMessages


@beam.typehints.with_input_types(PubsubMessage)
@beam.typehints.with_output_types(RawRecord)
class MessageToRecordFn(beam.DoFn):
    """PubsubMessage -> RawRecord: the payload parses exactly like a JSONL line."""

    def __init__(self, subscription: str):
        self.subscription = subscription

    def process(self, message):
        yield RawRecord(f"pubsub:{self.subscription}:{message.message_id}", "jsonl", message.data)


@beam.typehints.with_input_types(PubsubMessage)
class AnalyseMessages(beam.PTransform[PCollection[PubsubMessage], PCollection]):
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
    A redelivered message in the same window becomes a `dedupe` row of the errors table; one in
    a later window (or a late pane) gets rows there too, and readers keep only the latest version
    of the document (analysis/tables.py), so it still counts once.
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
        records: PCollection[RawRecord] = messages | "ToRawRecords" >> beam.ParDo(
            MessageToRecordFn(self.subscription))
        windowed: PCollection[RawRecord] = records | "FixedWindows" >> beam.WindowInto(
            FixedWindows(self.window_seconds), allowed_lateness=Duration(seconds=self.allowed_lateness))
        parsed: WithErrors[Document] = windowed | "ParseDocuments" >> ParseDocuments()
        unique: WithErrors[Document] = parsed.main | "Deduplicate" >> DeduplicateDocuments()
        analysed: WithErrors[TableRow] = unique.main | "Analyse" >> AnalyseDocuments(self.settings)
        errors: PCollection[ErrorRecord] = (
            (parsed.errors, unique.errors, analysed.errors) | "FlattenErrors" >> beam.Flatten())
        error_rows: PCollection[TableRow] = errors | "ErrorRows" >> beam.ParDo(ErrorRowFn(
            self.settings.run.run_id, self.settings.run.model_id))
        all_rows: PCollection[TableRow] = (analysed.main, error_rows) | "AllRows" >> beam.Flatten()
        count_actors(analysed.main)
        return all_rows | "WriteTables" >> WriteWindowedTables(self.output)


def build_streaming_pipeline(options: PipelineOptions, settings: JobSettings,
                             pipeline_class=beam.Pipeline) -> beam.Pipeline:
    """Pub/Sub subscription -> windowed tables under --output; built, not run.

    Args:
        options: the run's options.
        settings: what the transforms need.
        pipeline_class: the Pipeline (sub)class to build into; tests pass one whose run
            stops after a while (tests/bounded_run.py).
    """
    opts = options.view_as(StancebeamOptions)
    p = new_pipeline(options, pipeline_class)
    messages = p | "ReadPubSub" >> ReadFromPubSub(subscription=opts.input_subscription, with_attributes=True)
    _ = messages | "AnalyseMessages" >> AnalyseMessages(
        settings, opts.input_subscription, opts.window_seconds, opts.output)
    return p
