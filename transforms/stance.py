"""Holder -> target stance statements and their per-document rows.

Three kinds of statement feed `actor_stance`, each row saying which in `source`:
- `pair_model`: the directed stance model read a sentence naming both actors. One 5-class answer
  gives a statement in each direction (transforms/pairs.py).
- `speaker_sentiment`: the sentence has a speaker (transforms/speakers.py) who is not named in it
  ("he said", or a pair the cap left out): the target's sentiment in the speaker's sentence
  stands for the speaker's stance, as in the first release.
- `article`: no speaker; the target's sentiment is how the article portrays it.
Probabilities are (against, neutral, favor); a row's are the means over its statements and its
score favor - against of those means. Its stance comes from the statements that take a side
(`stance_label`), so that passing mentions do not dilute an explicit one.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Iterable, Optional, Sequence

import numpy as np

from stancebeam.transforms.elements import Mention
from stancebeam.transforms.pairs import directed
from stancebeam.transforms.speakers import ARTICLE

PAIR_MODEL, SPEAKER_SENTIMENT, ARTICLE_SOURCE = "pair_model", "speaker_sentiment", "article"
STANCES = ("against", "neutral", "favor")
TOP_EVIDENCE = 3
# The sentence's own wording about the target, when the holder is the sentence's speaker
# (speakers.evaluation_cues): the object of a criticism, of praise, or the victim of a criticised
# act ("denounced forces attempting to hold China back": the speaker defends China) or of an act
# named as wrong ("slander upon the party"). Which of them apply is configured (stance.cues).
CUE_STANCE = {"criticised": (1.0, 0.0, 0.0), "praised": (0.0, 0.0, 1.0), "protected": (0.0, 0.0, 1.0),
              "wronged": (0.0, 0.0, 1.0)}


@dataclasses.dataclass(frozen=True)
class Statement:
    holder_id: str
    target: Mention
    probs: tuple[float, float, float]  # against, neutral, favor
    source: str
    holder_start: Optional[int] = None  # the holder's mention in the sentence, if named there
    holder_end: Optional[int] = None

    @property
    def score(self) -> float:
        return self.probs[2] - self.probs[0]


def pair_statements(first, second, probs: Sequence[float], cues: frozenset = frozenset()) -> list[Statement]:
    """Both directed statements of one classified pair of mentions (first = e1, second = e2).

    `cues`: the evaluation cues (names in CUE_STANCE) that override the model's answer when the
    holder is the sentence's speaker and the target carries the cue.
    """
    forward, backward = directed(probs)
    out = []
    for holder, target, p in ((first, second, forward), (second, first, backward)):
        if target.cue in cues and target.holder_id == holder.actor.actor_id:
            p = CUE_STANCE[target.cue]
        out.append(Statement(holder.actor.actor_id, target, tuple(float(x) for x in p), PAIR_MODEL,
                             holder.start, holder.end))
    return out


def sentiment_statements(classified: Iterable, covered: set) -> list[Statement]:
    """Statements from target sentiment where no pair answered for (sentence, holder, target).

    Args:
        classified: ClassifiedMentions (mention + cue-oriented probabilities).
        covered: (sentence_index, holder_id, target_id) triples the pair model answered.
    """
    out = []
    for c in classified:
        m = c.mention
        holder = m.holder_id
        if holder == m.actor.actor_id or (m.sentence_index, holder, m.actor.actor_id) in covered:
            continue
        source = ARTICLE_SOURCE if holder == ARTICLE else SPEAKER_SENTIMENT
        out.append(Statement(holder, m, tuple(float(x) for x in c.oriented), source))
    return out


def evidence(statements: list[Statement], limit: int = TOP_EVIDENCE) -> list[dict]:
    """The strongest statements (|favor - against|), one per sentence, strongest first."""
    ranked = sorted(statements, key=lambda s: (-abs(s.score), s.target.index))
    seen, out = set(), []
    for s in ranked:
        if s.target.sentence_index in seen:
            continue
        seen.add(s.target.sentence_index)
        out.append({"sentence": s.target.sentence, "sentence_index": s.target.sentence_index,
                    "start": s.target.start, "end": s.target.end,
                    "holder_start": s.holder_start, "holder_end": s.holder_end,
                    "label": STANCES[int(np.argmax(s.probs))], "score": round(s.score, 6),
                    "source": s.source})
        if len(out) == limit:
            break
    return out


def grouped(statements: Iterable[Statement]) -> dict[tuple[str, str], list[Statement]]:
    """Statements by (holder, target); a holder's statements about itself are not stance."""
    groups = defaultdict(list)
    for s in statements:
        if s.holder_id != s.target.actor.actor_id:
            groups[(s.holder_id, s.target.actor.actor_id)].append(s)
    return groups


def row_source(statements: list[Statement]) -> str:
    sources = {s.source for s in statements}
    return PAIR_MODEL if PAIR_MODEL in sources else sources.pop()


def stance_label(statements: list[Statement]) -> str:
    """favor or against by the statements that take a side, neutral when none does.

    A statement takes a side when favor or against is its most likely class. The side is the
    sign of their mean score: a speaker who praises a country once and names it in passing
    three times favors it, where the mean of all four would call it neutral.
    """
    sided = [s.score for s in statements if int(np.argmax(s.probs)) != 1]
    mean = float(np.mean(sided)) if sided else 0.0
    return "favor" if mean > 0 else "against" if mean < 0 else "neutral"


def summarise(statements: list[Statement]) -> dict:
    """The probability, stance and evidence columns of one (holder, target) row."""
    probs = np.mean([s.probs for s in statements], axis=0)
    top = evidence(statements)
    return {"n_statements": len({s.target.sentence_index for s in statements}),
            "p_negative": float(probs[0]), "p_neutral": float(probs[1]), "p_positive": float(probs[2]),
            "score": float(probs[2] - probs[0]), "stance": stance_label(statements),
            "source": row_source(statements), "evidence_sentence": top[0]["sentence"],
            "evidence": top}
