"""Checks on the gazetteer data file configs/actors.yaml (shape, codes, uniqueness, key examples)."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

PATH = Path(__file__).resolve().parent.parent / "configs" / "actors.yaml"
SECTIONS = ("countries", "organisations", "parties", "people")


@pytest.fixture(scope="module")
def data() -> dict:
    with open(PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _by(entries: list, key: str) -> dict:
    return {e[key]: e for e in entries}


def test_sections_present(data):
    assert set(data) == set(SECTIONS)
    for section in SECTIONS:
        assert isinstance(data[section], list) and data[section], section


def test_countries_cover_iso_3166(data):
    codes = [c["iso3"] for c in data["countries"]]
    assert len(codes) >= 240
    assert all(isinstance(c, str) and re.fullmatch(r"[A-Z]{3}", c) for c in codes)
    assert [c for c, n in Counter(codes).items() if n > 1] == []


def test_entry_fields(data):
    for c in data["countries"]:
        assert set(c) == {"iso3", "name", "aliases", "demonyms", "capitals"}, c
    for o in data["organisations"]:
        assert set(o) == {"id", "name", "type", "country", "aliases"}, o
        assert o["type"] in ("organisation", "group"), o
    for p in data["parties"]:
        assert set(p) == {"id", "name", "country", "aliases"}, p
    for p in data["people"]:
        assert set(p) == {"id", "name", "country", "role", "aliases"}, p
        assert isinstance(p["role"], str) and p["role"], p


def test_ids_unique_and_snake_case(data):
    org_ids = [e["id"] for e in data["organisations"] + data["parties"]]
    people_ids = [e["id"] for e in data["people"]]
    for ids in (org_ids, people_ids):
        assert [i for i, n in Counter(ids).items() if n > 1] == []
        assert all(re.fullmatch(r"[a-z0-9]+(?:_[a-z0-9]+)*", i) for i in ids)


def test_examples_present(data):
    countries = _by(data["countries"], "iso3")
    assert "DPRK" in countries["PRK"]["aliases"]
    assert countries["PRK"]["name"] == "North Korea"
    assert "U.S." in countries["USA"]["aliases"]
    assert "Beijing" in countries["CHN"]["capitals"]
    assert "Chinese" in countries["CHN"]["demonyms"]
    people = _by(data["people"], "id")
    assert people["kim_jong_un"]["country"] == "PRK"
    assert people["wang_wenbin"]["country"] == "CHN"
    assert _by(data["parties"], "id")["ccp"]["country"] == "CHN"
    orgs = _by(data["organisations"], "id")
    assert orgs["un"]["name"] == "United Nations" and orgs["un"]["country"] is None
    assert orgs["kcna"]["country"] == "PRK"


def test_surface_strings_unique(data):
    owners: dict[str, list[str]] = {}
    for section in SECTIONS:
        for e in data[section]:
            owner = f"{section}:{e.get('iso3') or e.get('id')}"
            strings = [e["name"], *(e.get("aliases") or []), *(e.get("demonyms") or []),
                       *(e.get("capitals") or [])]
            for s in strings:
                assert isinstance(s, str) and s.strip() == s and s, (owner, s)
                owners.setdefault(s, []).append(owner)
    assert {s: o for s, o in owners.items() if len(o) > 1} == {}


def test_country_references_valid(data):
    codes = {c["iso3"] for c in data["countries"]}
    bad = [(section, e["id"], e["country"])
           for section in ("organisations", "parties", "people") for e in data[section]
           if e["country"] is not None and e["country"] not in codes]
    assert bad == []
