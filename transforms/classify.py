"""Classifies every actor mention in its sentence with RunInference and the project's model handler."""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Iterable, Optional, Sequence, TypeVar

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.pvalue import PCollection

from stancebeam.classifier.encoding import PairExample, TargetExample
from stancebeam.transforms.elements import (AnalysedDocument, ClassifiedDocument, Document, ErrorRecord,
                                             MentionSentiment, PairStance, WithErrors, excerpt)
from stancebeam.transforms.memory import release_free_memory
from stancebeam.transforms.pairs import MentionSpan, pair_example

if TYPE_CHECKING:
    from stancebeam.classifier.inference import TargetClassifier

log = logging.getLogger(__name__)
InT = TypeVar("InT")
OutT = TypeVar("OutT")


def mention_count(analysed: AnalysedDocument) -> int:
    """A document's weight in a sentiment batch: its mentions (at least 1, so empty ones move on)."""
    return max(1, len(analysed.mentions))


def pair_count(classified: ClassifiedDocument) -> int:
    """A document's weight in a stance batch: its pairs (at least 1)."""
    return max(1, len(classified.analysed.pairs))


class InferenceFailed(Exception):
    """Some documents of a batch fail inference even alone; RunInference dead-letters the batch."""


class DocumentModelHandler(ModelHandler[InT, OutT, "TargetClassifier"]):
    """Loads one classifier once per worker process and runs it over whole documents.

    RunInference batches whole documents, weighted by how many examples each holds, so one batch
    is `min_batch_size`..`max_batch_size` examples from several documents. Classifying documents
    rather than single mentions means nothing has to join predictions back to their document
    afterwards: a join is a shuffle, and the local runner keeps a shuffle's whole input in memory.
    `TargetClassifier.predict_encoded` sorts a batch's examples by token length and pads per
    sub-batch (dynamic padding), so a large batch costs little padding. Over 200 articles
    (benchmarks/inference_batching.py), batches of at least 128 / 256 / 1,024 mentions padded
    1.17x / 1.11x / 1.04x the real tokens, and the forward pass took 1.17x / 1.09x / 1.03x the
    time of the whole corpus sorted at once.

    Subclasses say which task the model must have, what a document's examples are and how the
    probabilities attach to it.
    """

    task = ""

    def __init__(self, model_dir: str, backend: str = "torch", threads: Optional[int] = None,
                 min_batch_size: int = 8, max_batch_size: int = 256, inner_batch_size: int = 32):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         element_size_fn=self.weight)
        self.model_dir = model_dir
        self.backend = backend
        self.threads = threads
        self.inner_batch_size = inner_batch_size

    @staticmethod
    def weight(element) -> int:
        raise NotImplementedError

    @staticmethod
    def examples(element) -> list:
        raise NotImplementedError

    @staticmethod
    def attach(element, probs: np.ndarray, model_id: str):
        raise NotImplementedError

    def load_model(self):
        from stancebeam.classifier.inference import TargetClassifier

        model = TargetClassifier.from_dir(self.model_dir, backend=self.backend,
                                          batch_size=self.inner_batch_size, threads=self.threads)
        if model.loaded.task != self.task:
            raise ValueError(f"{self.model_dir} is a {model.loaded.task} model, not a {self.task} model")
        return model

    def run_inference(self, batch: Sequence, model: TargetClassifier, inference_args=None) -> Iterable:
        """One output per document, or InferenceFailed for the whole batch.

        A failure must reach RunInference's dead letters, and those take whole batches: so a
        failed batch is retried document by document first, and only a document that fails
        alone fails the batch. A batch that fails as a whole but not document by document (its
        size, say) is classified; otherwise every document of the batch becomes a rejected
        error, and the reason names the ones that failed alone. Each input document is then
        either in `documents` or rejected in `errors`; keeping the healthy batch-mates would need
        a retry branch merged back into the main one, a Flatten that the local runner
        materialises (see tests/test_pipeline.py).
        """
        try:
            try:
                probs = self._predict(batch, model)
            except Exception as batch_error:
                probs = self._predict_one_by_one(batch, model, batch_error)
        finally:
            release_free_memory()
        return [self.attach(element, p, model.model_id) for element, p in zip(batch, probs)]

    def _predict(self, batch: Sequence, model) -> list[np.ndarray]:
        per_document = [self.examples(element) for element in batch]
        examples = [example for document in per_document for example in document]
        probs = (model.predict_proba(examples) if examples
                 else np.zeros((0, len(model.labels)), dtype=np.float32))
        bounds = np.cumsum([len(document) for document in per_document])[:-1]
        return np.split(probs, bounds)

    def _predict_one_by_one(self, batch: Sequence, model, batch_error: Exception) -> list[np.ndarray]:
        probs, failed = [], []
        for element in batch:
            try:
                probs.append(self._predict([element], model)[0])
            except Exception as e:
                origin = document_of(element).origin
                log.warning("inference failed for %s: %s", origin, e)
                failed.append(f"{origin}: {type(e).__name__}: {e}")
        if failed:
            raise InferenceFailed(f"{len(failed)} of {len(batch)} documents in the batch failed alone: "
                                  + "; ".join(failed)) from batch_error
        return probs

    def get_metrics_namespace(self) -> str:
        return f"stancebeam_inference_{self.task}"


class TargetSentimentModelHandler(DocumentModelHandler[AnalysedDocument, ClassifiedDocument]):
    """The target sentiment model over every mention of a document."""

    task = "sentiment"

    @staticmethod
    def weight(analysed: AnalysedDocument) -> int:
        return mention_count(analysed)

    @staticmethod
    def examples(analysed: AnalysedDocument) -> list[TargetExample]:
        return [example for _, example in to_examples(analysed)]

    @staticmethod
    def attach(analysed: AnalysedDocument, probs: np.ndarray, model_id: str) -> ClassifiedDocument:
        return classified_document(analysed, probs, model_id)

    def get_num_bytes(self, batch: Sequence[AnalysedDocument]) -> int:
        """The characters of the sentences the model reads: Beam's default pickles the batch."""
        return sum(len(m.sentence) for analysed in batch for m in analysed.mentions)

    def get_metrics_namespace(self) -> str:
        return "stancebeam_inference"


class PairStanceModelHandler(DocumentModelHandler[ClassifiedDocument, ClassifiedDocument]):
    """The directed stance model over every selected pair of a document (transforms/pairs.py)."""

    task = "stance"

    @staticmethod
    def weight(classified: ClassifiedDocument) -> int:
        return pair_count(classified)

    @staticmethod
    def examples(classified: ClassifiedDocument) -> list[PairExample]:
        return [pair_example(p.first.sentence, p.first.sentence_start, span_of(p.first), span_of(p.second))
                for p in classified.analysed.pairs]

    @staticmethod
    def attach(classified: ClassifiedDocument, probs: np.ndarray, model_id: str) -> ClassifiedDocument:
        stances = tuple(PairStance(pair, tuple(float(x) for x in p), model_id)
                        for pair, p in zip(classified.analysed.pairs, np.asarray(probs, dtype=np.float32)))
        return dataclasses.replace(classified, stances=stances)

    def get_num_bytes(self, batch: Sequence[ClassifiedDocument]) -> int:
        """The characters of the sentences the model reads: Beam's default pickles the batch."""
        return sum(len(p.first.sentence) for c in batch for p in c.analysed.pairs)


def span_of(mention) -> MentionSpan:
    return MentionSpan(mention.actor.actor_id, mention.start, mention.end)


def document_of(element) -> Document:
    """The input document behind an element of either inference step."""
    return element.document if isinstance(element, AnalysedDocument) else element.analysed.document


def to_examples(analysed: AnalysedDocument):
    """(mention, TargetExample) pairs: the target's offsets relative to its sentence, and the
    spans of the other actors' mentions in that sentence (read by the `markers+others` scheme)."""
    by_sentence: dict[int, list] = {}
    for m in analysed.mentions:
        by_sentence.setdefault(m.sentence_index, []).append(m)
    for m in analysed.mentions:
        others = tuple((o.start - o.sentence_start, o.end - o.sentence_start)
                       for o in by_sentence[m.sentence_index]
                       if o.actor.actor_id != m.actor.actor_id)
        yield m, TargetExample(m.sentence, m.start - m.sentence_start, m.end - m.sentence_start, others)


def classified_document(analysed: AnalysedDocument, probs: np.ndarray, model_id: str) -> ClassifiedDocument:
    return ClassifiedDocument(analysed, tuple(
        MentionSentiment(m, tuple(float(x) for x in p), model_id)
        for m, p in zip(analysed.mentions, np.asarray(probs, dtype=np.float32))))


@beam.typehints.with_input_types(tuple[list[beam.typehints.Union[AnalysedDocument, ClassifiedDocument]], tuple])
@beam.typehints.with_output_types(ErrorRecord)
class InferenceErrorFn(beam.DoFn):
    """A dead-lettered batch (documents, (exception type, repr, traceback)) -> a rejection per document."""

    def __init__(self, stage: str = "classify"):
        self.stage = stage

    def process(self, failed):
        batch, (_, exc_repr, _) = failed
        reason = f"inference failed: {exc_repr}"  # InferenceFailed names the documents that failed alone
        for element in batch:
            d = document_of(element)
            yield ErrorRecord(d.origin, self.stage, reason, excerpt=excerpt(d.title or d.text),
                              doc_id=d.doc_id, date=d.date)


def run_with_dead_letters(documents, handler: DocumentModelHandler, stage: str) -> WithErrors[ClassifiedDocument]:
    """RunInference with `handler`; its dead letters become rejected errors of `stage`."""
    classified, dead = documents | "RunInference" >> RunInference(handler).with_exception_handling()
    # Beam leaves RunInference's main output untyped (Any); the handlers' PredictionT is what
    # it holds, and saying so lets the type check follow the graph past this step.
    classified.element_type = ClassifiedDocument
    errors = dead.failed_inferences | "InferenceErrors" >> beam.ParDo(InferenceErrorFn(stage))
    return WithErrors(classified, errors)


@beam.typehints.with_input_types(AnalysedDocument)
class ClassifyDocuments(beam.PTransform[PCollection[AnalysedDocument], WithErrors[ClassifiedDocument]]):
    """AnalysedDocuments -> ClassifiedDocuments, and the documents inference failed on."""

    def __init__(self, model_dir: str, backend: str = "torch", threads: Optional[int] = None,
                 max_batch_size: int = 2048):
        super().__init__()
        # Large batches matter on a CPU: Beam's adaptive batching starts small and, with
        # bundles of a few hundred mentions, stayed near 12 mentions a call (profiled). A batch
        # is a few dozen documents' mentions, so holding one costs little memory.
        self.handler = TargetSentimentModelHandler(
            model_dir, backend, threads, min_batch_size=max_batch_size // 2, max_batch_size=max_batch_size)

    def expand(self, analysed) -> WithErrors[ClassifiedDocument]:
        return run_with_dead_letters(analysed, self.handler, "classify")


@beam.typehints.with_input_types(ClassifiedDocument)
class ClassifyPairs(beam.PTransform[PCollection[ClassifiedDocument], WithErrors[ClassifiedDocument]]):
    """ClassifiedDocuments -> the same with a PairStance per selected pair, and the failures."""

    def __init__(self, model_dir: str, backend: str = "torch", threads: Optional[int] = None,
                 max_batch_size: int = 2048):
        super().__init__()
        self.handler = PairStanceModelHandler(
            model_dir, backend, threads, min_batch_size=max_batch_size // 2, max_batch_size=max_batch_size)

    def expand(self, classified) -> WithErrors[ClassifiedDocument]:
        return run_with_dead_letters(classified, self.handler, "stance")
