"""Classifies every actor mention in its sentence with RunInference and the project's model handler."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from stancebeam.classifier.encoding import TargetExample
from stancebeam.transforms.actors import AnalysedDocument, Mention
from stancebeam.transforms.memory import release_free_memory
from stancebeam.transforms.records import ErrorRecord, excerpt

ERRORS = "errors"
log = logging.getLogger(__name__)


def mention_count(analysed: AnalysedDocument) -> int:
    """A document's weight in a batch: its mentions (at least 1, so empty documents move on)."""
    return max(1, len(analysed.mentions))


class TargetSentimentModelHandler(ModelHandler[AnalysedDocument, PredictionResult, Any]):
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

    def run_inference(self, batch: Sequence[AnalysedDocument], model,
                      inference_args=None) -> Iterable[PredictionResult]:
        try:
            probs = self._predict(batch, model)
        except Exception:  # find the document that fails; the others still get classified
            return [self._predict_alone(analysed, model) for analysed in batch]
        finally:
            release_free_memory()
        return [PredictionResult(analysed, p, model_id=model.model_id) for analysed, p in zip(batch, probs)]

    @staticmethod
    def _predict(batch: Sequence[AnalysedDocument], model) -> list[np.ndarray]:
        examples = [example for analysed in batch for _, example in to_examples(analysed)]
        probs = model.predict_proba(examples) if examples else np.zeros((0, 3), dtype=np.float32)
        bounds = np.cumsum([len(analysed.mentions) for analysed in batch])[:-1]
        return np.split(probs, bounds)

    def _predict_alone(self, analysed: AnalysedDocument, model) -> PredictionResult:
        try:
            return PredictionResult(analysed, self._predict([analysed], model)[0], model_id=model.model_id)
        except Exception as e:
            log.warning("inference failed for %s: %s", analysed.document.origin, e)
            return PredictionResult(analysed, f"inference failed: {type(e).__name__}: {e}",
                                    model_id=model.model_id)

    def get_metrics_namespace(self) -> str:
        return "stancebeam_inference"


@dataclasses.dataclass(frozen=True)
class ClassifiedMention:
    mention: Mention
    probs: tuple[float, float, float]  # negative, neutral, positive
    model_id: str

    @property
    def oriented(self) -> tuple[float, float, float]:
        """The probabilities the tables count: the classifier's, unless the wording is explicit.

        - criticised / praised (the object of a criticism or of praise, "took a shot at the US")
          count as certainly negative / positive: on NewsMTSC's training data these cues agree
          with the gold label for 126 of 128 and 27 of 28 targets (benchmarks/cue_precision.py).
        - protected (a victim of a criticised act, "denounced forces attempting to hold China
          back") counts with negative and positive swapped: the text sides with it. NewsMTSC's
          annotators read such targets as portrayed under attack (10 negative, 8 neutral of 18
          training targets) and the classifier follows them; we depart from that on purpose so
          that sentiment and stance agree on whom a statement defends.
        """
        if self.mention.cue == "protected":
            neg, neu, pos = self.probs
            return pos, neu, neg
        return _CUE_PROBS.get(self.mention.cue, self.probs)

    @property
    def score(self) -> float:
        """p(positive) - p(negative) of the oriented probabilities."""
        return self.oriented[2] - self.oriented[0]


_CUE_PROBS = {"criticised": (1.0, 0.0, 0.0), "praised": (0.0, 0.0, 1.0)}


def to_examples(analysed: AnalysedDocument):
    """(mention, TargetExample) pairs: the target's offsets relative to its sentence."""
    for m in analysed.mentions:
        yield m, TargetExample(m.sentence, m.start - m.sentence_start, m.end - m.sentence_start)


@dataclasses.dataclass(frozen=True)
class ClassifiedDocument:
    analysed: AnalysedDocument
    classified: tuple[ClassifiedMention, ...]  # in mention order
    failure: Optional[str] = None  # why classification failed: the document is kept, unclassified


def to_classified(result: PredictionResult) -> ClassifiedDocument:
    analysed = result.example
    if isinstance(result.inference, str):
        return ClassifiedDocument(analysed, (), result.inference)
    model_id = result.model_id or ""
    return ClassifiedDocument(analysed, tuple(
        ClassifiedMention(m, tuple(float(x) for x in p), model_id)
        for m, p in zip(analysed.mentions, np.asarray(result.inference, dtype=np.float32))))


def inference_errors(failed):
    """A RunInference batch that failed outside the model call -> a rejection per document."""
    batch, exception = failed
    for analysed in batch:
        document = getattr(analysed, "document", None)
        yield ErrorRecord(
            getattr(document, "origin", "unknown"), "classify", f"inference failed: {exception}",
            excerpt=excerpt(getattr(document, "title", "") or getattr(document, "text", analysed)),
            doc_id=getattr(document, "doc_id", None), date=getattr(document, "date", None))


class ClassifyDocuments(beam.PTransform):
    """AnalysedDocuments -> ClassifiedDocuments (main) and inference failures (`errors`)."""

    def __init__(self, model_dir: str, backend: str = "torch", threads: Optional[int] = None,
                 max_batch_size: int = 2048):
        super().__init__()
        # Large batches matter on a CPU: Beam's adaptive batching starts small and, with
        # bundles of a few hundred mentions, stayed near 12 mentions a call (profiled). A batch
        # is a few dozen documents' mentions, so holding one costs little memory.
        self.handler = TargetSentimentModelHandler(
            model_dir, backend, threads, min_batch_size=max_batch_size // 2, max_batch_size=max_batch_size)

    def expand(self, analysed):
        main, dead = analysed | "RunInference" >> RunInference(self.handler).with_exception_handling()
        classified = main | "ToClassified" >> beam.Map(to_classified)
        errors = dead.failed_inferences | "InferenceErrors" >> beam.FlatMap(inference_errors)
        return {"classified": classified, ERRORS: errors}
