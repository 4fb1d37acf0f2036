"""The same rows in every table as the reference dump (tests/golden.py).

The dump was first made before issue 16's refactor, to show it changed no row; it was remade
when the stance model came in (actor_stance rows from pairs, quotations keeping their speaker)
and when the pair model's cues changed (`protected` off, `wronged` on), and now pins the tables
against unintended change. Regenerate with `python -m tests.golden` only for an intended change,
and say so in the commit.
"""
from tests.golden import differences, read_golden, run_golden


def test_every_table_matches_the_reference_dump(tmp_path, tiny_model_dir, tiny_stance_model_dir):
    got, want = run_golden(tmp_path, tiny_model_dir, tiny_stance_model_dir), read_golden()
    assert {name: len(t["rows"]) for name, t in want.items()} == {
        "documents": 10, "mentions": 169, "actor_sentiment": 79, "actor_stance": 240, "errors": 13}
    assert differences(got, want) == []
