"""Pair selection for the stance model, its directed reading, and quotations' speakers."""
import pytest

from stancebeam.transforms.pairs import MentionSpan, directed, pair_example, sentence_pairs
from stancebeam.transforms.speakers import ARTICLE, continue_quotes


def spans(*items):
    return [MentionSpan(actor, start, start + 3) for actor, start in items]


def test_each_pair_of_distinct_actors_once_earlier_first():
    mentions = spans(("a", 0), ("b", 10), ("a", 20), ("c", 30))
    pairs, dropped = sentence_pairs(mentions, None, cap=10)
    assert dropped == 0
    assert len(pairs) == 3
    assert {frozenset((mentions[i].actor_id, mentions[j].actor_id)) for i, j in pairs} == \
        {frozenset("ab"), frozenset("ac"), frozenset("bc")}
    for i, j in pairs:
        assert mentions[i].start < mentions[j].start
    # a and c are represented by their nearest mentions (positions 20 and 30)
    ac = next((i, j) for i, j in pairs if {mentions[i].actor_id, mentions[j].actor_id} == {"a", "c"})
    assert (mentions[ac[0]].start, mentions[ac[1]].start) == (20, 30)


def test_cap_keeps_the_speakers_pairs_then_the_closest():
    mentions = spans(*[(f"x{k}", k * 10) for k in range(30)])
    pairs, dropped = sentence_pairs(mentions, "x29", cap=6)
    assert len(pairs) == 6 and dropped == 30 * 29 // 2 - 6
    involved = [{mentions[i].actor_id, mentions[j].actor_id} for i, j in pairs]
    # The speaker's nearest partners first (x28 ... ), then nothing else: 29 speaker pairs > cap.
    assert all("x29" in pair for pair in involved)
    assert {"x28", "x29"} in involved
    pairs, _ = sentence_pairs(mentions, None, cap=3)
    gaps = [mentions[j].start - mentions[i].end for i, j in pairs]
    assert gaps == sorted(gaps) and max(gaps) == 7


def test_one_actor_gives_no_pair():
    assert sentence_pairs(spans(("a", 0), ("a", 10)), "a", cap=5) == ([], 0)


def test_directed_reads_both_directions():
    forward, backward = directed([0.1, 0.5, 0.05, 0.3, 0.05])
    assert forward == pytest.approx((0.3, 0.2, 0.5))
    assert backward == pytest.approx((0.05, 0.9, 0.05))


def test_pair_example_is_sentence_relative():
    ex = pair_example("Kim praised Xi.", 100, MentionSpan("k", 100, 103), MentionSpan("x", 112, 114))
    assert ex.sentence[ex.e1_start:ex.e1_end] == "Kim" and ex.sentence[ex.e2_start:ex.e2_end] == "Xi"


def test_a_quotation_over_several_sentences_takes_its_speaker():
    texts = ["“We will never accept it.", "The US must pay,” he said.", "“China is our friend.”",
             "The weather was fine.", "“Another quote,” the paper wrote."]
    holders = [ARTICLE, "kim", ARTICLE, ARTICLE, ARTICLE]
    assert continue_quotes(texts, holders) == ["kim", "kim", "kim", ARTICLE, ARTICLE]


def test_straight_quotes_and_unquoted_text_are_left_alone():
    texts = ['"It is over," Wang said.', "Markets fell.", '"We disagree."']
    assert continue_quotes(texts, ["wang", ARTICLE, ARTICLE]) == ["wang", ARTICLE, ARTICLE]


def analysed_with(sentences: list[list[str]], holder="article"):
    """An AnalysedDocument whose k-th sentence mentions the given actor names, in order."""
    from stancebeam.transforms.elements import AnalysedDocument, Document, Mention
    from stancebeam.transforms.gazetteer import Actor

    mentions, offset = [], 0
    for k, names in enumerate(sentences):
        sentence = " and ".join(names) + " met."
        pos = 0
        for name in names:
            start = sentence.index(name, pos)
            pos = start + len(name)
            mentions.append(Mention("d", len(mentions), Actor(f"x:{name}", name, "person"), name,
                                    offset + start, offset + pos, "PERSON", k, sentence, offset, holder))
        offset += len(sentence) + 1
    return AnalysedDocument(Document("d", "d.txt", "", "", None), offset, len(sentences), 0,
                            tuple(mentions), {})


def test_caps_bound_the_pairs_of_a_crowded_sentence_and_a_long_document():
    import time

    from stancebeam.transforms.pairs import document_pairs

    crowded = analysed_with([[f"A{i:02d}" for i in range(30)]])
    pairs, dropped = document_pairs(crowded, max_per_sentence=6, max_per_document=2000)
    assert len(pairs) == 6 and dropped == 435 - 6
    started = time.time()
    long = analysed_with([["Ann", "Bob", "Cy"]] * 2000)
    pairs, dropped = document_pairs(long, max_per_sentence=6, max_per_document=2000)
    assert len(pairs) == 2000 and dropped == 3 * 2000 - 2000
    assert pairs[0].first.sentence_index == 0 and pairs[-1].first.sentence_index == 666
    assert time.time() - started < 30  # no quadratic blow-up over the document


def test_select_pairs_warns_for_a_capped_document():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from stancebeam.transforms.pairs import SelectPairs

    documents = [analysed_with([[f"A{i:02d}" for i in range(30)]]), analysed_with([["Ann", "Bob"]])]
    with TestPipeline() as p:
        out = p | beam.Create(documents) | SelectPairs(max_per_sentence=6, max_per_document=100)
        assert_that(out.main | beam.Map(lambda a: len(a.pairs)), equal_to([6, 1]), label="pairs")
        assert_that(out.errors | beam.Map(lambda e: (e.stage, e.severity, e.reason.split(" ")[0])),
                    equal_to([("stance", "warning", "429")]), label="warnings")
