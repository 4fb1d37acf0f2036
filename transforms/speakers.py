"""Finds who speaks in a sentence: quote attribution and subjects of reporting or evaluative verbs."""
from __future__ import annotations

from typing import Callable, Optional

ARTICLE = "article"  # holder id for sentences with no identified speaker

_BASES = """say tell state add claim announce declare insist argue assert note explain reply respond
suggest confirm deny report write reveal comment remark stress emphasize emphasise reiterate
reaffirm acknowledge admit warn threaten urge demand call ask vow pledge promise predict
denounce condemn criticize criticise blast slam attack accuse blame reject dismiss decry
deplore lambast rebuke protest oppose praise hail welcome applaud commend laud congratulate
thank support endorse back defend express describe label brand""".split()
_IRREGULAR = {"say": ["said"], "tell": ["told"], "write": ["wrote", "written"],
              "call": ["called"], "back": ["backed"]}


def _forms(base: str) -> set[str]:
    stem = base[:-1] if base.endswith("e") else base
    third = base + ("es" if base.endswith(("s", "sh", "ch", "x", "z")) else "s")
    if base.endswith("y") and base[-2] not in "aeiou":
        third, past = base[:-1] + "ies", base[:-1] + "ied"
    else:
        past = base + ("d" if base.endswith("e") else "ed")
    return {base, third, past, stem + "ing", *_IRREGULAR.get(base, [])}


REPORTING_VERBS = frozenset(f for b in _BASES for f in _forms(b))
PERSONAL_PRONOUNS = frozenset({"he", "she"})
_CLIMB = {"advcl", "xcomp", "conj", "ccomp", "pcomp"}


def subject_of(verb):
    """The nominal subject of a verb, climbing through clauses that share it ("..., saying")."""
    node = verb
    for _ in range(3):
        for child in node.children:
            if child.dep_ == "nsubj":
                return child
        if node.dep_ not in _CLIMB or node.head is node:
            return None
        node = node.head
    return None


def according_to(sent):
    """The object of 'according to X' in a sentence, if any."""
    for token in sent:
        if token.lower_ == "according" and token.i + 1 < len(token.doc) and token.nbor().lower_ == "to":
            for child in token.nbor().children:
                if child.dep_ == "pobj":
                    return child
    return None


def find_speaker(sent, actor_at: Callable[[int], Optional[str]],
                 last_person: Callable[[int], Optional[str]]) -> Optional[str]:
    """The actor id of the sentence's speaker, or None.

    Args:
        sent: a spaCy sentence span.
        actor_at: token index -> actor id of the mention covering that token (or None).
        last_person: token index -> the most recent person actor before it (for "he said").
    """
    for token in sent:
        # No POS tagger runs (speed): a noun like "support" rarely has a subject, so it drops out.
        if token.lower_ not in REPORTING_VERBS:
            continue
        subject = subject_of(token)
        if subject is None:
            continue
        if subject.lower_ in PERSONAL_PRONOUNS:
            speaker = last_person(subject.i)
        else:
            speaker = actor_at(subject.i) or next(
                (actor_at(t.i) for t in subject.subtree
                 if t.dep_ in ("compound", "appos", "flat") and actor_at(t.i)), None)
        if speaker:
            return speaker
    source = according_to(sent)
    if source is not None:
        return actor_at(source.i) or next((actor_at(t.i) for t in source.subtree if actor_at(t.i)), None)
    return None


_CRITICISM_BASES = """denounce condemn criticize criticise blast slam attack accuse blame decry deplore
lambast rebuke castigate chastise""".split()
CRITICISM_VERBS = frozenset(f for b in _CRITICISM_BASES for f in _forms(b))
# "criticised X for failing to ..." : the act is an omission, so its objects are no victims.
_OMISSIONS = frozenset(f for b in ("fail", "refuse", "decline", "neglect") for f in _forms(b))


def protected_tokens(sent) -> set[int]:
    """Token indices of parties the sentence defends: victims of an act it criticises.

    In "Kim denounced forces attempting to stifle Chinese progress" or "Obama accused Russia of
    trying to undermine Ukraine", the criticised party (forces, Russia) is the verb's object; the
    objects of the criticised act (Chinese progress, Ukraine) are what the speaker defends. A
    target-sentiment model trained on NewsMTSC scores such victims negative (they are portrayed
    under attack), which is the opposite of the speaker's stance toward them.
    """
    protected: set[int] = set()
    for verb in sent:
        if verb.lower_ not in CRITICISM_VERBS:
            continue
        acts = []
        for child in verb.children:
            if child.dep_ == "dobj":  # the criticised party, and what it does (acl/relcl)
                acts += [c for c in child.children if c.dep_ in ("acl", "relcl")]
            elif child.dep_ == "prep" and child.lower_ in ("of", "for"):  # "accused X of <act>"
                acts += [c for c in child.children if c.dep_ == "pcomp"]
        for act in acts:
            if act.lower_ in _OMISSIONS:
                continue
            agents = {t.i for c in act.children if c.dep_ in ("nsubj", "nsubjpass") for t in c.subtree}
            protected.update(t.i for t in act.subtree if t.i != act.i and t.i not in agents)
    return protected
