"""Builds a tiny random-weight model directory through the product's own save/load code."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from stancebeam.classifier.artifacts import save_model
from stancebeam.classifier.encoding import PAIR_MARKER_TOKENS
from stancebeam.classifier.model import SpanClassifier
from stancebeam.classifier.tasks import get_task

SPECIAL = ["[PAD]", *PAIR_MARKER_TOKENS, "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_vocab(texts: list[str], limit: int = 3000) -> list[str]:
    words = []
    seen = set(SPECIAL)
    for text in texts:
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            if word not in seen:
                seen.add(word)
                words.append(word)
    return SPECIAL + words[:limit] + [chr(c) for c in range(ord("a"), ord("z") + 1) if chr(c) not in seen]


def build_tiny_model(out: Path, texts: list[str], scheme: str = "markers", seed: int = 0,
                     task: str = "sentiment") -> Path:
    """A 2-layer, 32-wide BERT saved as `out/encoder` plus a stancebeam model directory `out`."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    vocab = build_vocab(texts)
    encoder_dir = out / "encoder"
    encoder_dir.mkdir(parents=True, exist_ok=True)
    # transformers 5 ignores vocab_file= on the fast tokenizer: pass the vocabulary itself.
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(encoder_dir)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=256)
    BertModel(config, add_pooling_layer=False).save_pretrained(encoder_dir)
    from stancebeam.classifier.artifacts import load_base

    tokenizer, bare = load_base(str(encoder_dir))
    spec = get_task(task)
    model = SpanClassifier(bare, n_labels=len(spec.labels), n_spans=spec.n_spans)
    save_model(model, spec.encoder(tokenizer, scheme, 64), out, base={"path": "encoder"},
               model_id="tiny-test" if task == "sentiment" else f"tiny-{task}-test", dtype="float32", task=task)
    return out
