"""The output tables' explicit Arrow schemas, in one place.

Every table is written under `OUTPUT/<table>/published_date=<YYYY-MM-DD>/part-*.parquet`; the
partition value is not repeated inside the files (readers add it from the path with Hive
partitioning). Documents without a date go to `published_date=__HIVE_DEFAULT_PARTITION__`, the
Hive convention that pyarrow, DuckDB and Spark read back as NULL.
"""
from __future__ import annotations

import pyarrow as pa

PARTITION_COLUMN = "published_date"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

_PROBS = [
    pa.field("p_negative", pa.float32(), nullable=False),
    pa.field("p_neutral", pa.float32(), nullable=False),
    pa.field("p_positive", pa.float32(), nullable=False),
]

EVIDENCE = pa.struct([
    pa.field("sentence", pa.string()),
    pa.field("sentence_index", pa.int32()),
    pa.field("start", pa.int32()),  # the mention's document character offsets
    pa.field("end", pa.int32()),
    pa.field("label", pa.string()),
    pa.field("score", pa.float32()),
])

# actor_stance's evidence: the holder's mention too (null when the holder is not named in the
# sentence: the article, or a speaker from an earlier sentence), and which kind of statement.
STANCE_EVIDENCE = pa.struct([
    pa.field("sentence", pa.string()),
    pa.field("sentence_index", pa.int32()),
    pa.field("start", pa.int32()),  # the target's mention, document character offsets
    pa.field("end", pa.int32()),
    pa.field("holder_start", pa.int32()),  # the holder's mention, when named in the sentence
    pa.field("holder_end", pa.int32()),
    pa.field("label", pa.string()),  # favor|against|neutral
    pa.field("score", pa.float32()),
    pa.field("source", pa.string()),
])

_RUN = [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("model_id", pa.string(), nullable=False),
]

# When the row's document was analysed (errors: when the error row was made). All rows that one
# analysis of a document produced share the value, so it names that version of the document's
# rows: readers keep the latest version per doc_id (analysis/tables.py). Last in every table,
# and nullable, because outputs written before it lack it.
VERSION_COLUMN = "analysed_at"
_VERSION = pa.field(VERSION_COLUMN, pa.timestamp("us", tz="UTC"))

DOCUMENTS = pa.schema([
    *_RUN,
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("origin", pa.string(), nullable=False),  # file path, with :line or #row where relevant
    pa.field("title", pa.string()),
    pa.field("date", pa.date32()),
    pa.field("source", pa.string()),
    pa.field("url", pa.string()),
    pa.field("n_chars", pa.int64(), nullable=False),
    pa.field("n_chars_processed", pa.int64(), nullable=False),  # < n_chars when capped
    pa.field("n_sentences", pa.int32(), nullable=False),
    pa.field("n_mentions", pa.int32(), nullable=False),
    pa.field("n_actors", pa.int32(), nullable=False),
    pa.field("n_statements", pa.int32(), nullable=False),  # sentences with an identified speaker
    pa.field("tone", pa.float32()),  # mean mention score p(pos)-p(neg); null without mentions
    pa.field("tone_label", pa.string()),
    _VERSION,
])

MENTIONS = pa.schema([
    *_RUN,
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("mention_id", pa.string(), nullable=False),
    pa.field("actor_id", pa.string(), nullable=False),
    pa.field("actor_name", pa.string(), nullable=False),
    pa.field("actor_type", pa.string(), nullable=False),  # person|country|organisation|group|location
    pa.field("actor_country", pa.string()),  # ISO 3166 alpha-3 where known
    pa.field("text", pa.string(), nullable=False),  # the surface form in the document
    pa.field("start", pa.int32(), nullable=False),  # document character offsets, end exclusive
    pa.field("end", pa.int32(), nullable=False),
    pa.field("ner_label", pa.string()),  # spaCy label, or GAZETTEER for dictionary-only matches
    pa.field("sentence_index", pa.int32(), nullable=False),
    pa.field("sentence", pa.string(), nullable=False),
    pa.field("holder_id", pa.string(), nullable=False),  # speaker of the sentence, or "article"
    # How the sentence's own wording evaluates the mention (transforms/speakers.py): criticised
    # ("took a shot at the US"), praised, protected (a victim of a criticised act), wronged (the
    # victim of an act named as wrong: "slander upon the party"), or null.
    # The columns below are the classifier's raw output; actor_sentiment and actor_stance apply
    # the cue (transforms/classify.py, ClassifiedMention).
    pa.field("cue", pa.string()),
    pa.field("label", pa.string(), nullable=False),
    *_PROBS,
    pa.field("score", pa.float32(), nullable=False),  # p_positive - p_negative
    _VERSION,
])

ACTOR_SENTIMENT = pa.schema([
    *_RUN,
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("actor_id", pa.string(), nullable=False),
    pa.field("actor_name", pa.string(), nullable=False),
    pa.field("actor_type", pa.string(), nullable=False),
    pa.field("actor_country", pa.string()),
    pa.field("n_mentions", pa.int32(), nullable=False),
    *_PROBS,  # means over the actor's mentions
    pa.field("score", pa.float32(), nullable=False),
    pa.field("label", pa.string(), nullable=False),
    pa.field("evidence_sentence", pa.string(), nullable=False),  # strongest signal
    pa.field("evidence", pa.list_(EVIDENCE), nullable=False),  # top mentions, strongest first
    _VERSION,
])

ACTOR_STANCE = pa.schema([
    *_RUN,
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("holder_id", pa.string(), nullable=False),  # "article" when no speaker is named
    pa.field("holder_name", pa.string(), nullable=False),
    pa.field("holder_type", pa.string(), nullable=False),
    pa.field("target_id", pa.string(), nullable=False),
    pa.field("target_name", pa.string(), nullable=False),
    pa.field("target_type", pa.string(), nullable=False),
    pa.field("n_statements", pa.int32(), nullable=False),
    *_PROBS,  # for stance: p_negative = against, p_positive = favor (means over statements)
    pa.field("score", pa.float32(), nullable=False),
    pa.field("stance", pa.string(), nullable=False),  # favor|against|neutral
    # pair_model: the directed stance model read a sentence naming both; speaker_sentiment: the
    # speaker is not named in the sentence, the target's sentiment stands for the stance;
    # article: no speaker, how the article portrays the target (transforms/stance.py).
    pa.field("source", pa.string(), nullable=False),
    pa.field("evidence_sentence", pa.string(), nullable=False),
    pa.field("evidence", pa.list_(STANCE_EVIDENCE), nullable=False),
    _VERSION,
])

ERRORS = pa.schema([
    *_RUN,
    pa.field("error_id", pa.string(), nullable=False),  # stable: hash of origin, stage, reason
    pa.field("origin", pa.string(), nullable=False),
    pa.field("doc_id", pa.string()),
    pa.field("stage", pa.string(), nullable=False),  # read|parse|dedupe|nlp|classify|...
    pa.field("severity", pa.string(), nullable=False),  # rejected: document dropped; warning: kept
    pa.field("reason", pa.string(), nullable=False),
    pa.field("excerpt", pa.string()),
    _VERSION,
])

TABLES: dict[str, pa.Schema] = {
    "documents": DOCUMENTS,
    "mentions": MENTIONS,
    "actor_sentiment": ACTOR_SENTIMENT,
    "actor_stance": ACTOR_STANCE,
    "errors": ERRORS,
}

# The column whose values identify the rows a document produced: a rerun replaces them.
ROW_OWNER = {"documents": "doc_id", "mentions": "doc_id", "actor_sentiment": "doc_id",
             "actor_stance": "doc_id", "errors": "error_id"}


def partition_value(date_iso: str | None) -> str:
    """The Hive partition folder value for a document's date (ISO string or None)."""
    return date_iso if date_iso else NULL_PARTITION
