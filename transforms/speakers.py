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
_PRAISE_BASES = "praise hail applaud commend laud congratulate".split()
CRITICISM_VERBS = frozenset(f for b in _CRITICISM_BASES for f in _forms(b))
PRAISE_VERBS = frozenset(f for b in _PRAISE_BASES for f in _forms(b))
# "took a shot at X", "took aim at X", "hit out at X", "lashed out at X", "railed against X".
_TAKE, _AIM = _forms("take") | {"took", "taken"}, {"shot", "shots", "aim", "swipe", "jab"}
_OUT_AT = _forms("hit") | _forms("lash") | _forms("rail") | {"hitting", "lashing"}
# "criticised X for failing to ..." : the act is an omission, so its objects are no victims.
_OMISSIONS = frozenset(f for b in ("fail", "refuse", "decline", "neglect") for f in _forms(b))

# Words that name an act against someone as wrong in themselves: whoever speaks of "slander
# upon X" or "aggression against Y" takes the side of X and Y. Neutral words for the same acts
# ("pressure", "sanctions", "attack") are left out: "maximum pressure on Iran" is no defence of Iran.
HOSTILE_ACT_WORDS = frozenset("""slander slanders smear smears aggression bullying harassment
interference meddling provocation provocations persecution oppression repression intimidation
blackmail coercion cruel brutal vicious unprovoked unjust unjustified""".split())
# Not "in": "interference in the election" names no victim, "aggression in their campaign" none.
_AGAINST = frozenset({"against", "on", "upon", "toward", "towards"})

PROTECTED, WRONGED, CRITICISED, PRAISED = "protected", "wronged", "criticised", "praised"
# The cues whose party the text sides with (their sentiment counts with its sign swapped), and the
# order in which a mention's cues win: a victim inside a criticised phrase is still a victim.
VICTIM_CUES = frozenset({PROTECTED, WRONGED})
CUE_PRIORITY = (PROTECTED, WRONGED, CRITICISED, PRAISED)


def _tokens(node, skip_clauses: bool = True) -> set[int]:
    """A phrase's tokens, without the clauses attached to it (what the party does)."""
    out, stack = set(), [node]
    while stack:
        token = stack.pop()
        out.add(token.i)
        stack.extend(c for c in token.children
                     if not (skip_clauses and c.dep_ in ("acl", "relcl", "prep") and token.i == node.i))
    return out


def _criticised_objects(verb) -> list:
    """Objects of a criticism: "denounced X", "took a shot at X", "lashed out at X"."""
    lower = verb.lower_
    if lower in CRITICISM_VERBS:
        return [c for c in verb.children if c.dep_ == "dobj"]
    idiom = ((lower in _TAKE and any(c.dep_ == "dobj" and c.lower_ in _AIM for c in verb.children))
             or (lower in _OUT_AT))
    if not idiom:
        return []
    preps = [c for c in verb.children if c.dep_ == "prep" and c.lower_ in ("at", "against")]
    preps += [p for c in verb.children if c.dep_ == "dobj" and c.lower_ in _AIM
              for p in c.children if p.dep_ == "prep" and p.lower_ == "at"]
    return [o for p in preps for o in p.children if o.dep_ == "pobj"]


def _is_hostile_act(noun) -> bool:
    """A noun that the sentence names as a wrong done to someone: "aggression", "cruel pressure",
    "slander and pressure" (the words may modify it or be conjoined with it)."""
    if noun.lower_ in HOSTILE_ACT_WORDS:
        return True
    if noun.dep_ == "conj" and noun.head.lower_ in HOSTILE_ACT_WORDS:
        return True
    return any(c.dep_ in ("amod", "nmod", "compound", "conj") and c.lower_ in HOSTILE_ACT_WORDS
               for c in noun.children)


def _victims_of_hostile_acts(sent) -> list:
    """The objects of "<hostile act> against/on/upon/toward X" ("slander upon the party",
    "Russian aggression against Ukraine"); not of "of", which names the culprit as often as the
    victim ("the aggression of Russia")."""
    return [obj for noun in sent if _is_hostile_act(noun)
            for prep in noun.children if prep.dep_ == "prep" and prep.lower_ in _AGAINST
            for obj in prep.children if obj.dep_ == "pobj"]


def evaluation_cues(sent) -> dict[int, str]:
    """Token index -> how the sentence's own wording evaluates that party.

    - criticised: the object of a criticism ("Kim took a shot at the US", "denounced China's
      policy"): the speaker is against it;
    - praised: the object of praise ("hailed Xi"): the speaker is for it;
    - protected: a victim of the criticised act ("denounced forces attempting to stifle Chinese
      progress", "accused Russia of trying to undermine Ukraine"): the speaker defends it. A
      target-sentiment model trained on NewsMTSC scores such victims negative (they are portrayed
      under attack), the opposite of the speaker's stance toward them;
    - wronged: the victim of an act that the wording itself calls wrong ("cruel slander and
      pressure upon the party", "aggression against Ukraine"): the speaker sides with it. Kept
      apart from `protected` because the two measure differently as stance overrides
      (benchmarks/cue_precision.py; models/stance-minilm/MODEL_CARD.md).
    Lexical cues are explicit where the classifier has to guess; the aggregation lets them
    override it (transforms/classify.py, ClassifiedMention.oriented).
    """
    cues: dict[int, str] = {}
    for verb in sent:
        for obj in _criticised_objects(verb):
            for i in _tokens(obj):
                cues.setdefault(i, CRITICISED)
        if verb.lower_ in PRAISE_VERBS:
            for obj in (c for c in verb.children if c.dep_ == "dobj"):
                for i in _tokens(obj):
                    cues.setdefault(i, PRAISED)
        if verb.lower_ not in CRITICISM_VERBS:
            continue
        acts = []
        for child in verb.children:
            if child.dep_ == "dobj":  # what the criticised party does (acl/relcl)
                acts += [c for c in child.children if c.dep_ in ("acl", "relcl")]
            elif child.dep_ == "prep" and child.lower_ in ("of", "for"):  # "accused X of <act>"
                acts += [c for c in child.children if c.dep_ == "pcomp"]
        for act in acts:
            if act.lower_ in _OMISSIONS:
                continue
            agents = {t.i for c in act.children if c.dep_ in ("nsubj", "nsubjpass") for t in c.subtree}
            for t in act.subtree:
                if t.i != act.i and t.i not in agents:
                    cues[t.i] = PROTECTED
    for victim in _victims_of_hostile_acts(sent):
        for i in _tokens(victim):
            if cues.get(i) != PROTECTED:
                cues[i] = WRONGED
    return cues


_OPENING, _CLOSING = "“«", "”»"


def _quote_depths(text: str, open_at_start: bool) -> tuple[bool, bool, bool]:
    """(starts inside a quote, ends inside a quote, has any quotation mark) for one sentence.

    Curly quotes and guillemets say which way they face; a straight double quote toggles.
    """
    inside, seen = open_at_start, False
    for ch in text:
        if ch in _OPENING:
            inside, seen = True, True
        elif ch in _CLOSING:
            inside, seen = False, True
        elif ch == '"':
            inside, seen = not inside, True
    return open_at_start, inside, seen


def continue_quotes(texts: list[str], holders: list[str]) -> list[str]:
    """Gives a quotation's speaker to its sentences that name none.

    A quotation that runs over several sentences is usually attributed once ("... We will
    prevail," he said.), and a quoted sentence that follows an attributed quotation continues
    it. Such sentences, whose own holder is the article, take the speaker of the quotation:
    the holder found in any sentence of the same quotation, else that of the attributed
    quotation just before it.

    Args:
        texts: the document's sentences, in order.
        holders: each sentence's holder (ARTICLE when none was found).
    """
    spans, current, open_ = [], [], False
    for k, text in enumerate(texts):
        starts_inside, open_, seen = _quote_depths(text, open_)
        if seen or starts_inside:
            current.append(k)
        if current and not open_:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    out = list(holders)
    previous_speaker, previous_end = None, -2
    for span in spans:
        named = [holders[k] for k in span if holders[k] != ARTICLE]
        speaker = named[0] if named else (previous_speaker if span[0] == previous_end + 1 else None)
        if speaker:
            for k in span:
                if out[k] == ARTICLE:
                    out[k] = speaker
        previous_speaker, previous_end = speaker, span[-1]
    return out
