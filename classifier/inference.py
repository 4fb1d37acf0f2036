"""Batched inference over target examples, on PyTorch (fp32) or ONNX Runtime (int8)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from stancebeam.classifier.artifacts import LoadedModel, load_model
from stancebeam.classifier.encoding import EncodedExample, TargetExample, length_batches, pad_batch

BACKENDS = ("torch", "onnx-int8")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class TargetClassifier:
    """Classifies target mentions; one instance per process holds one model.

    Batches are built by length inside each call (dynamic padding per batch), so callers can hand
    over examples in any order and any number.
    """

    def __init__(self, loaded: LoadedModel, backend: str = "torch", batch_size: int = 32,
                 max_batch_tokens: int = 4096, threads: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown inference backend {backend!r}; expected one of {BACKENDS}")
        self.loaded = loaded
        self.backend = backend
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.threads = threads
        self.labels = tuple(loaded.manifest["labels"])
        # Per-class offsets fitted for macro-F1 on held-out data (`calibration.py`), if any.
        bias = loaded.manifest.get("logit_bias")
        self.logit_bias = np.asarray(bias, dtype=np.float32) if bias else None
        self._session = None
        if backend == "onnx-int8":
            from stancebeam.classifier.onnx_export import int8_session

            self._session = int8_session(loaded, threads=threads)

    @classmethod
    def from_dir(cls, model_dir: str, **kwargs) -> "TargetClassifier":
        return cls(load_model(model_dir), **kwargs)

    @property
    def model_id(self) -> str:
        suffix = "" if self.backend == "torch" else f"+{self.backend}"
        return self.loaded.model_id + suffix

    def encode(self, examples: Sequence[TargetExample]) -> list[EncodedExample]:
        return self.loaded.encoder.encode(examples)

    def predict_encoded(self, encoded: Sequence[EncodedExample]) -> np.ndarray:
        """Probabilities [n, n_labels] for already-encoded examples, in input order."""
        out = np.zeros((len(encoded), len(self.labels)), dtype=np.float32)
        if not encoded:
            return out
        batches = length_batches([len(e) for e in encoded], self.batch_size, self.max_batch_tokens)
        for idx in batches:
            arrays = pad_batch([encoded[i] for i in idx], self.loaded.encoder.pad_id)
            logits = self._logits(arrays)
            out[idx] = softmax(logits if self.logit_bias is None else logits + self.logit_bias)
        return out

    def predict_proba(self, examples: Sequence[TargetExample]) -> np.ndarray:
        return self.predict_encoded(self.encode(examples))

    def _logits(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        if self._session is not None:
            return self._session.run(["logits"], arrays)[0]
        if self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
            return self.loaded.model(**tensors).float().numpy()


def swapped_proba(classifier: TargetClassifier, examples) -> np.ndarray:
    """A stance model's probabilities for each pair read with e1 and e2 exchanged, mapped back
    to the pair's own roles, so they can be averaged with the plain reading (test-time swap)."""
    from stancebeam.classifier.tasks import STANCE_SWAP

    return classifier.predict_proba([e.swapped() for e in examples])[:, list(STANCE_SWAP)]
