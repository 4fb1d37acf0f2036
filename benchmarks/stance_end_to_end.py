"""Directed stance end to end: each labelled sentence becomes a document through `stancebeam run`.

    python -m benchmarks.stance_end_to_end --data ../shared/data/directed/valid.jsonl \
        --out runs/e2e-valid [--config FILE] [--limit N] [-- extra run flags]

The gold pair is looked up in the tables the pipeline wrote: an entity counts as found when one of
the actor mentions of its document overlaps its character span (the largest overlap wins), and
the predicted class is read from the `actor_stance` rows between the two found actors (rows whose
holder is the article are left out: they are not between the two). Of the two directions, the
row with the larger |score| that is not neutral decides: holder e1 favor -> e1_favors_e2, and so
on; no such row, or an entity not found, predicts `none`. Prints a report and, last, its JSON.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import duckdb

from stancebeam.classifier.metrics import classification_report
from stancebeam.classifier.tasks import STANCE_LABELS

# (holder is e1, stance) -> class index in STANCE_LABELS.
CLASS_OF = {(True, "favor"): 1, (False, "favor"): 2, (True, "against"): 3, (False, "against"): 4}


def write_documents(records: list[dict], path: Path) -> Path:
    """One JSONL document per labelled sentence: no headline, so offsets are the sentence's."""
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({"id": r["id"], "date": "2020-01-01", "title": "",
                                "text": r["sentence"]}) + "\n")
    return path


def run_pipeline(documents: Path, output: Path, extra: list[str]) -> None:
    cmd = [sys.executable, "-m", "stancebeam.pipeline.cli", "run", "--input", str(documents),
           "--output", str(output), "--run-id", "stance-e2e", *extra]
    subprocess.run(cmd, check=True)


def best_overlap(mentions: list[tuple], start: int, end: int) -> str | None:
    """The actor id of the mention that overlaps [start, end) most, or None."""
    best, best_overlap_chars = None, 0
    for actor_id, m_start, m_end in mentions:
        overlap = min(end, m_end) - max(start, m_start)
        if overlap > best_overlap_chars:
            best, best_overlap_chars = actor_id, overlap
    return best


def predict(e1: str | None, e2: str | None, stance: dict) -> int:
    if not e1 or not e2 or e1 == e2:
        return 0
    candidates = []
    for holder_is_e1, (holder, target) in ((True, (e1, e2)), (False, (e2, e1))):
        row = stance.get((holder, target))
        if row and row[0] in ("favor", "against"):
            candidates.append((abs(row[1]), CLASS_OF[(holder_is_e1, row[0])]))
    return max(candidates)[1] if candidates else 0


def score(records: list[dict], output: Path) -> dict:
    con = duckdb.connect()
    mentions: dict[str, list] = {}
    for doc_id, actor_id, start, end in con.execute(
            f"SELECT doc_id, actor_id, start, \"end\" FROM read_parquet('{output}/mentions/**/*.parquet',"
            " hive_partitioning=true)").fetchall():
        mentions.setdefault(doc_id, []).append((actor_id, start, end))
    stance: dict[str, dict] = {}
    for doc_id, holder, target, label, value in con.execute(
            f"SELECT doc_id, holder_id, target_id, stance, score FROM read_parquet("
            f"'{output}/actor_stance/**/*.parquet', hive_partitioning=true) "
            "WHERE holder_id <> 'article'").fetchall():
        stance.setdefault(doc_id, {})[(holder, target)] = (label, value)
    gold, predicted, found_both, found_one = [], [], 0, 0
    for r in records:
        doc_mentions = mentions.get(r["id"], [])
        e1 = best_overlap(doc_mentions, r["e1"]["from"], r["e1"]["to"])
        e2 = best_overlap(doc_mentions, r["e2"]["from"], r["e2"]["to"])
        found_both += bool(e1 and e2 and e1 != e2)
        found_one += bool(e1) + bool(e2)
        gold.append(int(r["label"]))
        predicted.append(predict(e1, e2, stance.get(r["id"], {})))
    report = classification_report(gold, predicted, STANCE_LABELS)
    n = len(records)
    report.update({"both_entities_found": round(found_both / n, 4) if n else 0.0,
                   "entities_found": round(found_one / (2 * n), 4) if n else 0.0})
    return report


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/directed/valid.jsonl")
    parser.add_argument("--out", required=True, help="a working folder (documents and tables)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--score-only", action="store_true", help="score an existing output")
    args = parser.parse_args(argv)
    with open(args.data, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()][:args.limit]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.score_only:
        run_pipeline(write_documents(records, out / "documents.jsonl"), out / "tables", extra)
    report = score(records, out / "tables")
    print(f"{report['n']} sentences  macro-F1 {report['f1_macro']:.4f}  accuracy "
          f"{report['accuracy']:.4f}  both entities found {report['both_entities_found']:.1%}")
    for name, row in zip(report["labels"], report["confusion_matrix"]):
        print(f"  gold {name:<13} -> predicted {row}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
