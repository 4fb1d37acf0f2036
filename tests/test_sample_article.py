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


def test_kim_favours_china_and_is_against_the_united_states(output):
    assert stance(output, "person:kim_jong_un", "country:CHN")[0] == "favor"
    assert stance(output, "person:kim_jong_un", "country:USA")[0] == "against"


def test_china_sentiment_is_positive_with_evidence(output):
    label, score, evidence = duckdb.connect().execute(
        f"select label, score, evidence_sentence from read_parquet('{output}/actor_sentiment/**/*.parquet') "
        "where actor_id = 'country:CHN'").fetchone()
    assert label == "positive" and score > 0
    assert "China" in evidence or "Chinese" in evidence
