"""Unlabelled actor pairs from a news corpus, chosen exactly as the pipeline chooses them.

    python scripts/news_pairs.py --news ../shared/data/news/wikinews.jsonl \
        --out runs/distill/news_pairs.jsonl --limit 10000 --seed 13

Each article goes through the pipeline's actor extraction (spaCy and the gazetteer) and pair rule
(`transforms/pairs.py`, the default caps); every kept pair becomes one record in the JSONL format
of the directed stance data, without a label: `sentence`, `e1`, `e2` (sentence offsets, e1 the
earlier mention) and `doc_id`. Teachers then label them (`stancebeam distill-label`) for
distillation. `--limit` keeps a seeded sample of that many pairs. Only the article bodies are
read (the pipeline puts the headline first, `transforms/parse.py`): that is how the committed
labels were built. The texts are Wikinews (CC BY 2.5): whatever is derived from them keeps
`data/NOTICE-wikinews.md` beside it.
"""
from __future__ import annotations

import argparse
import json
import random
import sys

from stancebeam.pipeline.config import load_config
from stancebeam.transforms.actors import ActorExtractor
from stancebeam.transforms.elements import Document
from stancebeam.transforms.pairs import document_pairs


def read_news(path: str):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                yield Document(doc_id=r["id"], origin=path, title=r.get("title", ""),
                               text=r["text"], date=r.get("date"), n_chars=len(r["text"]))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--news", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default=None, help="a config whose keys replace the defaults")
    parser.add_argument("--limit", type=int, default=None, help="keep a seeded sample of N pairs")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    nlp, stance = config["nlp"], config["stance"]
    extractor = ActorExtractor(nlp["spacy_model"], nlp["gazetteer"], int(nlp["max_doc_chars"]))
    records = []
    for _, analysed, _ in extractor.analyse(list(read_news(args.news))):
        pairs, _ = document_pairs(analysed, int(stance["max_pairs_per_sentence"]),
                                  int(stance["max_pairs_per_document"]))
        for pair in pairs:
            a, b, base = pair.first, pair.second, pair.first.sentence_start
            records.append({
                "doc_id": analysed.document.doc_id, "sentence": a.sentence,
                "e1": {"text": a.text, "from": a.start - base, "to": a.end - base},
                "e2": {"text": b.text, "from": b.start - base, "to": b.end - base}})
    print(f"{len(records)} pairs", file=sys.stderr)
    if args.limit and len(records) > args.limit:
        records = random.Random(args.seed).sample(records, args.limit)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
