"""Builds the stancebeam pipeline graph (without running it)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, TypeOptions
from apache_beam.pvalue import PCollection

from stancebeam.classifier.artifacts import read_manifest
from stancebeam.classifier.resources import normalise, read_bytes
from stancebeam.pipeline.options import StancebeamOptions
from stancebeam.transforms.actors import ExtractActors
from stancebeam.transforms.aggregate import AggregateDocuments, RunInfo
from stancebeam.transforms.classify import ClassifyDocuments, ClassifyPairs
from stancebeam.transforms.elements import (AnalysedDocument, ClassifiedDocument, Document, ErrorRecord, FileRange,
                                             RawRecord, TableRow, WithErrors)
from stancebeam.transforms.pairs import SelectPairs
from stancebeam.transforms.parse import DropDuplicates, FindDuplicates, ParseDocuments
from stancebeam.transforms.read import ListFileRanges, ReadRanges, spread
from stancebeam.transforms.write import ErrorRowFn, WriteTables


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """Everything the transforms need, resolved from the config and the command line.

    It is pickled into the DoFns: `model_dir`, `stance_model_dir` and `gazetteer` are resource references
    (`package:...`, a URI, or an absolute local path), which each worker resolves for itself.
    """

    run: RunInfo
    model_dir: str
    stance_model_dir: str
    backend: str
    threads: int | None
    max_batch_size: int
    spacy_model: str
    gazetteer: str
    max_doc_chars: int
    nlp_batch_size: int
    nlp_batch_chars: int
    files_per_partition: int
    max_pairs_per_sentence: int
    max_pairs_per_document: int
    stance_cues: frozenset


def make_run_id() -> str:
    """`run-20261130T135441.123456Z-1f2e3d4c`: UTC time to the microsecond, then 32 random bits.

    The time alone is not unique (two runs launched in the same second got the same id); the
    random suffix makes a clash of two launches in the same microsecond a 1 in 4e9 chance. Ids
    of the same format sort by launch time.
    """
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"run-{stamp}-{secrets.token_hex(4)}"


def job_settings(config: dict, opts: StancebeamOptions) -> JobSettings:
    model_dir = normalise(opts.model_dir or config["model"]["dir"])
    gazetteer = normalise(config["nlp"]["gazetteer"])
    backend = opts.backend or config["model"]["backend"]
    stance_model_dir = normalise(opts.stance_model_dir or config["model"]["stance_dir"])
    suffix = "" if backend == "torch" else f"+{backend}"
    # Fail at launch, not on a worker, if a model (or one of the wrong task) or the gazetteer is
    # missing. Only the launcher's copy is checked: workers resolve the same references in
    # their own install.
    model_id = checked_model_id(model_dir, "sentiment") + suffix
    stance_model_id = checked_model_id(stance_model_dir, "stance") + suffix
    read_bytes(gazetteer)
    stance = config["stance"]
    return JobSettings(
        run=RunInfo(opts.run_id or make_run_id(), model_id, stance_model_id), model_dir=model_dir,
        stance_model_dir=stance_model_dir, backend=backend,
        threads=config["model"].get("threads"), max_batch_size=int(config["model"]["max_batch_size"]),
        spacy_model=config["nlp"]["spacy_model"], gazetteer=gazetteer,
        max_doc_chars=int(config["nlp"]["max_doc_chars"]), nlp_batch_size=int(config["nlp"]["batch_size"]),
        nlp_batch_chars=int(config["nlp"]["batch_chars"]),
        files_per_partition=int(config["output"]["files_per_partition"]),
        max_pairs_per_sentence=int(stance["max_pairs_per_sentence"]),
        max_pairs_per_document=int(stance["max_pairs_per_document"]),
        stance_cues=stance_cue_names(stance["cues"]))


def stance_cue_names(names) -> frozenset:
    from stancebeam.transforms.stance import CUE_STANCE

    unknown = set(names or ()) - set(CUE_STANCE)
    if unknown:
        raise ValueError(f"stance.cues: unknown {sorted(unknown)}; known: {sorted(CUE_STANCE)}")
    return frozenset(names or ())


def checked_model_id(model_dir: str, task: str) -> str:
    manifest = read_manifest(model_dir)
    if manifest.get("task", "sentiment") != task:
        raise ValueError(f"{model_dir} is a {manifest.get('task', 'sentiment')} model; "
                         f"a {task} model is needed there")
    return manifest.get("model_id", "unknown")


def new_pipeline(options: PipelineOptions, pipeline_class=beam.Pipeline) -> beam.Pipeline:
    """An empty pipeline with Beam's construction-time type checking on.

    Every transform and DoFn here declares its element types, so a step wired to the wrong
    PCollection fails when the graph is built, not on a worker (tests/test_element_types.py).
    """
    options.view_as(TypeOptions).pipeline_type_check = True
    return pipeline_class(options=options)


@beam.typehints.with_input_types(Document)
class AnalyseDocuments(beam.PTransform[PCollection[Document], WithErrors[TableRow]]):
    """Documents -> TableRows for every table but errors, and ErrorRecords.

    The part shared by the batch and the streaming pipelines.
    """

    def __init__(self, settings: JobSettings):
        super().__init__()
        self.s = settings

    def expand(self, documents) -> WithErrors[TableRow]:
        s = self.s
        analysed: WithErrors[AnalysedDocument] = documents | "ExtractActors" >> ExtractActors(
            s.spacy_model, s.gazetteer, s.max_doc_chars, s.nlp_batch_size, s.nlp_batch_chars)
        paired: WithErrors[AnalysedDocument] = analysed.main | "SelectPairs" >> SelectPairs(
            s.max_pairs_per_sentence, s.max_pairs_per_document)
        classified: WithErrors[ClassifiedDocument] = paired.main | "ClassifyDocuments" >> ClassifyDocuments(
            s.model_dir, s.backend, s.threads, s.max_batch_size)
        stances: WithErrors[ClassifiedDocument] = classified.main | "ClassifyPairs" >> ClassifyPairs(
            s.stance_model_dir, s.backend, s.threads, s.max_batch_size)
        rows: PCollection[TableRow] = stances.main | "Aggregate" >> AggregateDocuments(s.run, s.stance_cues)
        errors: PCollection[ErrorRecord] = (
            (analysed.errors, paired.errors, classified.errors, stances.errors)
            | "FlattenAnalysisErrors" >> beam.Flatten())
        return WithErrors(rows, errors)


@beam.typehints.with_input_types(str)
class CountDistinctActors(beam.DoFn):
    def __init__(self):
        self.actors = beam.metrics.Metrics.counter("stancebeam", "distinct_actors")

    def process(self, _):
        self.actors.inc()


def actor_id_of(element: TableRow) -> str:
    return element.row["actor_id"]


def is_actor_row(element: TableRow) -> bool:
    return element.table == "actor_sentiment"


def count_actors(rows: PCollection[TableRow]) -> None:
    """Counts distinct actors over the run for the summary (a metric, no output)."""
    _ = (rows
         | "ActorRows" >> beam.Filter(is_actor_row)
         | "ActorIds" >> beam.Map(actor_id_of).with_output_types(str)
         | "DistinctActors" >> beam.Distinct()
         | "CountActors" >> beam.ParDo(CountDistinctActors()))


def build_batch_pipeline(options: PipelineOptions, settings: JobSettings) -> beam.Pipeline:
    opts = options.view_as(StancebeamOptions)
    p = new_pipeline(options)
    listed: WithErrors[FileRange] = p | "ListInputs" >> ListFileRanges(opts.input, opts.input_format)
    ranges: PCollection[FileRange] = spread(listed.main)
    # The input is read twice: once for document ids only (to find duplicates), once to analyse.
    # Reading is cheap next to the models, and nothing per document has to wait in memory.
    for_ids: WithErrors[RawRecord] = ranges | "ReadForIds" >> ReadRanges()
    duplicates: PCollection[tuple[str, str]] = (
        (for_ids.main | "ParseForIds" >> ParseDocuments("stancebeam_id_pass")).main
        | "FindDuplicates" >> FindDuplicates())
    read: WithErrors[RawRecord] = ranges | "ReadDocuments" >> ReadRanges()
    parsed: WithErrors[Document] = read.main | "ParseDocuments" >> ParseDocuments()
    unique: WithErrors[Document] = parsed.main | "DropDuplicates" >> DropDuplicates(duplicates)
    analysed: WithErrors[TableRow] = unique.main | "Analyse" >> AnalyseDocuments(settings)
    errors: PCollection[ErrorRecord] = (
        (listed.errors, read.errors, parsed.errors, unique.errors, analysed.errors)
        | "FlattenErrors" >> beam.Flatten())
    error_rows: PCollection[TableRow] = errors | "ErrorRows" >> beam.ParDo(
        ErrorRowFn(settings.run.run_id, settings.run.model_id))
    count_actors(analysed.main)
    # Rows and error rows are written separately: a Flatten of the two would be materialised.
    _ = analysed.main | "WriteTables" >> WriteTables(opts.output, settings.files_per_partition)
    _ = error_rows | "WriteErrors" >> WriteTables(opts.output, settings.files_per_partition)
    return p
