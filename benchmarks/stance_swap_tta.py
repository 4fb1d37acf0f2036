"""Does reading each pair both ways help the stance model? (test-time swap averaging)

    python -m benchmarks.stance_swap_tta --model runs/stance --data ../shared/data/directed/valid.jsonl

Scores the model on the data as it is, then with each pair's probabilities averaged with those of
the same pair with e1 and e2 swapped (the swapped answer's directions mapped back). Averaging
costs a second forward pass per pair. Prints both reports' JSON on the last line.
"""
from __future__ import annotations

import argparse
import json


from stancebeam.classifier.inference import TargetClassifier, swapped_proba
from stancebeam.classifier.metrics import classification_report
from stancebeam.classifier.tasks import STANCE_LABELS, read_directed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default="../shared/data/directed/valid.jsonl")
    args = parser.parse_args(argv)
    examples, gold = read_directed(args.data)
    clf = TargetClassifier.from_dir(args.model)
    plain = clf.predict_proba(examples)
    swapped = swapped_proba(clf, examples)
    both = (plain + swapped) / 2
    out = {name: classification_report(gold, p.argmax(-1), STANCE_LABELS)
           for name, p in (("plain", plain), ("swap_averaged", both))}
    for name, report in out.items():
        print(f"{name:<14} macro-F1 {report['f1_macro']:.4f} accuracy {report['accuracy']:.4f} "
              + " ".join(f"{k} {v['f1']:.3f}" for k, v in report["per_class"].items()))
    agree = float((plain.argmax(-1) == swapped.argmax(-1)).mean())
    print(json.dumps({"agreement_plain_vs_swapped": round(agree, 4), **out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
