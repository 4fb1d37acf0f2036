"""Classifies every actor mention in its sentence with RunInference and the project's model handler."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.pvalue import PCollection

from stancebeam.classifier.encoding import TargetExample
from stancebeam.transforms.elements import (AnalysedDocument, ClassifiedDocument, ErrorRecord, MentionSentiment,
                                             WithErrors, excerpt)
from stancebeam.transforms.memory import release_free_memory

if TYPE_CHECKING:
    from stancebeam.classifier.inference import TargetClassifier

log = logging.getLogger(__name__)


def mention_count(analysed: AnalysedDocument) -> int:
    """A document's weight in a batch: its mentions (at least 1, so empty documents move on)."""
    return max(1, len(analysed.mentions))


class InferenceFailed(Exception):
    """Some documents of a batch fail inference even alone; RunInference dead-letters the batch."""


class TargetSentimentModelHandler(ModelHandler[AnalysedDocument, ClassifiedDocument, "TargetClassifier"]):
    """Loads the target sentiment classifier once per worker process and classifies documents.

    RunInference batches whole documents, weighted by their mention count, so one batch is
    `min_batch_size`..`max_batch_size` mentions from several documents. Classifying documents
    rather than single mentions means nothing has to join mentions back to their document
    afterwards: a join is a shuffle, and the local runner keeps a shuffle's whole input in memory.
    `TargetClassifier.predict_encoded` sorts a batch's mentions by token length and pads per
    sub-batch (dynamic padding), so a large batch costs little padding. Over 200 articles
    (benchmarks/inference_batching.py), batches of at least 128 / 256 / 1,024 mentions padded
    1.17x / 1.11x / 1.04x the real tokens, and the forward pass took 1.17x / 1.09x / 1.03x the
    time of the whole corpus sorted at once.
    """

    def __init__(self, model_dir: str, backend: str = "torch", threads: Optional[int] = None,
                 min_batch_size: int = 8, max_batch_size: int = 256, inner_batch_size: int = 32):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         element_size_fn=mention_count)
        self.model_dir = model_dir
        self.backend = backend
        self.threads = threads
        self.inner_batch_size = inner_batch_size

    def load_model(self):
        from stancebeam.classifier.inference import TargetClassifier

        return TargetClassifier.from_dir(self.model_dir, backend=self.backend,
                                         batch_size=self.inner_batch_size, threads=self.threads)

    def run_inference(self, batch: Sequence[AnalysedDocument], model: TargetClassifier,
                      inference_args=None) -> Iterable[ClassifiedDocument]:
        """One ClassifiedDocument per document, or InferenceFailed for the whole batch.

        A failure must reach RunInference's dead letters, and those take whole batches: so a
        failed batch is retried document by document first, and only a document that fails
        alone fails the batch. A batch that fails as a whole but not document by document (its
        size, say) is classified; otherwise every document of the batch becomes a rejected
        `classify` error, and the reason names the ones that failed alone. Each input document
        is then either in `documents` or rejected in `errors`; keeping the healthy batch-mates
        would need a retry branch merged back into the main one, a Flatten that the local
        runner materialises (see tests/test_pipeline.py).
        """
        try:
            try:
                probs = self._predict(batch, model)
            except Exception as batch_error:
                probs = self._predict_one_by_one(batch, model, batch_error)
        finally:
            release_free_memory()
        return [classified_document(analysed, p, model.model_id) for analysed, p in zip(batch, probs)]

    @staticmethod
    def _predict(batch: Sequence[AnalysedDocument], model) -> list[np.ndarray]:
        examples = [example for analysed in batch for _, example in to_examples(analysed)]
        probs = model.predict_proba(examples) if examples else np.zeros((0, 3), dtype=np.float32)
        bounds = np.cumsum([len(analysed.mentions) for analysed in batch])[:-1]
        return np.split(probs, bounds)

    def _predict_one_by_one(self, batch: Sequence[AnalysedDocument], model,
                            batch_error: Exception) -> list[np.ndarray]:
        probs, failed = [], []
        for analysed in batch:
            try:
                probs.append(self._predict([analysed], model)[0])
            except Exception as e:
                log.warning("inference failed for %s: %s", analysed.document.origin, e)
                failed.append(f"{analysed.document.origin}: {type(e).__name__}: {e}")
        if failed:
            raise InferenceFailed(f"{len(failed)} of {len(batch)} documents in the batch failed alone: "
                                  + "; ".join(failed)) from batch_error
        return probs

    def get_num_bytes(self, batch: Sequence[AnalysedDocument]) -> int:
        """The characters of the sentences the model reads: Beam's default pickles the batch."""
        return sum(len(m.sentence) for analysed in batch for m in analysed.mentions)

    def get_metrics_namespace(self) -> str:
        return "stancebeam_inference"


def to_examples(analysed: AnalysedDocument):
    """(mention, TargetExample) pairs: the target's offsets relative to its sentence."""
    for m in analysed.mentions:
        yield m, TargetExample(m.sentence, m.start - m.sentence_start, m.end - m.sentence_start)


def classified_document(analysed: AnalysedDocument, probs: np.ndarray, model_id: str) -> ClassifiedDocument:
    return ClassifiedDocument(analysed, tuple(
        MentionSentiment(m, tuple(float(x) for x in p), model_id)
        for m, p in zip(analysed.mentions, np.asarray(probs, dtype=np.float32))))


@beam.typehints.with_input_types(tuple[list[AnalysedDocument], tuple])
@beam.typehints.with_output_types(ErrorRecord)
class InferenceErrorFn(beam.DoFn):
    """A dead-lettered batch (documents, (exception type, repr, traceback)) -> a rejection per document."""

    def process(self, failed):
        batch, (_, exc_repr, _) = failed
        reason = f"inference failed: {exc_repr}"  # InferenceFailed names the documents that failed alone
        for analysed in batch:
            d = analysed.document
            yield ErrorRecord(d.origin, "classify", reason, excerpt=excerpt(d.title or d.text),
                              doc_id=d.doc_id, date=d.date)


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
        classified, dead = analysed | "RunInference" >> RunInference(self.handler).with_exception_handling()
        # Beam leaves RunInference's main output untyped (Any); the handler's PredictionT is what
        # it holds, and saying so lets the type check follow the graph past this step.
        classified.element_type = ClassifiedDocument
        errors = dead.failed_inferences | "InferenceErrors" >> beam.ParDo(InferenceErrorFn())
        return WithErrors(classified, errors)
