"""The reference article through the whole pipeline with the shipped default model."""
import duckdb
import pytest

from stancebeam.pipeline.runner import run
from tests.conftest import SAMPLE_ARTICLE


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "out"
    assert run([f"--input={SAMPLE_ARTICLE}", f"--output={out}"]) == 0
    return out


def stance(out, holder, target):
    rows = duckdb.connect().execute(
        f"select stance, score from read_parquet('{out}/actor_stance/**/*.parquet') "
        "where holder_id = $h and target_id = $t", {"h": holder, "t": target}).fetchall()
    assert len(rows) == 1, (holder, target, rows)
    return rows[0]


@pytest.mark.parametrize("holder,target,expected", [
    ("person:kim_jong_un", "country:CHN", "favor"),
    ("person:kim_jong_un", "country:USA", "against"),
    # "hostile forces' cruel slander and all-round pressure upon the Chinese Communist Party":
    # the model alone reads the victim as Kim's target (-0.20 with v3); the `wronged` cue on
    # victims of acts named as wrong (transforms/speakers.py) sides Kim with the party.
    ("person:kim_jong_un", "party:ccp", "favor"),
    ("person:wang_wenbin", "country:PRK", "favor"),
])
def test_the_speakers_stances_of_the_reference_article(output, holder, target, expected):
    assert stance(output, holder, target)[0] == expected


def test_every_stance_row_says_where_it_comes_from(output):
    sources = dict(duckdb.connect().execute(
        f"select source, count(*) from read_parquet('{output}/actor_stance/**/*.parquet') "
        "group by source").fetchall())
    assert set(sources) <= {"pair_model", "speaker_sentiment", "article"}
    assert sources.get("pair_model") and sources.get("article")


def test_china_sentiment_is_positive_with_evidence(output):
    label, score, evidence = duckdb.connect().execute(
        f"select label, score, evidence_sentence from read_parquet('{output}/actor_sentiment/**/*.parquet') "
        "where actor_id = 'country:CHN'").fetchone()
    assert label == "positive" and score > 0
    assert "China" in evidence or "Chinese" in evidence
