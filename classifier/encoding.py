"""Turns (sentence, target span) pairs into model inputs, with the target marked."""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

SCHEMES = ("markers", "pair", "markers+pair", "markers+others")
# BERT's reserved vocabulary slots serve as markers, so the vocabulary (and the frozen
# word-embedding matrix that ships inside the base package) stays unchanged. The target sentiment
# task wraps its target in the first two; the stance task wraps e1 in the first two and e2 in the
# next two.
MARKER_TOKENS = ("[unused0]", "[unused1]")
# `markers+others` also wraps the sentence's other targets, in the next two slots.
OTHERS_MARKER_TOKENS = ("[unused0]", "[unused1]", "[unused2]", "[unused3]")
PAIR_MARKER_TOKENS = ("[unused0]", "[unused1]", "[unused2]", "[unused3]")


@dataclasses.dataclass(frozen=True)
class TargetExample:
    """One target mention inside a sentence; `end` is exclusive. `others` holds the spans of the
    sentence's other targets (other actors), which the `markers+others` scheme marks as context."""

    sentence: str
    start: int
    end: int
    others: tuple[tuple[int, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class PairExample:
    """Two actor mentions inside one sentence (e1 and e2, in the data's order); ends exclusive."""

    sentence: str
    e1_start: int
    e1_end: int
    e2_start: int
    e2_end: int

    def swapped(self) -> "PairExample":
        """The same sentence with the roles of e1 and e2 exchanged."""
        return PairExample(self.sentence, self.e2_start, self.e2_end, self.e1_start, self.e1_end)


@dataclasses.dataclass
class EncodedExample:
    input_ids: list[int]
    token_type_ids: list[int]
    # 0 for context; k for the tokens of the k-th span the model pools (1: the target or e1, 2: e2).
    target_mask: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def token_span(offsets, start: int, end: int) -> tuple[int, int]:
    """The tokens [first, last) that overlap the characters [start, end)."""
    first = last = None
    for k, (a, b) in enumerate(offsets):
        if b > start and a < end:
            if first is None:
                first = k
            last = k
    if first is None:
        # Span covers no token (whitespace, or past the end): point at the nearest token.
        first = next((k for k, (a, _) in enumerate(offsets) if a >= start), len(offsets))
        return first, first  # empty span
    return first, last + 1


def tokenize_sentences(tokenizer, sentences: Sequence[str]) -> tuple[dict, dict[str, int]]:
    """Tokenises each distinct sentence once (several targets or pairs often share one)."""
    distinct = list(dict.fromkeys(sentences))
    batch = tokenizer(distinct, add_special_tokens=False, return_offsets_mapping=True,
                      return_attention_mask=False, return_token_type_ids=False)
    return batch, {s: i for i, s in enumerate(distinct)}


class MarkedSentenceEncoder:
    """What both tasks' encoders share: the tokenizer's special ids, the marker tokens' ids,
    and encoding a batch with each distinct sentence tokenised once. Subclasses set
    `marker_tokens` and write `_encode_one(ids, offsets, example)`."""

    marker_tokens: tuple[str, ...] = ()

    def __init__(self, tokenizer, scheme: str, max_length: int, needs_markers: bool):
        self.tokenizer = tokenizer
        self.scheme = scheme
        self.max_length = max_length
        self.cls_id = tokenizer.cls_token_id
        self.sep_id = tokenizer.sep_token_id
        self.pad_id = tokenizer.pad_token_id or 0
        self.marker_ids = [tokenizer.convert_tokens_to_ids(t) for t in self.marker_tokens]
        if needs_markers and any(i is None or i == tokenizer.unk_token_id for i in self.marker_ids):
            raise ValueError(f"tokenizer vocabulary lacks the marker tokens {self.marker_tokens}")

    def encode(self, examples: Sequence) -> list[EncodedExample]:
        if not examples:
            return []
        batch, index = tokenize_sentences(self.tokenizer, [e.sentence for e in examples])
        out = []
        for ex in examples:
            i = index[ex.sentence]
            out.append(self._encode_one(batch["input_ids"][i], batch["offset_mapping"][i], ex))
        return out

    def _encode_one(self, ids, offsets, example) -> EncodedExample:
        raise NotImplementedError


class TargetEncoder(MarkedSentenceEncoder):
    """Encodes target examples for one marking scheme.

    `markers`: [CLS] left [M0] mention [M1] right [SEP].
    `pair`:    [CLS] sentence [SEP] mention [SEP], segment ids 0/1.
    `markers+pair`: [CLS] left [M0] mention [M1] right [SEP] mention [SEP].
    `markers+others`: as `markers`, and each other target of the sentence wrapped in [M2] .. [M3],
    so the model sees which other actors the sentence is about (multi-target sentences).
    In all, `target_mask` flags the mention's tokens in the sentence; the model pools them.
    Long sentences are cut to a window around the target instead of from the end.
    """

    marker_tokens = MARKER_TOKENS

    def __init__(self, tokenizer, scheme: str = "markers", max_length: int = 128):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown target scheme {scheme!r}; expected one of {SCHEMES}")
        self.marker_tokens = OTHERS_MARKER_TOKENS if scheme == "markers+others" else MARKER_TOKENS
        super().__init__(tokenizer, scheme, max_length, needs_markers=scheme.startswith("markers"))

    def _encode_one(self, ids, offsets, ex: TargetExample) -> EncodedExample:
        t0, t1 = token_span(offsets, ex.start, ex.end)
        mention = list(ids[t0:t1])
        n_special = {"markers": 4, "markers+others": 4, "pair": 3 + len(mention),
                     "markers+pair": 5 + len(mention)}[self.scheme]
        budget = max(self.max_length - n_special, 1)
        if len(mention) > budget:
            mention = mention[:budget]
            t1 = t0 + len(mention)
        context = budget - len(mention)
        left, right = list(ids[:t0]), list(ids[t1:])
        if self.scheme == "markers+others" and ex.others:
            left, right = self._mark_others(ids, offsets, ex, t0, t1)
        # Share the context budget between both sides, giving unused room to the other side.
        keep_left = min(len(left), max(context // 2, context - len(right)))
        keep_right = min(len(right), context - keep_left)
        left = left[len(left) - keep_left:]
        right = right[:keep_right]
        if self.scheme.startswith("markers"):
            m0, m1 = self.marker_ids[:2]
            input_ids = [self.cls_id, *left, m0, *mention, m1, *right, self.sep_id]
            target_mask = [0] * (1 + len(left)) + [1] * (len(mention) + 2) + [0] * (len(right) + 1)
        else:
            input_ids = [self.cls_id, *left, *mention, *right, self.sep_id]
            target_mask = [0] * (1 + len(left)) + [1] * len(mention) + [0] * (len(right) + 1)
        token_type_ids = [0] * len(input_ids)
        if self.scheme.endswith("pair"):
            input_ids += mention + [self.sep_id]
            target_mask += [0] * (len(mention) + 1)
            token_type_ids += [1] * (len(mention) + 1)
        if not any(target_mask):
            target_mask[0] = 1  # nothing to pool: fall back to [CLS]
        return EncodedExample(input_ids, token_type_ids, target_mask)

    def _mark_others(self, ids, offsets, ex: TargetExample, t0: int, t1: int) -> tuple[list, list]:
        """The context left and right of the target, with every other target that does not
        overlap it wrapped in the context markers. Cutting the context to the window may later
        drop one marker of a pair; the model learns to live with that."""
        opening, closing = {}, {}
        for start, end in ex.others:
            o0, o1 = token_span(offsets, start, end)
            if o1 <= o0 or (o0 < t1 and o1 > t0):
                continue  # empty, or overlapping the target itself
            opening[o0] = opening.get(o0, 0) + 1
            closing[o1] = closing.get(o1, 0) + 1

        def marked(lo: int, hi: int) -> list[int]:
            out = []
            for k in range(lo, hi + 1):
                out += [self.marker_ids[3]] * closing.get(k, 0)
                if k < hi:
                    out += [self.marker_ids[2]] * opening.get(k, 0) + [ids[k]]
            return out

        return marked(0, t0), marked(t1, len(ids))


class PairEncoder(MarkedSentenceEncoder):
    """Encodes two marked actors in one sentence for the directed stance task.

    `markers`: [CLS] ... [M0] e1 [M1] ... [M2] e2 [M3] ... [SEP] (the markers follow the roles,
    wherever each actor stands in the sentence). `target_mask` is 1 on e1 and its markers, 2 on
    e2 and its markers; the model pools each. A sentence longer than `max_length` keeps the
    stretch from the first actor to the second and as much context on both sides as fits; if
    even that stretch is too long, the middle of it is cut.
    """

    marker_tokens = PAIR_MARKER_TOKENS

    def __init__(self, tokenizer, scheme: str = "markers", max_length: int = 128):
        if scheme != "markers":
            raise ValueError(f"the stance task encodes with scheme 'markers' only, got {scheme!r}")
        super().__init__(tokenizer, scheme, max_length, needs_markers=True)

    def _encode_one(self, ids, offsets, ex: PairExample) -> EncodedExample:
        spans = [token_span(offsets, ex.e1_start, ex.e1_end) + (1,),
                 token_span(offsets, ex.e2_start, ex.e2_end) + (2,)]
        spans.sort()
        (_, a1, _), (b0, b1, role) = spans
        if b0 < a1:  # overlapping mentions: the later one starts where the earlier ends
            spans[1] = (a1, max(b1, a1), role)
        budget = max(self.max_length - 6, 2)  # [CLS], [SEP] and four markers
        pieces = [list(ids[:spans[0][0]]), list(ids[spans[0][0]:spans[0][1]]),
                  list(ids[spans[0][1]:spans[1][0]]), list(ids[spans[1][0]:spans[1][1]]),
                  list(ids[spans[1][1]:])]
        left, first, middle, second, right = pieces
        first, second = first[:budget // 2], second[:budget // 2]
        room = budget - len(first) - len(second)
        if len(middle) > room:  # keep both ends of the stretch between the actors
            head = room // 2
            middle = middle[:head] + middle[len(middle) - (room - head):] if room > 0 else []
        room -= len(middle)
        keep_left = min(len(left), max(room // 2, room - len(right)))
        keep_right = min(len(right), room - keep_left)
        left, right = left[len(left) - keep_left:], right[:keep_right]
        role_first, role_second = spans[0][2], spans[1][2]
        m = self.marker_ids

        def wrapped(tokens, role):
            open_, close = (m[0], m[1]) if role == 1 else (m[2], m[3])
            return [open_, *tokens, close], [role] * (len(tokens) + 2)

        first_ids, first_mask = wrapped(first, role_first)
        second_ids, second_mask = wrapped(second, role_second)
        input_ids = [self.cls_id, *left, *first_ids, *middle, *second_ids, *right, self.sep_id]
        target_mask = ([0] * (1 + len(left)) + first_mask + [0] * len(middle) + second_mask
                       + [0] * (len(right) + 1))
        return EncodedExample(input_ids, [0] * len(input_ids), target_mask)


def pad_batch(encoded: Iterable[EncodedExample], pad_id: int = 0) -> dict[str, np.ndarray]:
    """Pads a batch to its own longest member (dynamic padding)."""
    encoded = list(encoded)
    width = max(len(e) for e in encoded)
    n = len(encoded)
    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    attention = np.zeros((n, width), dtype=np.int64)
    token_type = np.zeros((n, width), dtype=np.int64)
    target = np.zeros((n, width), dtype=np.int64)
    for row, e in enumerate(encoded):
        k = len(e)
        input_ids[row, :k] = e.input_ids
        attention[row, :k] = 1
        token_type[row, :k] = e.token_type_ids
        target[row, :k] = e.target_mask
    return {"input_ids": input_ids, "attention_mask": attention,
            "token_type_ids": token_type, "target_mask": target}


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Groups indices of similar length into batches, so padding stays small.

    Args:
        lengths: token length of each example.
        batch_size: most examples in a batch.
        max_tokens: optional cap on batch_size x longest length.
    Returns:
        Lists of indices, shortest examples first.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current = [], []
    for i in order:
        longest = lengths[i]  # sorted ascending: the newest is the longest
        if current and (len(current) >= batch_size
                        or (max_tokens and (len(current) + 1) * longest > max_tokens)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
