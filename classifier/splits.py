"""Deterministic k-fold splits of labelled JSONL, grouped by article.

Recipes and checkpoints are chosen on a held-out slice of train rather than on the small dev
sets (343 / 442 targets), whose noise a selection would fit. Sentences of one article share
wording and actors, so a fold holds whole articles: a sentence's neighbours never sit on the
other side of the split. The fold of an article is a hash of its key, so the split is the same
on every machine and does not depend on line order.

`--group record` splits record by record instead (the key is the record's `id`): the way the
directed-stance data set itself was split, so a sentence with several actor pairs can sit on both
sides. It answers "what do N more records of the same kind buy", not "how does the model do on
new sentences" (the grouped fold answers that).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def article_key(record: dict) -> str:
    """The article a NewsMTSC record comes from (`allsides_1000_401_25_...` -> `allsides_1000_401`);
    a directed-stance record (no gid) is its own group, keyed by its sentence."""
    gid = record.get("primary_gid")
    if gid:
        return "_".join(str(gid).split("_")[:3])
    return str(record.get("sentence", ""))


def record_key(record: dict) -> str:
    """The record itself (its `id`, else its whole JSON): for splits that mirror a per-record split."""
    return str(record.get("id") or json.dumps(record, sort_keys=True))


GROUPINGS = {"article": article_key, "record": record_key}


def fold_of(key: str, folds: int) -> int:
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % folds


def split_lines(lines, folds: int, fold: int, group: str = "article") -> tuple[list[str], list[str]]:
    """(rest, held_out): the JSONL lines outside and inside fold `fold` of `folds`."""
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{folds - 1}, got {fold}")
    key = GROUPINGS[group]
    rest, held = [], []
    for line in lines:
        if not line.strip():
            continue
        (held if fold_of(key(json.loads(line)), folds) == fold else rest).append(line)
    return rest, held


def count_targets(lines) -> int:
    return sum(len(json.loads(line).get("targets", [None])) for line in lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stancebeam split",
        description="write FOLD of FOLDS (whole articles, or records) to OUT/heldout.jsonl, the rest to OUT/fit.jsonl")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--group", choices=sorted(GROUPINGS), default="article",
                        help="what a fold holds whole: an article (default; a directed-stance "
                             "sentence) or a single record")
    args = parser.parse_args(argv)
    with open(args.data, encoding="utf-8") as f:
        rest, held = split_lines(f, args.folds, args.fold, args.group)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, lines in (("fit.jsonl", rest), ("heldout.jsonl", held)):
        (out / name).write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines),
                                encoding="utf-8")
    summary = {"data": args.data, "folds": args.folds, "fold": args.fold, "group": args.group,
               "fit_lines": len(rest), "heldout_lines": len(held),
               "fit_targets": count_targets(rest), "heldout_targets": count_targets(held)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
