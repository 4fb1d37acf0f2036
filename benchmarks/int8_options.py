"""Compares int8 quantisation recipes for the CPU fast path: dev macro-F1 and speed against torch fp32.

Every candidate is quantised from the same exported fp32 graph and scored on the same encoded
dev examples through the product's own batching (`TargetClassifier.predict_encoded`), one thread
each. Timings are interleaved (round-robin over candidates, best pass kept) so that a busy machine
skews all candidates alike: trust the speed ratios more than the absolute rates. Each pass also
records the process CPU time, which a busy machine inflates far less than wall time (one thread:
CPU time ~ the work done); the speed-up column uses CPU time, wall-time speed-ups are in the JSON.

dev-rw holds only 343 targets: one flipped label moves macro-F1 by up to about half a point. So
besides F1 on dev-rw (and dev-mt) the script measures fidelity to the fp32 model on a larger set
(the first targets of the training file): the share of unchanged labels and the mean absolute
change of the probabilities. Fidelity says how much a recipe damages the model; the F1 deltas
alone are mostly noise below about 1.5 points.

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

from benchmarks.harness import DEFAULT_DEV, ROOT
from stancebeam.classifier.artifacts import load_model
from stancebeam.classifier.tasks import read_newsmtsc
from stancebeam.classifier.inference import TargetClassifier
from stancebeam.classifier.metrics import classification_report
from stancebeam.classifier.onnx_export import RECIPE, QuantRecipe, export_fp32, quantise, session_from_path

FFN_OUT = "/encoder/encoder/layer.{}/output/dense/MatMul"  # the FFN down-projection of layer i

CANDIDATES = (
    QuantRecipe("q1-ort-default-pc", per_channel=True),  # the recipe before this comparison
    QuantRecipe("ort-default", per_channel=False),
    QuantRecipe("matmul", op_types=("MatMul",), per_channel=False),
    QuantRecipe("matmul-pc", op_types=("MatMul",), per_channel=True),
    QuantRecipe("matmul-pc-reduce-range", op_types=("MatMul",), per_channel=True, reduce_range=True),
    QuantRecipe("matmul-pc-preprocess", op_types=("MatMul",), per_channel=True, pre_process=True),
    QuantRecipe("matmul-pc-fp32-first-ffn-out", op_types=("MatMul",), per_channel=True,
                exclude=(FFN_OUT.format(0),)),
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
    agreement: float = 1.0  # share of labels equal to torch fp32's (fidelity set)
    prob_mae: float = 0.0  # mean |p - p_fp32| over labels (fidelity set)
    f1_mt: float = 0.0
    passes: list = dataclasses.field(default_factory=list)  # wall seconds per timed pass
    cpu_passes: list = dataclasses.field(default_factory=list)  # process CPU seconds per pass


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="benchmarks.int8_options", description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", default=None, help="model directory (default: the config's)")
    data = DEFAULT_DEV.parent
    parser.add_argument("--dev", default=str(data / "dev-rw.jsonl"), help="F1 and timing set")
    parser.add_argument("--dev-mt", default=str(data / "dev-mt.jsonl"), help="second F1 set")
    parser.add_argument("--fidelity", default=str(data / "train.jsonl"),
                        help="labels are not used: agreement with fp32 on its first targets")
    parser.add_argument("--fidelity-limit", type=int, default=3000)
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


def score(candidates: list[Candidate], dev, dev_mt, fidelity) -> None:
    """F1 on both dev sets; agreement and probability error against the first (fp32) candidate."""
    reference = None
    for c in candidates:
        report = classification_report(dev[1], c.classifier.predict_encoded(dev[0]).argmax(-1))
        c.f1, c.accuracy = report["f1_macro"], report["accuracy"]
        c.f1_mt = classification_report(dev_mt[1], c.classifier.predict_encoded(dev_mt[0]).argmax(-1))["f1_macro"]
        probs = c.classifier.predict_encoded(fidelity)
        reference = probs if reference is None else reference
        c.agreement = float(np.mean(probs.argmax(-1) == reference.argmax(-1)))
        c.prob_mae = float(np.abs(probs - reference).mean())


def time_rounds(candidates: list[Candidate], encoded, rounds: int) -> None:
    """Round-robin passes over the same inputs, so background load hits every candidate alike."""
    for _ in range(rounds):
        for c in candidates:
            wall, cpu = time.perf_counter(), time.process_time()
            c.classifier.predict_encoded(encoded)
            c.passes.append(time.perf_counter() - wall)
            c.cpu_passes.append(time.process_time() - cpu)


def rows(candidates: list[Candidate], n: int) -> list[dict]:
    base = candidates[0]
    out = []
    for c in candidates:
        best, best_cpu = min(c.passes), min(c.cpu_passes)
        out.append({"candidate": c.name, "f1_macro": c.f1, "accuracy": c.accuracy,
                    "delta_f1_points": round(100 * (c.f1 - base.f1), 2),
                    "f1_macro_dev_mt": c.f1_mt, "delta_f1_dev_mt_points": round(100 * (c.f1_mt - base.f1_mt), 2),
                    "agreement_with_fp32": round(c.agreement, 4), "prob_mae": round(c.prob_mae, 5),
                    "mentions_per_cpu_s": round(n / best_cpu, 1),
                    "speedup_vs_torch": round(min(base.cpu_passes) / best_cpu, 2),
                    "mentions_per_wall_s": round(n / best, 1),
                    "wall_speedup_vs_torch": round(min(base.passes) / best, 2),
                    "build_s": round(c.build_s, 1), "size_mb": round(c.size_mb, 1),
                    "passes_wall_s": [round(p, 2) for p in c.passes],
                    "passes_cpu_s": [round(p, 2) for p in c.cpu_passes]})
    return out


def print_table(table: list[dict]) -> None:
    print(f"{'candidate':<30} {'F1 rw':>6} {'dF1':>6} {'F1 mt':>6} {'dF1':>6} {'agree':>6} "
          f"{'p MAE':>7} {'m/cpu-s':>7} {'x fp32':>6} {'wall x':>6} {'MB':>5}")
    for r in table:
        print(f"{r['candidate']:<30} {r['f1_macro']:>6.4f} {r['delta_f1_points']:>+6.2f} "
              f"{r['f1_macro_dev_mt']:>6.4f} {r['delta_f1_dev_mt_points']:>+6.2f} "
              f"{r['agreement_with_fp32']:>6.3f} {r['prob_mae']:>7.4f} {r['mentions_per_cpu_s']:>7.1f} "
              f"{r['speedup_vs_torch']:>6.2f} {r['wall_speedup_vs_torch']:>6.2f} {r['size_mb']:>5.1f}")


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.model_dir is None:
        from stancebeam.pipeline.config import default_model_dir

        args.model_dir = default_model_dir()
    recipes = [r for r in CANDIDATES if not args.only or r.version in args.only.split(",")]
    loaded = load_model(args.model_dir)
    encode = loaded.encoder.encode
    dev = read_newsmtsc(args.dev)
    dev = (encode(dev[0]), dev[1])
    dev_mt = read_newsmtsc(args.dev_mt)
    dev_mt = (encode(dev_mt[0]), dev_mt[1])
    fidelity = encode(read_newsmtsc(args.fidelity)[0][:args.fidelity_limit])
    with tempfile.TemporaryDirectory(prefix="int8-options-") as tmp:
        candidates = build_candidates(loaded, recipes, Path(tmp))
        score(candidates, dev, dev_mt, fidelity)
        time_rounds(candidates, dev[0], args.rounds)
    table = rows(candidates, len(dev[0]))
    print_table(table)
    result = {"model_dir": args.model_dir, "model_id": loaded.model_id, "dev": args.dev,
              "dev_mt": args.dev_mt, "fidelity": args.fidelity, "n_targets": len(dev[0]),
              "n_targets_dev_mt": len(dev_mt[0]), "n_fidelity": len(fidelity),
              "rounds": args.rounds, "threads": 1,
              "current_recipe": RECIPE.version, "load_average": os.getloadavg(),
              "recipes": {r.version: dataclasses.asdict(r) for r in recipes}, "table": table}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
