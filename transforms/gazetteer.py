"""Canonical actors from the YAML gazetteer: countries, organisations, parties and people."""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from pathlib import Path

import yaml

PERSON, COUNTRY, ORGANISATION, GROUP, LOCATION = "person", "country", "organisation", "group", "location"
# spaCy OntoNotes label -> actor type for names the gazetteer does not know.
NER_TYPES = {"PERSON": PERSON, "NORP": GROUP, "ORG": ORGANISATION, "GPE": LOCATION}

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})
_POSSESSIVE = re.compile(r"(?:'s|')$")
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")


@dataclasses.dataclass(frozen=True)
class Actor:
    actor_id: str
    name: str
    actor_type: str
    country: str | None = None


def normalise(surface: str) -> str:
    """Folds a surface form for lookup: apostrophes, 'the', possessives, edges, case, spacing."""
    text = unicodedata.normalize("NFKC", surface).translate(_APOSTROPHES).strip()
    text = re.sub(r"^the\s+", "", text, flags=re.IGNORECASE)
    text = _POSSESSIVE.sub("", text)
    text = _EDGE.sub("", text)
    return re.sub(r"\s+", " ", text).lower()


def clean_surface(surface: str) -> str:
    """A display name from a surface form: no leading 'the', no possessive, no edge punctuation."""
    text = unicodedata.normalize("NFKC", surface).strip()
    text = re.sub(r"^the\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"(?:['’]s|['’])$", "", text)
    return re.sub(r"\s+", " ", _EDGE.sub("", text))


def slug(text: str) -> str:
    # Unicode word characters are kept: "Paweł Adamowicz" -> "paweł_adamowicz", not "pawe_...".
    return re.sub(r"\W+", "_", normalise(text)).strip("_") or "unknown"


def unknown_actor(surface: str, ner_label: str) -> Actor:
    """A stable actor for a name outside the gazetteer, from its normalised name."""
    actor_type = NER_TYPES.get(ner_label, GROUP)
    return Actor(f"{actor_type}:{slug(surface)}", clean_surface(surface), actor_type)


class Gazetteer:
    """Looks up canonical actors by surface form.

    `phrases` (exact, case-sensitive) feed spaCy's PhraseMatcher so that dictionary names are
    found even where the NER misses them; `lookup` maps an NER span to an actor, ignoring case
    for names longer than an acronym.
    """

    def __init__(self, data: dict):
        self.actors: dict[str, Actor] = {}
        self.phrases: dict[str, str] = {}  # exact surface form -> actor_id
        self._folded: dict[str, str] = {}  # normalised form -> actor_id
        for entry in data.get("countries") or []:
            actor = Actor(f"country:{entry['iso3']}", entry["name"], COUNTRY, entry["iso3"])
            self._add(actor, [entry["name"], *(entry.get("aliases") or []),
                              *(entry.get("demonyms") or []), *(entry.get("capitals") or [])])
        for section, prefix in (("organisations", "org"), ("parties", "party")):
            for entry in data.get(section) or []:
                actor = Actor(f"{prefix}:{entry['id']}", entry["name"],
                              entry.get("type") or ORGANISATION, entry.get("country"))
                self._add(actor, [entry["name"], *(entry.get("aliases") or [])])
        for entry in data.get("people") or []:
            actor = Actor(f"person:{entry['id']}", entry["name"], PERSON, entry.get("country"))
            self._add(actor, [entry["name"], *(entry.get("aliases") or [])])

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Gazetteer":
        with open(path, encoding="utf-8") as f:
            return cls(yaml.safe_load(f) or {})

    def _add(self, actor: Actor, surfaces: list[str]) -> None:
        self.actors[actor.actor_id] = actor
        for surface in surfaces:
            surface = str(surface).strip()
            if not surface:
                continue
            for form in {surface, surface.translate(_APOSTROPHES), surface.replace("'", "’")}:
                self.phrases.setdefault(form, actor.actor_id)
            self._folded.setdefault(normalise(surface), actor.actor_id)

    def lookup(self, surface: str) -> Actor | None:
        raw = re.sub(r"^the\s+", "", surface.strip(), flags=re.IGNORECASE)
        raw = re.sub(r"(?:['’]s)$", "", raw)
        actor_id = self.phrases.get(raw) or self.phrases.get(clean_surface(surface))
        if actor_id is None:
            folded = normalise(surface)
            # Short all-caps forms ("US", "UN") must match exactly: "us" is a pronoun.
            if len(folded) > 3:
                actor_id = self._folded.get(folded)
        return self.actors.get(actor_id) if actor_id else None
