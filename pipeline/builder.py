"""Builds the stancebeam pipeline graph (without running it)."""
from __future__ import annotations

import dataclasses
import datetime as dt

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from stancebeam.classifier.artifacts import read_manifest
from stancebeam.classifier.resources import normalise, read_bytes
from stancebeam.pipeline.options import StancebeamOptions
from stancebeam.transforms.actors import ExtractActors
from stancebeam.transforms.aggregate import AggregateDocuments, RunInfo
from stancebeam.transforms.classify import ClassifyDocuments
from stancebeam.transforms.parse import DropDuplicates, FindDuplicates, ParseDocuments
from stancebeam.transforms.read import ListFileRanges, ReadRanges, spread
from stancebeam.transforms.write import ErrorRowFn, WriteTables


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """Everything the transforms need, resolved from the config and the command line.

    It is pickled into the DoFns: `model_dir` and `gazetteer` are resource references
    (`package:...`, a URI, or an absolute local path), which each worker resolves for itself.
    """

    run: RunInfo
    model_dir: str
    backend: str
    threads: int | None
    max_batch_size: int
    spacy_model: str
    gazetteer: str
    max_doc_chars: int
    nlp_batch_size: int
    nlp_batch_chars: int
    files_per_partition: int


def make_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("run-%Y%m%dT%H%M%SZ")


def job_settings(config: dict, opts: StancebeamOptions) -> JobSettings:
    model_dir = normalise(opts.model_dir or config["model"]["dir"])
    gazetteer = normalise(config["nlp"]["gazetteer"])
    backend = opts.backend or config["model"]["backend"]
    # Fail at launch, not on a worker, if the model or the gazetteer is missing. Only the
    # launcher's copy is checked: workers resolve the same references in their own install.
    manifest = read_manifest(model_dir)
    read_bytes(gazetteer)
    model_id = manifest.get("model_id", "unknown") + ("" if backend == "torch" else f"+{backend}")
    return JobSettings(
        run=RunInfo(opts.run_id or make_run_id(), model_id), model_dir=model_dir, backend=backend,
        threads=config["model"].get("threads"), max_batch_size=int(config["model"]["max_batch_size"]),
        spacy_model=config["nlp"]["spacy_model"], gazetteer=gazetteer,
        max_doc_chars=int(config["nlp"]["max_doc_chars"]), nlp_batch_size=int(config["nlp"]["batch_size"]),
        nlp_batch_chars=int(config["nlp"]["batch_chars"]),
        files_per_partition=int(config["output"]["files_per_partition"]))


class AnalyseDocuments(beam.PTransform):
    """Documents -> (table, date, row) for every table but errors, plus ErrorRecords.

    The part shared by the batch and the streaming pipelines.
    """

    def __init__(self, settings: JobSettings):
        super().__init__()
        self.s = settings

    def expand(self, documents):
        s = self.s
        actors = documents | "ExtractActors" >> ExtractActors(
            s.spacy_model, s.gazetteer, s.max_doc_chars, s.nlp_batch_size, s.nlp_batch_chars)
        classified = actors.analysed | "ClassifyDocuments" >> ClassifyDocuments(
            s.model_dir, s.backend, s.threads, s.max_batch_size)
        aggregated = classified["classified"] | "Aggregate" >> AggregateDocuments(s.run)
        errors = ((actors.errors, classified["errors"], aggregated.errors)
                  | "FlattenAnalysisErrors" >> beam.Flatten())
        return aggregated.rows, errors


class CountDistinctActors(beam.DoFn):
    def __init__(self):
        self.actors = beam.metrics.Metrics.counter("stancebeam", "distinct_actors")

    def process(self, _):
        self.actors.inc()


def actor_id_of(element) -> str:
    return element[2]["actor_id"]


def is_actor_row(element) -> bool:
    return element[0] == "actor_sentiment"


def count_actors(rows):
    """Counts distinct actors over the run for the summary (a metric, no output)."""
    return (rows
            | "ActorRows" >> beam.Filter(is_actor_row)
            | "ActorIds" >> beam.Map(actor_id_of)
            | "DistinctActors" >> beam.Distinct()
            | "CountActors" >> beam.ParDo(CountDistinctActors()))


def build_batch_pipeline(options: PipelineOptions, settings: JobSettings) -> beam.Pipeline:
    opts = options.view_as(StancebeamOptions)
    p = beam.Pipeline(options=options)
    listed = p | "ListInputs" >> ListFileRanges(opts.input, opts.input_format)
    ranges = spread(listed.ranges)
    # The input is read twice: once for document ids only (to find duplicates), once to analyse.
    # Reading is cheap next to the models, and nothing per document has to wait in memory.
    for_ids = ranges | "ReadForIds" >> ReadRanges()
    duplicates = ((for_ids.records | "ParseForIds" >> ParseDocuments("stancebeam_id_pass")).documents
                  | "FindDuplicates" >> FindDuplicates())
    read = ranges | "ReadDocuments" >> ReadRanges()
    parsed = read.records | "ParseDocuments" >> ParseDocuments()
    unique = parsed.documents | "DropDuplicates" >> DropDuplicates(duplicates)
    rows, analysis_errors = unique.documents | "Analyse" >> AnalyseDocuments(settings)
    errors = ((listed.errors, read.errors, parsed.errors, unique.errors, analysis_errors)
              | "FlattenErrors" >> beam.Flatten())
    error_rows = errors | "ErrorRows" >> beam.ParDo(ErrorRowFn(settings.run.run_id, settings.run.model_id))
    count_actors(rows)
    # Rows and error rows are written separately: a Flatten of the two would be materialised.
    _ = rows | "WriteTables" >> WriteTables(opts.output, settings.files_per_partition)
    _ = error_rows | "WriteErrors" >> WriteTables(opts.output, settings.files_per_partition)
    return p
