"""Shared fixtures: a tiny model built by the tests, the bundled gazetteer, fixture folders."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SAMPLE_ARTICLE = ROOT / "data" / "samples" / "2021-07-01-kim-xi-message.txt"
GAZETTEER = ROOT / "configs" / "actors.yaml"


def corpus_texts() -> list[str]:
    texts = [SAMPLE_ARTICLE.read_text(encoding="utf-8")]
    for line in (ROOT / "data" / "samples" / "wikinews-sample.jsonl").read_text(encoding="utf-8").splitlines():
        texts.append(json.loads(line)["text"])
    return texts


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), corpus_texts())


@pytest.fixture(scope="session")
def tiny_stance_model_dir(tmp_path_factory) -> Path:
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-stance-model"), corpus_texts(),
                            task="stance")


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory, tiny_model_dir, tiny_stance_model_dir) -> Path:
    """A config file that points the pipeline at the tiny models."""
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(f"model:\n  dir: {tiny_model_dir}\n  stance_dir: {tiny_stance_model_dir}\n"
                    "  max_batch_size: 64\n")
    return path
