"""Aggregation: actor sentiment, holder-to-target stance, evidence and document tone."""
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from stancebeam.transforms.aggregate import AggregateDocuments, RunInfo, actor_sentiment_rows, stance_rows
from stancebeam.transforms.elements import (AnalysedDocument, ClassifiedDocument, Document, Mention, MentionPair,
                                             MentionSentiment, PairStance)
from stancebeam.transforms.gazetteer import Actor

RUN = RunInfo("run-1", "model-1")
KIM = Actor("person:kim_jong_un", "Kim Jong Un", "person", "PRK")
CHINA = Actor("country:CHN", "China", "country", "CHN")
USA = Actor("country:USA", "United States", "country", "USA")
DOC = Document("d1", "d1.txt", "Title", "text", "2021-07-01")


def mention(i, actor, sentence_index, holder, probs, sentence=None):
    m = Mention("d1", i, actor, actor.name, i * 10, i * 10 + 5, "GAZETTEER", sentence_index,
                sentence or f"sentence {chr(ord('a') + sentence_index)}", 0, holder)
    return MentionSentiment(m, probs, "model-1")


CLASSIFIED = [
    mention(0, KIM, 0, KIM.actor_id, (0.1, 0.8, 0.1)),
    mention(1, CHINA, 0, KIM.actor_id, (0.05, 0.15, 0.8), "Kim praised China."),
    mention(2, CHINA, 1, KIM.actor_id, (0.1, 0.3, 0.6)),
    mention(3, USA, 2, KIM.actor_id, (0.9, 0.05, 0.05), "Kim took a shot at the US."),
    mention(4, CHINA, 3, "article", (0.7, 0.2, 0.1)),
]
ANALYSED = AnalysedDocument(DOC, 100, 4, 3, (), {a.actor_id: a for a in (KIM, CHINA, USA)})


def test_actor_sentiment_means_label_and_evidence():
    rows = {r["actor_id"]: r for r in actor_sentiment_rows("d1", CLASSIFIED, RUN)}
    china = rows["country:CHN"]
    assert china["n_mentions"] == 3
    assert abs(china["p_positive"] - 0.5) < 1e-6 and abs(china["score"] - (0.5 - 0.85 / 3)) < 1e-6
    assert china["label"] == "positive"
    assert china["evidence_sentence"] == "Kim praised China."  # strongest |score|
    assert [e["sentence_index"] for e in china["evidence"]] == [0, 3, 1]


def test_stance_uses_only_the_holders_statements_and_skips_self():
    document = ClassifiedDocument(ANALYSED, tuple(CLASSIFIED))
    rows = {(r["holder_id"], r["target_id"]): r for r in stance_rows(document, CLASSIFIED, RUN)}
    assert rows[(KIM.actor_id, CHINA.actor_id)]["stance"] == "favor"
    assert rows[(KIM.actor_id, CHINA.actor_id)]["n_statements"] == 2
    assert rows[(KIM.actor_id, USA.actor_id)]["stance"] == "against"
    assert rows[("article", CHINA.actor_id)]["stance"] == "against"
    assert rows[("article", CHINA.actor_id)]["holder_name"] == "(the article)"
    assert (KIM.actor_id, KIM.actor_id) not in rows
    # No pair was classified: the speaker's rows come from the target's sentiment.
    assert {r["source"] for r in rows.values()} == {"speaker_sentiment", "article"}


def test_the_pair_model_answers_both_directions_and_replaces_the_fallback():
    kim, china = CLASSIFIED[0].mention, CLASSIFIED[1].mention
    # e1 (Kim) favors e2 (China) 0.7; e2 against e1 0.2.
    stance = PairStance(MentionPair(kim, china), (0.05, 0.7, 0.0, 0.05, 0.2), "stance-1")
    analysed = AnalysedDocument(DOC, 100, 4, 3, (), ANALYSED.actors, (MentionPair(kim, china),))
    document = ClassifiedDocument(analysed, tuple(CLASSIFIED), (stance,))
    run = RunInfo("run-1", "model-1", "stance-1")
    rows = {(r["holder_id"], r["target_id"]): r for r in stance_rows(document, CLASSIFIED, run)}
    kim_china = rows[(KIM.actor_id, CHINA.actor_id)]
    assert kim_china["source"] == "pair_model" and kim_china["model_id"] == "stance-1"
    # Sentence 0 from the pair model (favor 0.7), sentence 1 from sentiment (favor 0.6).
    assert kim_china["n_statements"] == 2 and abs(kim_china["p_positive"] - 0.65) < 1e-6
    china_kim = rows[(CHINA.actor_id, KIM.actor_id)]
    assert china_kim["source"] == "pair_model" and abs(china_kim["p_negative"] - 0.2) < 1e-6
    assert china_kim["stance"] == "neutral"
    top = kim_china["evidence"][0]
    assert (top["holder_start"], top["holder_end"]) == (kim.start, kim.end)
    assert (top["start"], top["end"], top["source"]) == (china.start, china.end, "pair_model")
    assert rows[(KIM.actor_id, USA.actor_id)]["source"] == "speaker_sentiment"


def test_aggregate_transform_emits_every_table_and_documents_without_mentions():
    empty = AnalysedDocument(Document("d2", "d2.txt", "", "text", None), 4, 1, 0, (), {})
    documents = [ClassifiedDocument(ANALYSED, tuple(CLASSIFIED)), ClassifiedDocument(empty, ())]
    with TestPipeline() as p:
        rows = p | beam.Create(documents) | AggregateDocuments(RUN)
        counts = rows | beam.Map(lambda r: (r.table, r.row["doc_id"])) | beam.combiners.Count.PerElement()
        assert_that(counts, equal_to([
            (("documents", "d1"), 1), (("documents", "d2"), 1),
            (("mentions", "d1"), 5), (("actor_sentiment", "d1"), 3), (("actor_stance", "d1"), 3)]))


def with_cue(c, cue):
    import dataclasses

    return MentionSentiment(dataclasses.replace(c.mention, cue=cue), c.probs, c.model_id)


def test_cues_override_the_classifier():
    from stancebeam.transforms.aggregate import mention_row

    victim = with_cue(mention(5, CHINA, 4, KIM.actor_id, (0.8, 0.1, 0.1)), "protected")
    criticised = with_cue(mention(6, USA, 5, KIM.actor_id, (0.2, 0.7, 0.1)), "criticised")
    document = ClassifiedDocument(ANALYSED, (victim, criticised))
    stance = {r["target_id"]: r for r in stance_rows(document, [victim, criticised], RUN)}
    assert stance[CHINA.actor_id]["stance"] == "favor" and abs(stance[CHINA.actor_id]["score"] - 0.7) < 1e-6
    assert stance[USA.actor_id]["stance"] == "against" and stance[USA.actor_id]["score"] == -1.0
    sentiment = {r["actor_id"]: r for r in actor_sentiment_rows("d1", [victim, criticised], RUN)}
    assert sentiment[CHINA.actor_id]["label"] == "positive"
    assert sentiment[USA.actor_id]["label"] == "negative"
    raw = mention_row(criticised, RUN)
    assert raw["label"] == "neutral" and raw["cue"] == "criticised"  # the classifier's own output


def test_a_stance_comes_from_the_statements_that_take_a_side():
    from stancebeam.transforms.stance import Statement, stance_label

    target = CLASSIFIED[1].mention
    praise = Statement(KIM.actor_id, target, (0.1, 0.3, 0.6), "pair_model")
    passing = Statement(KIM.actor_id, target, (0.2, 0.8, 0.0), "pair_model")
    assert stance_label([praise, passing, passing, passing]) == "favor"
    assert stance_label([passing, passing]) == "neutral"
    blame = Statement(KIM.actor_id, target, (0.9, 0.1, 0.0), "pair_model")
    assert stance_label([praise, blame]) == "against"


JUNK = "The United Nations criticised Iran."
UN = Actor("org:united_nations", "United Nations", "organisation")
IRAN = Actor("country:IRN", "Iran", "country", "IRN")


def test_repeated_sentences_count_once():
    from stancebeam.transforms.aggregate import document_row
    from stancebeam.transforms.repeats import sentence_key

    assert sentence_key("The UN  criticised Iran, 3 times!") == sentence_key("the UN criticised iran 12 times")
    assert sentence_key("The UN praised Iran.") != sentence_key("The UN criticised Iran.")
    # 50 copies of the junk sentence (two spellings), then one different sentence about Iran.
    classified = []
    for k in range(50):
        text = JUNK if k % 2 else JUNK.upper() + "  "
        classified += [mention(2 * k, UN, k, "article", (0.1, 0.8, 0.1), text),
                       mention(2 * k + 1, IRAN, k, UN.actor_id, (0.9, 0.05, 0.05), text)]
    classified.append(mention(100, IRAN, 50, "article", (0.05, 0.15, 0.8), "Iran welcomed the deal."))
    sentiment = {r["actor_id"]: r for r in actor_sentiment_rows("d1", classified, RUN)}
    iran = sentiment[IRAN.actor_id]
    assert iran["n_mentions"] == 2 and abs(iran["p_negative"] - 0.475) < 1e-6  # not 50 to 1
    assert len(iran["evidence"]) == 2 and sentiment[UN.actor_id]["n_mentions"] == 1
    analysed = AnalysedDocument(DOC, 2000, 51, 50, (), {a.actor_id: a for a in (UN, IRAN)})
    document = ClassifiedDocument(analysed, tuple(classified))
    stance = {(r["holder_id"], r["target_id"]): r for r in stance_rows(document, classified, RUN)}
    assert stance[(UN.actor_id, IRAN.actor_id)]["n_statements"] == 1
    assert len(stance[(UN.actor_id, IRAN.actor_id)]["evidence"]) == 1
    row = document_row(analysed, classified, RUN)
    assert row["n_mentions"] == 101  # every mention is still in the mentions table
    assert abs(row["tone"] - ((0.0 - 0.85 + 0.75) / 3)) < 1e-6  # three distinct mentions
