"""The model handler: whole documents per batch, each document's probabilities kept apart, failures dead-lettered."""
import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from stancebeam.transforms.classify import ClassifyDocuments, InferenceFailed, TargetSentimentModelHandler
from stancebeam.transforms.elements import AnalysedDocument, ClassifiedDocument, Document, Mention
from stancebeam.transforms.gazetteer import Actor

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
    assert all(isinstance(r, ClassifiedDocument) for r in results)
    assert [r.analysed.document.doc_id for r in results] == ["a", "b", "c"]
    assert [len(r.sentiments) for r in results] == [2, 0, 3]
    for doc, result in zip(DOCS, results):  # batching does not change a document's result
        alone = list(handler.run_inference([doc], model))[0]
        np.testing.assert_allclose([s.probs for s in result.sentiments],
                                   [s.probs for s in alone.sentiments], atol=1e-5)
    assert [s.mention.index for s in results[2].sentiments] == [0, 1, 2]
    assert all(abs(sum(s.probs) - 1) < 1e-4 and s.model_id == model.model_id for s in results[2].sentiments)


class FailsOn:
    """The real model, except that sentences with `word` make it raise."""

    def __init__(self, model, word="outage"):
        self.model = model
        self.model_id = model.model_id
        self.labels = model.labels
        self.word = word

    def predict_proba(self, examples):
        if any(self.word in e.sentence for e in examples):
            raise RuntimeError("boom")
        return self.model.predict_proba(examples)


class FailsOnlyInBatches(FailsOn):
    def predict_proba(self, examples):
        if len({e.sentence for e in examples}) > 3:
            raise MemoryError("batch too large")
        return self.model.predict_proba(examples)


def test_a_batch_that_fails_only_as_a_whole_is_classified_document_by_document(handler_and_model):
    handler, model = handler_and_model
    results = list(handler.run_inference(DOCS, FailsOnlyInBatches(model)))
    assert [len(r.sentiments) for r in results] == [2, 0, 3]


def test_a_document_that_fails_alone_fails_its_batch_and_is_named(handler_and_model):
    handler, model = handler_and_model
    with pytest.raises(InferenceFailed, match=r"1 of 3 documents .*c\.txt: RuntimeError: boom"):
        handler.run_inference(DOCS, FailsOn(model))


def test_num_bytes_is_the_sentence_characters_not_a_pickle(handler_and_model):
    handler, _ = handler_and_model
    assert handler.get_num_bytes(DOCS) == sum(len(m.sentence) for d in DOCS for m in d.mentions)


class FailingHandler(TargetSentimentModelHandler):
    """The product handler with a model that fails on one word (module level: it is pickled)."""

    def load_model(self):
        return FailsOn(super().load_model(), "blamed")


def test_inference_failures_reach_errors_with_their_origin_through_the_dead_letters(tiny_model_dir):
    classify = ClassifyDocuments(str(tiny_model_dir), max_batch_size=2)
    classify.handler = FailingHandler(str(tiny_model_dir), min_batch_size=1, max_batch_size=1)
    with TestPipeline() as p:
        out = p | beam.Create(DOCS).with_output_types(AnalysedDocument) | classify
        assert_that(out.main | "Ids" >> beam.Map(lambda c: c.analysed.document.doc_id), equal_to(["a", "b"]))
        assert_that(out.errors | beam.Map(lambda e: (e.origin, e.stage, e.severity, e.doc_id, "boom" in e.reason)),
                    equal_to([("c.txt", "classify", "rejected", "c", True)]), label="errors")


def test_batches_are_weighted_by_mentions():
    handler = TargetSentimentModelHandler("unused", min_batch_size=128, max_batch_size=256)
    kwargs = handler.batch_elements_kwargs()
    assert kwargs["element_size_fn"](DOCS[2]) == 3 and kwargs["element_size_fn"](DOCS[1]) == 1
    assert (kwargs["min_batch_size"], kwargs["max_batch_size"]) == (128, 256)


def test_the_stance_handler_answers_every_pair_of_a_document(tiny_stance_model_dir, tiny_model_dir):
    import dataclasses

    from stancebeam.transforms.classify import PairStanceModelHandler
    from stancebeam.transforms.elements import MentionPair

    sentence = "China praised the US."
    china = Mention("p", 0, CHINA, "China", 0, 5, "GPE", 0, sentence, 0, "article")
    usa = Mention("p", 1, USA, "US", 18, 20, "GPE", 0, sentence, 0, "article")
    base = AnalysedDocument(Document("p", "p.txt", "", sentence, None), 21, 1, 0, (china, usa), {})
    documents = [ClassifiedDocument(dataclasses.replace(base, pairs=(MentionPair(china, usa),)), ()),
                 ClassifiedDocument(base, ())]
    handler = PairStanceModelHandler(str(tiny_stance_model_dir))
    results = list(handler.run_inference(documents, handler.load_model()))
    assert [len(r.stances) for r in results] == [1, 0]
    assert len(results[0].stances[0].probs) == 5 and abs(sum(results[0].stances[0].probs) - 1) < 1e-5
    assert results[0].stances[0].model_id == "tiny-stance-test"
    # A sentiment model in the stance step is refused when it loads.
    with pytest.raises(ValueError, match="is a sentiment model, not a stance model"):
        PairStanceModelHandler(str(tiny_model_dir)).load_model()


def test_each_target_example_knows_the_other_actors_of_its_sentence():
    from stancebeam.transforms.classify import to_examples

    sentence = "China and the US met; China spoke."
    mentions = (Mention("d", 0, CHINA, "China", 10, 15, "GPE", 2, sentence, 10, "article"),
                Mention("d", 1, USA, "the US", 20, 26, "GPE", 2, sentence, 10, "article"),
                Mention("d", 2, CHINA, "China", 32, 37, "GPE", 2, sentence, 10, "article"),
                Mention("d", 3, USA, "US", 50, 52, "GPE", 3, "The US.", 46, "article"))
    doc = AnalysedDocument(Document("d", "d.txt", "", "x" * 60, None), 60, 4, 0, mentions, {})
    examples = [example for _, example in to_examples(doc)]
    assert [(e.start, e.end) for e in examples] == [(0, 5), (10, 16), (22, 27), (4, 6)]
    # Other actors only (not the target's other mentions), relative to the sentence.
    assert [e.others for e in examples] == [((10, 16),), ((0, 5), (22, 27)), ((10, 16),), ()]
