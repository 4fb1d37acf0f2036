"""The CPU fast path: the model exported to ONNX and quantised to int8 (dynamic), cached on disk.

The int8 file is derived data, not a shipped artifact: it is built from the model directory on
first use (about half a minute) and cached under a key of the model's weights and the library
versions, so every worker process after the first loads it directly.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import torch

from classifier.artifacts import LoadedModel, load_model

log = logging.getLogger(__name__)
INPUTS = ("input_ids", "attention_mask", "token_type_ids", "target_mask")
OPSET = 17


def cache_dir() -> Path:
    root = os.environ.get("STANCEBEAM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stancebeam")
    return Path(root)


def cache_key(loaded: LoadedModel) -> str:
    import onnxruntime

    sha = loaded.manifest.get("weights_sha256", "nosha")[:16]
    return f"{loaded.model_id}-{sha}-torch{torch.__version__}-ort{onnxruntime.__version__}"


def export_fp32(loaded: LoadedModel, path: Path) -> None:
    model = loaded.model.eval()
    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    axes["logits"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(model, dummy, str(path), input_names=list(INPUTS), output_names=["logits"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def build_int8(loaded: LoadedModel, target: Path) -> Path:
    """Exports and quantises into `target` atomically (a temp file, then a rename)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "model-fp32.onnx"
        export_fp32(loaded, fp32)
        int8 = Path(tmp) / "model-int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(int8, target)
    return target


def int8_path(loaded: LoadedModel) -> Path:
    path = cache_dir() / cache_key(loaded) / "model-int8.onnx"
    if not path.is_file():
        log.info("building the int8 ONNX model for %s in %s", loaded.model_id, path.parent)
        build_int8(loaded, path)
    return path


def int8_session(loaded: LoadedModel, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(int8_path(loaded)), options, providers=["CPUExecutionProvider"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stancebeam export-onnx")
    parser.add_argument("--model", default=None, help="model directory (default: the config's)")
    args = parser.parse_args(argv)
    if args.model is None:
        from pipeline.config import load_config

        args.model = load_config()["model"]["dir"]
    print(int8_path(load_model(args.model)))
    return 0
