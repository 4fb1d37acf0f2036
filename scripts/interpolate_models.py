"""Writes a model whose trained weights are a mix of two models of the same task and base.

    python scripts/interpolate_models.py A B --alpha 0.5 --out DIR --model-id ID

Every trained tensor (the head and the marker rows included) becomes alpha * A + (1 - alpha) * B.
This only makes sense when B continues A (`train --init-from A`), so that both sit in one basin
of the loss: the mix then trades between them (weight-space ensembling, as in WiSE-FT) at the
cost of one model. The manifest keeps B's training settings and records the mix.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from stancebeam.classifier.artifacts import WORD_EMBEDDINGS, load_model, save_model


def interpolate(a_dir: str, b_dir: str, alpha: float, out: str, model_id: str) -> None:
    a, b = load_model(a_dir), load_model(b_dir)
    for key in ("task", "labels", "scheme", "max_length", "base", "marker_tokens"):
        if a.manifest.get(key) != b.manifest.get(key):
            raise SystemExit(f"{a_dir} and {b_dir} differ in {key}: they cannot be mixed")
    a_state, b_state = a.model.state_dict(), b.model.state_dict()
    for key, tensor in b_state.items():
        if key == WORD_EMBEDDINGS:  # the base encoder's and frozen, except the marker rows
            rows = b.encoder.marker_ids
            tensor[rows] = alpha * a_state[key][rows] + (1 - alpha) * tensor[rows]
        elif tensor.is_floating_point():
            tensor.copy_(alpha * a_state[key] + (1 - alpha) * tensor)
    extra = {"training": b.manifest.get("training", {}),
             "interpolation": {"a": a_dir, "b": b_dir, "alpha": alpha,
                               "a_model_id": a.manifest["model_id"],
                               "b_model_id": b.manifest["model_id"]}}
    save_model(b.model, b.encoder, out, b.manifest["base"], model_id,
               dtype=b.manifest.get("weights_dtype", "float16"), extra=extra, task=b.manifest["task"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--alpha", type=float, default=0.5, help="the weight of A")
    parser.add_argument("--out", required=True)
    parser.add_argument("--model-id", required=True)
    args = parser.parse_args(argv)
    with torch.no_grad():
        interpolate(args.a, args.b, args.alpha, args.out, args.model_id)
    print(json.dumps({"out": args.out, "alpha": args.alpha}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
