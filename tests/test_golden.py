"""The same rows in every table as the reference dump made before issue 16's refactor (tests/golden.py)."""
from tests.golden import differences, read_golden, run_golden


def test_every_table_matches_the_reference_dump(tmp_path, tiny_model_dir):
    got, want = run_golden(tmp_path, tiny_model_dir), read_golden()
    assert {name: len(t["rows"]) for name, t in want.items()} == {
        "documents": 10, "mentions": 169, "actor_sentiment": 79, "actor_stance": 74, "errors": 13}
    assert differences(got, want) == []
