"""Compares int8 quantisation recipes for the CPU fast path: dev macro-F1 and speed against torch fp32.

Every candidate is quantised from the same exported fp32 graph and scored on the same encoded
dev examples through the product's own batching (`TargetClassifier.predict_encoded`), one thread
each. Timings are interleaved (round-robin over candidates, best pass kept) so that a busy machine
skews all candidates alike: trust the speed ratios more than the absolute rates.

    .venv/bin/python -m benchmarks.int8_options --model-dir runs/markers \\
        --out benchmarks/results/int8_options.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from classifier.artifacts import load_model
from classifier.data import read_newsmtsc
from classifier.inference import TargetClassifier
from classifier.metrics import classification_report
from classifier.onnx_export import RECIPE, QuantRecipe, export_fp32, quantise, session_from_path

ROOT = Path(__file__).resolve().parent.parent
FFN_OUT = "/encoder/encoder/layer.{}/output/dense/MatMul"  # the FFN down-projection of layer i

CANDIDATES = (
    QuantRecipe("q1-ort-default-pc", per_channel=True),  # the recipe before this comparison
    QuantRecipe("ort-default", per_channel=False),
    QuantRecipe("matmul", op_types=("MatMul",), per_channel=False),
    QuantRecipe("matmul-pc", op_types=("MatMul",), per_channel=True),
    QuantRecipe("matmul-pc-reduce-range", op_types=("MatMul",), per_channel=True, reduce_range=True),
    QuantRecipe("matmul-pc-preprocess", op_types=("MatMul",), per_channel=True, pre_process=True),
    QuantRecipe("matmul-pc-fp32-last-ffn-out", op_types=("MatMul",), per_channel=True,
                exclude=(FFN_OUT.format(5),)),
    QuantRecipe("matmul-pc-fp32-ffn-out", op_types=("MatMul",), per_channel=True,
                exclude=(FFN_OUT.format("*"),)),
)


@dataclasses.dataclass
class Candidate:
    name: str
    classifier: TargetClassifier
    build_s: float = 0.0
    size_mb: float = 0.0
    f1: float = 0.0
    accuracy: float = 0.0
    agreement: float = 1.0  # share of labels equal to torch fp32's
    passes: list = dataclasses.field(default_factory=list)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="benchmarks.int8_options", description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", default=None, help="model directory (default: the config's)")
    parser.add_argument("--dev", default=str(ROOT.parent / "shared/data/newsmtsc/dev-rw.jsonl"))
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per candidate (best kept)")
    parser.add_argument("--only", default=None, help="comma-separated candidate names to run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/int8_options.json"))
    return parser.parse_args(argv)


def onnx_candidate(loaded, name: str, path: Path, build_s: float) -> Candidate:
    """A TargetClassifier whose ONNX session is the given graph, one thread."""
    classifier = TargetClassifier(loaded, backend="torch", threads=1)
    # Same batching and padding as the product; only the session differs between candidates.
    classifier._session = session_from_path(path, threads=1)
    return Candidate(name, classifier, build_s, path.stat().st_size / 1e6)


def build_candidates(loaded, recipes, workdir: Path) -> list[Candidate]:
    fp32 = workdir / "model-fp32.onnx"
    export_fp32(loaded, fp32)
    candidates = [Candidate("torch-fp32", TargetClassifier(loaded, backend="torch", threads=1)),
                  onnx_candidate(loaded, "ort-fp32 (no quantisation)", fp32, 0.0)]
    for recipe in recipes:
        started = time.perf_counter()
        int8 = quantise(fp32, workdir / f"{recipe.version}.onnx", recipe)
        candidates.append(onnx_candidate(loaded, recipe.version, int8, time.perf_counter() - started))
    return candidates


def score(candidates: list[Candidate], encoded, gold) -> None:
    reference = None
    for c in candidates:
        predicted = c.classifier.predict_encoded(encoded).argmax(-1)
        reference = predicted if reference is None else reference
        report = classification_report(gold, predicted)
        c.f1, c.accuracy = report["f1_macro"], report["accuracy"]
        c.agreement = float(np.mean(predicted == reference))


def time_rounds(candidates: list[Candidate], encoded, rounds: int) -> None:
    """Round-robin passes over the same inputs, so background load hits every candidate alike."""
    for _ in range(rounds):
        for c in candidates:
            started = time.perf_counter()
            c.classifier.predict_encoded(encoded)
            c.passes.append(time.perf_counter() - started)


def rows(candidates: list[Candidate], n: int) -> list[dict]:
    base = candidates[0]
    out = []
    for c in candidates:
        best = min(c.passes)
        out.append({"candidate": c.name, "f1_macro": c.f1, "accuracy": c.accuracy,
                    "delta_f1_points": round(100 * (c.f1 - base.f1), 2),
                    "agreement_with_fp32": round(c.agreement, 4),
                    "mentions_per_s": round(n / best, 1), "speedup_vs_torch": round(min(base.passes) / best, 2),
                    "build_s": round(c.build_s, 1), "size_mb": round(c.size_mb, 1),
                    "passes_s": [round(p, 2) for p in c.passes]})
    return out


def print_table(table: list[dict]) -> None:
    print(f"{'candidate':<30} {'F1':>6} {'dF1':>6} {'agree':>6} {'ment/s':>7} {'x fp32':>6} {'MB':>5}")
    for r in table:
        print(f"{r['candidate']:<30} {r['f1_macro']:>6.4f} {r['delta_f1_points']:>+6.2f} "
              f"{r['agreement_with_fp32']:>6.3f} {r['mentions_per_s']:>7.1f} {r['speedup_vs_torch']:>6.2f} "
              f"{r['size_mb']:>5.1f}")


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.model_dir is None:
        from pipeline.config import load_config

        args.model_dir = load_config()["model"]["dir"]
    recipes = [r for r in CANDIDATES if not args.only or r.version in args.only.split(",")]
    loaded = load_model(args.model_dir)
    examples, gold = read_newsmtsc(args.dev)
    with tempfile.TemporaryDirectory(prefix="int8-options-") as tmp:
        candidates = build_candidates(loaded, recipes, Path(tmp))
        encoded = candidates[0].classifier.encode(examples)
        score(candidates, encoded, gold)
        time_rounds(candidates, encoded, args.rounds)
    table = rows(candidates, len(encoded))
    print_table(table)
    result = {"model_dir": args.model_dir, "model_id": loaded.model_id, "dev": args.dev,
              "n_targets": len(encoded), "rounds": args.rounds, "threads": 1,
              "current_recipe": RECIPE.version, "load_average": os.getloadavg(),
              "recipes": {r.version: dataclasses.asdict(r) for r in recipes}, "table": table}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
