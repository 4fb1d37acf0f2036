"""A small, realistic stancebeam output in the exact table schemas, for the analysis tests.

The rows follow transforms/aggregate.py: gazetteer ids (country:ISO3, person:..., org:...), one
evidence item per sentence, stance from the arg-max of mean probabilities, and "article" holder
rows for sentences without a named speaker.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from stancebeam.transforms.schemas import NULL_PARTITION, PARTITION_COLUMN, TABLES, partition_value

RUN = {"run_id": "run-20240401-a", "model_id": "stance-minilm-v3"}

ARTICLE = ("(the article)", "article", None)  # holder for sentences with no named speaker

# actor_id -> (name, type, country)
ACTORS = {
    "person:olaf_scholz": ("Olaf Scholz", "person", "DEU"),
    "person:emmanuel_macron": ("Emmanuel Macron", "person", "FRA"),
    "country:DEU": ("Germany", "country", "DEU"),
    "country:FRA": ("France", "country", "FRA"),
    "org:european_commission": ("European Commission", "organisation", None),
}

# One entry per document: (doc_id, date, title, url, sentences, mentions). A mention is
# (actor_id, sentence_index, holder_id, p_negative, p_neutral, p_positive).
DOCS = [
    ("d01", dt.date(2024, 1, 8), "Scholz defends budget plan", "https://news.example/de/1",
     ["Olaf Scholz defended the budget in Berlin.", "Macron praised Scholz for his resolve.",
      "Germany faces a tight year."],
     [("person:olaf_scholz", 0, "article", 0.30, 0.50, 0.20), ("person:olaf_scholz", 1, "person:emmanuel_macron", 0.05, 0.15, 0.80),
      ("person:emmanuel_macron", 1, "article", 0.10, 0.40, 0.50), ("country:DEU", 2, "article", 0.50, 0.40, 0.10)]),
    ("d02", dt.date(2024, 1, 8), "Paris and Berlin at odds", "https://news.example/fr/2",
     ["France criticised Germany over energy subsidies.", "Scholz rejected the criticism."],
     [("country:FRA", 0, "article", 0.20, 0.60, 0.20), ("country:DEU", 0, "country:FRA", 0.70, 0.20, 0.10),
      ("person:olaf_scholz", 1, "article", 0.40, 0.40, 0.20)]),
    ("d03", dt.date(2024, 1, 22), 'Macron & Scholz: "No <deal>" yet', "https://news.example/eu/3",
     ["Macron attacked the European Commission over farm rules.",
      "The European Commission said talks continue.", "Scholz called Macron unreliable."],
     [("person:emmanuel_macron", 0, "article", 0.30, 0.50, 0.20), ("org:european_commission", 0, "person:emmanuel_macron", 0.80, 0.15, 0.05),
      ("org:european_commission", 1, "article", 0.10, 0.70, 0.20), ("person:emmanuel_macron", 2, "person:olaf_scholz", 0.75, 0.20, 0.05)]),
    ("d04", dt.date(2024, 2, 5), "Commission unveils green deal review", None,
     ["The European Commission presented its review.", "Germany welcomed the plan."],
     [("org:european_commission", 0, "article", 0.05, 0.90, 0.05), ("country:DEU", 1, "article", 0.05, 0.45, 0.50),
      ("org:european_commission", 1, "country:DEU", 0.10, 0.50, 0.40)]),
    ("d05", dt.date(2024, 2, 19), "Scholz under fire at home", "https://news.example/de/5",
     ["Critics blasted Olaf Scholz for the delays.", "Scholz promised results by summer."],
     [("person:olaf_scholz", 0, "article", 0.85, 0.10, 0.05), ("person:olaf_scholz", 1, "article", 0.20, 0.50, 0.30)]),
    ("d06", dt.date(2024, 3, 4), "Macron hails French growth", "https://news.example/fr/6",
     ["Macron hailed France's strong growth.", "France beat forecasts."],
     [("person:emmanuel_macron", 0, "article", 0.05, 0.20, 0.75), ("country:FRA", 0, "person:emmanuel_macron", 0.02, 0.08, 0.90),
      ("country:FRA", 1, "article", 0.05, 0.30, 0.65)]),
    ("d07", dt.date(2024, 3, 25), "Summit ends without agreement", "javascript:alert(1)",
     ["Scholz blamed France for the failed summit.", "Macron called Scholz a partner."],
     [("country:FRA", 0, "person:olaf_scholz", 0.80, 0.15, 0.05), ("person:olaf_scholz", 0, "article", 0.50, 0.40, 0.10),
      ("person:olaf_scholz", 1, "person:emmanuel_macron", 0.20, 0.50, 0.30), ("person:emmanuel_macron", 1, "article", 0.10, 0.60, 0.30)]),
    ("d08", None, "Undated wire: Germany and France sign pact", "https://wire.example/8",
     ["Germany and France signed a defence pact."],
     [("country:DEU", 0, "article", 0.05, 0.65, 0.30), ("country:FRA", 0, "article", 0.05, 0.45, 0.50)]),
]

ERROR = {**RUN, "error_id": "e3b0c44298fc", "origin": "data/wire.jsonl:17",
         "doc_id": None, "stage": "parse", "severity": "rejected",
         "reason": "empty body", "excerpt": '{"title": "", "body": ""}'}


def _f32(x: float) -> float:
    """The value as float32 stores it, so derived means match what readers compute."""
    return pa.scalar(x, pa.float32()).as_py()


def _label(p_neg: float, p_neu: float, p_pos: float) -> str:
    return ["negative", "neutral", "positive"][max(range(3), key=[p_neg, p_neu, p_pos].__getitem__)]


def _mention_rows(doc_id: str, sentences: list[str], mentions: list[tuple]) -> list[dict]:
    rows = []
    for i, (actor_id, s_idx, holder, p_neg, p_neu, p_pos) in enumerate(mentions):
        name, kind, country = ACTORS[actor_id]
        sentence = sentences[s_idx]
        surface = next((w for w in [name, *name.split()[::-1]] if w in sentence), name)
        start = sum(len(s) + 1 for s in sentences[:s_idx]) + max(sentence.find(surface), 0)
        rows.append({**RUN, "doc_id": doc_id, "mention_id": f"{doc_id}:{i}",
                     "actor_id": actor_id, "actor_name": name, "actor_type": kind,
                     "actor_country": country, "text": surface, "start": start,
                     "end": start + len(surface), "ner_label": "GAZETTEER", "sentence_index": s_idx,
                     "sentence": sentence, "holder_id": holder, "cue": None,
                     "label": _label(p_neg, p_neu, p_pos), "p_negative": p_neg,
                     "p_neutral": p_neu, "p_positive": p_pos, "score": _f32(p_pos - p_neg)})
    return rows


def _evidence(mentions: list[dict]) -> list[dict]:
    """The strongest mentions, one per sentence, at most three (as the pipeline keeps them)."""
    seen, out = set(), []
    for m in sorted(mentions, key=lambda m: -abs(m["score"])):
        if m["sentence_index"] not in seen and len(out) < 3:
            seen.add(m["sentence_index"])
            out.append({"sentence": m["sentence"], "sentence_index": m["sentence_index"],
                        "start": m["start"], "end": m["end"], "label": m["label"],
                        "score": m["score"]})
    return out


def _aggregate(mentions: list[dict]) -> dict:
    n = len(mentions)
    probs = {k: sum(m[k] for m in mentions) / n for k in ("p_negative", "p_neutral", "p_positive")}
    evidence = _evidence(mentions)
    return {**probs, "score": _f32(probs["p_positive"] - probs["p_negative"]),
            "label": _label(probs["p_negative"], probs["p_neutral"], probs["p_positive"]),
            "evidence_sentence": evidence[0]["sentence"], "evidence": evidence}


def _sentiment_rows(doc_id: str, mentions: list[dict]) -> list[dict]:
    by_actor = defaultdict(list)
    for m in mentions:
        by_actor[m["actor_id"]].append(m)
    rows = []
    for actor_id, ms in by_actor.items():
        name, kind, country = ACTORS[actor_id]
        rows.append({**RUN, "doc_id": doc_id, "actor_id": actor_id, "actor_name": name,
                     "actor_type": kind, "actor_country": country, "n_mentions": len(ms),
                     **_aggregate(ms)})
    return rows


def _stance_rows(doc_id: str, mentions: list[dict]) -> list[dict]:
    pairs = defaultdict(list)
    for m in mentions:
        if m["holder_id"] != m["actor_id"]:  # a holder's mentions of itself are not stance
            pairs[(m["holder_id"], m["actor_id"])].append(m)
    rows = []
    for (holder, target), ms in sorted(pairs.items()):
        agg = _aggregate(ms)
        stance = {"negative": "against", "neutral": "neutral", "positive": "favor"}[agg.pop("label")]
        # Named holders as the stance model's rows (holder offsets unknown here), else the article's.
        source = "article" if holder == "article" else "pair_model"
        agg["evidence"] = [{**e, "holder_start": None, "holder_end": None, "source": source,
                            "label": {"negative": "against", "neutral": "neutral",
                                      "positive": "favor"}[e["label"]]} for e in agg["evidence"]]
        holder_name, holder_type, _ = ACTORS.get(holder, ARTICLE)
        rows.append({**RUN, "doc_id": doc_id, "holder_id": holder, "holder_name": holder_name,
                     "holder_type": holder_type, "target_id": target,
                     "target_name": ACTORS[target][0], "target_type": ACTORS[target][1],
                     "n_statements": len({m["sentence_index"] for m in ms}), **agg,
                     "stance": stance, "source": source})
    return rows


def _tone_label(tone: float | None) -> str | None:
    if tone is None:
        return None
    return "positive" if tone > 0.1 else ("negative" if tone < -0.1 else "neutral")


def _document_row(doc, mentions: list[dict]) -> dict:
    doc_id, date, title, url, sentences, _ = doc
    n_chars = sum(len(s) + 1 for s in sentences) - 1
    scores = [m["score"] for m in mentions]
    tone = sum(scores) / len(scores) if scores else None
    return {**RUN, "doc_id": doc_id, "origin": f"data/news.jsonl:{int(doc_id[1:])}",
            "title": title, "date": date, "source": url.split("/")[2] if "//" in (url or "") else None,
            "url": url, "n_chars": n_chars, "n_chars_processed": n_chars,
            "n_sentences": len(sentences), "n_mentions": len(mentions),
            "n_actors": len({m["actor_id"] for m in mentions}),
            "n_statements": len({m["sentence_index"] for m in mentions if m["holder_id"] != "article"}),
            "tone": tone, "tone_label": _tone_label(tone)}


def sample_rows() -> dict[str, list[tuple[str, list[dict]]]]:
    """Per table, (partition value, rows of one part file) in write order."""
    out: dict[str, list[tuple[str, list[dict]]]] = {t: [] for t in TABLES}
    for doc in DOCS:
        doc_id, date, _, _, sentences, spec = doc
        part = partition_value(date.isoformat() if date else None)
        mentions = _mention_rows(doc_id, sentences, spec)
        out["documents"].append((part, [_document_row(doc, mentions)]))
        out["mentions"].append((part, mentions))
        out["actor_sentiment"].append((part, _sentiment_rows(doc_id, mentions)))
        stance = _stance_rows(doc_id, mentions)
        if stance:
            out["actor_stance"].append((part, stance))
    out["errors"].append((NULL_PARTITION, [ERROR]))
    return out


def write_sample_output(root: Path) -> Path:
    """Write the sample tables under root as Hive-partitioned, zstd-compressed Parquet parts."""
    root = Path(root)
    for table, parts in sample_rows().items():
        counters: dict[str, int] = defaultdict(int)
        for part, rows in parts:
            folder = root / table / f"published_date={part}"
            folder.mkdir(parents=True, exist_ok=True)
            # One part file per document, as a pipeline's parallel writers would leave them.
            path = folder / f"part-{counters[part]:05d}.parquet"
            counters[part] += 1
            pq.write_table(pa.Table.from_pylist(rows, schema=TABLES[table]), path,
                           compression="zstd")
    return root


# Typed Hive partitioning: pyarrow's inferred (dictionary) partitioning cannot unify a string
# partition with __HIVE_DEFAULT_PARTITION__ when pandas converts it, and untyped gives strings.
DATE_PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive")


def read_frame(root: Path, table: str) -> pd.DataFrame:
    """One table through pyarrow.dataset, independently of DuckDB, as pandas (dates as objects)."""
    dataset = ds.dataset(Path(root) / table, format="parquet", partitioning=DATE_PARTITIONING)
    frame = dataset.to_table().to_pandas()
    frame[PARTITION_COLUMN] = frame[PARTITION_COLUMN].astype(object).where(
        frame[PARTITION_COLUMN].notna(), None)
    return frame
