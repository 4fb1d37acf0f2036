"""`stancebeam split`: a fixed held-out fold of whole articles."""
import json

from stancebeam.classifier.splits import article_key, split_lines
from stancebeam.pipeline.cli import main as cli_main


def record(article: int, sentence: int, n_targets: int = 1) -> str:
    gid = f"allsides_{article}_{article % 7}_{sentence}_Someone_0_4"
    targets = [{"from": 0, "to": 4, "mention": "Some", "polarity": 4.0}] * n_targets
    return json.dumps({"primary_gid": gid, "sentence_normalized": f"Some text {article}.{sentence}",
                       "targets": targets}) + "\n"


def test_folds_hold_whole_articles_and_partition_the_data():
    lines = [record(a, s) for a in range(60) for s in range(3)]
    held_out = []
    for fold in range(5):
        rest, held = split_lines(lines, 5, fold)
        assert sorted(rest + held) == sorted(lines)
        assert not {article_key(json.loads(x)) for x in rest} & {article_key(json.loads(x)) for x in held}
        held_out += held
    assert sorted(held_out) == sorted(lines)  # every line is held out exactly once over the folds
    # The fold depends on the article, not on the order of the lines.
    assert split_lines(lines[::-1], 5, 2)[1] == split_lines(lines, 5, 2)[1][::-1]


def test_split_command_writes_both_files(tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(record(a, s, 2) for a in range(40) for s in range(2)))
    assert cli_main(["split", "--data", str(data), "--out", str(tmp_path / "split"), "--fold", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fit = (tmp_path / "split" / "fit.jsonl").read_text().splitlines()
    held = (tmp_path / "split" / "heldout.jsonl").read_text().splitlines()
    assert len(fit) + len(held) == 80 and len(held) == summary["heldout_lines"] > 0
    assert summary["heldout_targets"] == 2 * len(held)


def test_record_grouping_can_split_one_sentence_across_the_folds():
    lines = [json.dumps({"id": f"train-{n:05d}", "sentence": "One sentence, many pairs.",
                         "label": 0}) + "\n" for n in range(50)]
    rest, held = split_lines(lines, 5, 0, group="record")
    assert rest and held and sorted(rest + held) == sorted(lines)
    assert split_lines(lines, 5, 0)[1] in ([], lines)  # by article (sentence) it stays whole
