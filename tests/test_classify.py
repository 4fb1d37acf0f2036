"""The model handler: whole documents per batch, each document's probabilities kept apart."""
import numpy as np
import pytest

from stancebeam.transforms.actors import AnalysedDocument, Mention
from stancebeam.transforms.classify import ClassifiedDocument, TargetSentimentModelHandler, to_classified
from stancebeam.transforms.gazetteer import Actor
from stancebeam.transforms.records import Document

CHINA = Actor("country:CHN", "China", "country", "CHN")
USA = Actor("country:USA", "United States", "country", "USA")


def analysed(doc_id, sentences):
    """A document with one mention of the first word's actor per sentence."""
    mentions = []
    for i, sentence in enumerate(sentences):
        actor, name = (CHINA, "China") if sentence.startswith("China") else (USA, "The US")
        mentions.append(Mention(doc_id, i, actor, name, 0, len(name), "GPE", i, sentence, 0, "article"))
    return AnalysedDocument(Document(doc_id, f"{doc_id}.txt", "", " ".join(sentences), None),
                            100, len(sentences), 0, tuple(mentions), {})


DOCS = [analysed("a", ["China praised the deal.", "The US condemned the attack."]),
        analysed("b", []),
        analysed("c", ["China was blamed for the outage.", "The US said little.", "China wins."])]


@pytest.fixture(scope="module")
def handler_and_model(tiny_model_dir):
    handler = TargetSentimentModelHandler(str(tiny_model_dir))
    return handler, handler.load_model()


def test_a_batch_of_documents_gives_each_document_its_own_probabilities(handler_and_model):
    handler, model = handler_and_model
    results = list(handler.run_inference(DOCS, model))
    assert [r.example.document.doc_id for r in results] == ["a", "b", "c"]
    assert [len(r.inference) for r in results] == [2, 0, 3]
    for doc, result in zip(DOCS, results):  # batching does not change a document's result
        alone = list(handler.run_inference([doc], model))[0]
        np.testing.assert_allclose(result.inference, alone.inference, atol=1e-5)
    classified = to_classified(results[2])
    assert [c.mention.index for c in classified.classified] == [0, 1, 2] and classified.failure is None
    assert all(abs(sum(c.probs) - 1) < 1e-4 for c in classified.classified)


class FailsOnOutage:
    """The real model, except that one sentence makes it raise."""

    def __init__(self, model):
        self.model = model
        self.model_id = model.model_id

    def predict_proba(self, examples):
        if any("outage" in e.sentence for e in examples):
            raise RuntimeError("boom")
        return self.model.predict_proba(examples)


def test_a_failing_document_does_not_take_its_batch_down(handler_and_model):
    handler, model = handler_and_model
    results = [to_classified(r) for r in handler.run_inference(DOCS, FailsOnOutage(model))]
    assert isinstance(results[0], ClassifiedDocument) and len(results[0].classified) == 2
    assert results[1].failure is None and results[1].classified == ()
    assert results[2].classified == () and "boom" in results[2].failure


def test_batches_are_weighted_by_mentions():
    handler = TargetSentimentModelHandler("unused", min_batch_size=128, max_batch_size=256)
    kwargs = handler.batch_elements_kwargs()
    assert kwargs["element_size_fn"](DOCS[2]) == 3 and kwargs["element_size_fn"](DOCS[1]) == 1
    assert (kwargs["min_batch_size"], kwargs["max_batch_size"]) == (128, 256)
