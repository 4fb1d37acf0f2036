"""The CPU fast path: the model exported to ONNX and quantised to int8 (dynamic), cached on disk.

The int8 file is derived data, not a shipped artifact: it is built from the model directory on
first use (about half a minute) and cached under a key of the model's weights and the library
versions, so every worker process after the first loads it directly.
"""
from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import logging
import os
import tempfile
from pathlib import Path

import torch

from stancebeam.classifier.artifacts import LoadedModel, load_model

log = logging.getLogger(__name__)
INPUTS = ("input_ids", "attention_mask", "token_type_ids", "target_mask")
OPSET = 17


@dataclasses.dataclass(frozen=True)
class QuantRecipe:
    """How the exported fp32 graph becomes the int8 one (ONNX Runtime dynamic quantisation).

    `version` names the recipe in the cache key: change it whenever any other field changes, so
    no worker ever loads a file built by an older recipe.
    """

    version: str
    op_types: tuple[str, ...] | None = None  # None: ORT's default (MatMul, Gather, Transpose, ...)
    per_channel: bool = True
    reduce_range: bool = False
    pre_process: bool = False  # onnxruntime's quant_pre_process (shape inference, fusions) first
    exclude: tuple[str, ...] = ()  # fnmatch patterns of node names kept in fp32
    extra_options: tuple[tuple[str, object], ...] = ()


# Weight MatMuls only, per output channel; embeddings (Gather) stay fp32. Per-channel weights are
# what matters (per-tensor doubles the probability error); quantising the embedding lookups saves
# file size but no time. Within 1 point of fp32 dev-rw macro-F1 at about 2.1-2.3x the speed of
# fp32 PyTorch on one thread: see benchmarks/results/int8_options.md (q1 was ORT's default op set).
RECIPE = QuantRecipe(version="q2-matmul-pc", op_types=("MatMul",), per_channel=True)


def cache_dir() -> Path:
    root = os.environ.get("STANCEBEAM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stancebeam")
    return Path(root)


def cache_key(loaded: LoadedModel, recipe: QuantRecipe = RECIPE) -> str:
    import onnxruntime

    sha = loaded.manifest.get("weights_sha256", "nosha")[:16]
    return (f"{loaded.model_id}-{sha}-{recipe.version}"
            f"-torch{torch.__version__}-ort{onnxruntime.__version__}")


def export_fp32(loaded: LoadedModel, path: Path) -> None:
    model = loaded.model.eval()
    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    axes["logits"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(model, dummy, str(path), input_names=list(INPUTS), output_names=["logits"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def excluded_nodes(model_path: Path, patterns: tuple[str, ...]) -> list[str]:
    """Names of the graph's nodes that match any of the fnmatch `patterns`."""
    if not patterns:
        return []
    import onnx

    names = [n.name for n in onnx.load(str(model_path), load_external_data=False).graph.node]
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def quantise(fp32: Path, int8: Path, recipe: QuantRecipe = RECIPE) -> Path:
    """Quantises an exported fp32 graph into `int8` following `recipe`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = fp32
    if recipe.pre_process:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        source = int8.with_name(int8.stem + "-pre.onnx")
        # auto_merge: the exported attention mask arithmetic leaves symbolic dims that plain
        # symbolic shape inference gives up on ("Incomplete symbolic shape inference").
        quant_pre_process(str(fp32), str(source), auto_merge=True)
    quantize_dynamic(
        str(source), str(int8), weight_type=QuantType.QInt8, per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        op_types_to_quantize=list(recipe.op_types) if recipe.op_types else None,
        nodes_to_exclude=excluded_nodes(source, recipe.exclude) or None,
        extra_options=dict(recipe.extra_options) or None)
    return int8


def build_int8(loaded: LoadedModel, target: Path, recipe: QuantRecipe = RECIPE) -> Path:
    """Exports and quantises into `target` atomically (a temp file, then a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "model-fp32.onnx"
        export_fp32(loaded, fp32)
        int8 = quantise(fp32, Path(tmp) / "model-int8.onnx", recipe)
        os.replace(int8, target)
    return target


def int8_path(loaded: LoadedModel, recipe: QuantRecipe = RECIPE) -> Path:
    path = cache_dir() / cache_key(loaded, recipe) / "model-int8.onnx"
    if not path.is_file():
        log.info("building the int8 ONNX model for %s in %s", loaded.model_id, path.parent)
        build_int8(loaded, path, recipe)
    return path


def session_from_path(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session over any exported graph (int8 or fp32)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def int8_session(loaded: LoadedModel, threads: int | None = None, recipe: QuantRecipe = RECIPE):
    return session_from_path(int8_path(loaded, recipe), threads)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stancebeam export-onnx")
    parser.add_argument("--model", default=None, help="model directory (default: the config's)")
    args = parser.parse_args(argv)
    if args.model is None:
        from stancebeam.pipeline.config import default_model_dir  # lazy: classifier does not need pipeline

        args.model = default_model_dir()
    print(int8_path(load_model(args.model)))
    return 0
