"""Every step declares its element types, so a mis-wired graph fails when it is built."""
import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, TypeOptions
from apache_beam.typehints.decorators import TypeCheckError

from stancebeam.pipeline.builder import new_pipeline
from stancebeam.transforms.aggregate import AggregateDocuments, RunInfo
from stancebeam.transforms.classify import ClassifyDocuments
from stancebeam.transforms.elements import ERRORS, AnalysedDocument, ClassifiedDocument, Document, TableRow
from stancebeam.transforms.write import ErrorRowFn

DOC = Document("d", "d.txt", "", "text", None)


def test_feeding_documents_where_analysed_documents_are_expected_fails_at_construction():
    p = new_pipeline(PipelineOptions(["--no_pipeline_type_check"]))
    assert p.options.view_as(TypeOptions).pipeline_type_check  # the builder turns it back on
    documents = p | beam.Create([DOC])
    with pytest.raises(TypeCheckError, match="AnalysedDocument"):
        _ = documents | "Classify" >> ClassifyDocuments("unused")


def test_table_rows_cannot_be_written_as_errors():
    p = new_pipeline(PipelineOptions())
    rows = p | beam.Create([TableRow("documents", None, {})])
    with pytest.raises(TypeCheckError, match="ErrorRecord"):
        _ = rows | "ErrorRows" >> beam.ParDo(ErrorRowFn("run", "model"))


def test_the_classifier_output_is_typed_so_the_check_reaches_aggregation():
    p = new_pipeline(PipelineOptions())
    analysed = p | beam.Create([], reshuffle=False).with_output_types(AnalysedDocument)
    classified = analysed | "Classify" >> ClassifyDocuments("unused")
    assert classified.main.element_type is ClassifiedDocument
    assert classified.errors.element_type.__name__ == "ErrorRecord" and ERRORS == "errors"
    rows = classified.main | "Aggregate" >> AggregateDocuments(RunInfo("r", "m"))
    assert rows.element_type is TableRow
    with pytest.raises(TypeCheckError):
        _ = classified.errors | "AggregateErrors" >> AggregateDocuments(RunInfo("r", "m"))
