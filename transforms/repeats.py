"""Near-duplicate sentences within a document count once in its aggregates.

A document that repeats a sentence (boilerplate, a scraped page listing the same line, junk input)
would otherwise weigh that sentence once per repetition in every mean and count built from it.
Two sentences are near-duplicates when they match after lowercasing and collapsing everything but
letters (punctuation, whitespace) and every run of digits ("3 killed" and "12 killed" match).
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")

_DIGITS = re.compile(r"\d+")
_NOT_LETTERS = re.compile(r"[\W_]+")


def sentence_key(sentence: str) -> str:
    """The text two near-duplicate sentences share."""
    return _NOT_LETTERS.sub(" ", _DIGITS.sub("0", sentence.casefold())).strip()


def first_of_repeats(items: Iterable[T], sentence_index: Callable[[T], int],
                     sentence: Callable[[T], str]) -> list[T]:
    """The items from the first sentence of each near-duplicate group, in their order.

    Several items from that one sentence (two mentions of an actor in it) are all kept; items
    from a later sentence that repeats it are dropped.
    """
    items = list(items)
    first: dict[str, int] = {}
    for item in sorted(items, key=sentence_index):
        first.setdefault(sentence_key(sentence(item)), sentence_index(item))
    return [i for i in items if first[sentence_key(sentence(i))] == sentence_index(i)]
