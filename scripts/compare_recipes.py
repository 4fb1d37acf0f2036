"""Trains training recipes over several seeds and scores each on a held-out fold of train.

    python scripts/compare_recipes.py --work runs/sent --recipes baseline,others --seeds 1,2,3
    python scripts/compare_recipes.py --work runs/sent --summary
    python scripts/compare_recipes.py --work runs/sent --ensemble baseline

The fold comes from `stancebeam split` (whole articles; `WORK/split/`). Every run trains on
`fit.jsonl` with `--select last` (no checkpoint is picked on anything), then the reloaded artifact
is scored on the held-out fold, on its multi-target sentences alone (the kind test-mt holds), and,
as a final look only, on dev-rw and dev-mt. One JSON line per run goes to WORK/results.jsonl;
finished runs are skipped, so the script can be stopped and started again.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

DATA = Path("../shared/data/newsmtsc")
COMMON = ["--task", "sentiment", "--scheme", "markers", "--epochs", "3", "--lr", "4e-5",
          "--label-smoothing", "0.1", "--batch-size", "32", "--select", "last",
          "--evals-per-epoch", "1"]
# Each recipe: the arguments it adds to (or overrides in) COMMON.
RECIPES = {
    "baseline": [],
    # the sentence's other targets wrapped in their own markers (test-mt is all multi-target)
    "others": ["--scheme", "markers+others"],
}


def multi_target_subset(heldout: Path, out: Path) -> Path:
    lines = [line for line in heldout.read_text(encoding="utf-8").splitlines()
             if line.strip() and len(json.loads(line)["targets"]) > 1]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def scored_sets(work: Path) -> dict[str, Path]:
    """The sets every run is scored on, the multi-target part of the fold written once."""
    heldout = work / "split" / "heldout.jsonl"
    return {"heldout": heldout,
            "heldout_multi": multi_target_subset(heldout, work / "heldout-multi.jsonl"),
            "dev_rw": DATA / "dev-rw.jsonl", "dev_mt": DATA / "dev-mt.jsonl"}


def scores(models: list[Path], sets: dict[str, Path]) -> dict[str, dict]:
    """Each set's macro-F1, accuracy and size for the models' mean probabilities (one model: its
    own), through the pipeline's loading and inference code; each model is loaded once."""
    import numpy as np

    from stancebeam.classifier.inference import TargetClassifier
    from stancebeam.classifier.metrics import classification_report
    from stancebeam.classifier.tasks import read_newsmtsc

    classifiers = [TargetClassifier.from_dir(str(p)) for p in models]
    out = {}
    for name, path in sets.items():
        examples, gold = read_newsmtsc(path)
        probs = np.mean([c.predict_proba(examples) for c in classifiers], axis=0)
        report = classification_report(gold, probs.argmax(-1), classifiers[0].labels)
        out[name] = {"f1_macro": report["f1_macro"], "accuracy": report["accuracy"], "n": report["n"]}
    return out


def run(work: Path, recipe: str, seed: int, results: Path, sets: dict[str, Path]) -> None:
    split = work / "split"
    out = work / f"{recipe}-s{seed}"
    args = [sys.executable, "-m", "stancebeam.pipeline.cli", "train",
            "--train", str(split / "fit.jsonl"), "--dev", str(split / "heldout.jsonl"),
            "--out", str(out), *COMMON, *RECIPES[recipe], "--seed", str(seed),
            "--model-id", f"tsc-{recipe}-s{seed}"]
    print("+", shlex.join(args), flush=True)
    with open(work / f"{recipe}-s{seed}.log", "w") as log:
        subprocess.run(args, check=True, stdout=log, stderr=subprocess.STDOUT)
    seconds = json.loads((out / "training_log.json").read_text())["seconds"]
    detail = scores([out], sets)
    line = {"recipe": recipe, "seed": seed, "args": RECIPES[recipe], "train_seconds": seconds,
            **{k: v["f1_macro"] for k, v in detail.items()}, "detail": detail}
    with open(results, "a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps({k: v for k, v in line.items() if k != "detail"}), flush=True)


def ensemble(work: Path, recipe: str, sets: dict[str, Path]) -> dict:
    """Macro-F1 of the recipe's seeds averaged (mean probabilities): what distilling them into one
    student could reach at most, measured before paying for the distillation."""
    models = sorted(p for p in work.glob(f"{recipe}-s*") if (p / "training_log.json").exists())
    detail = scores(models, sets)
    return {"recipe": f"{recipe} (ensemble of {len(models)})", "members": [p.name for p in models],
            **{k: v["f1_macro"] for k, v in detail.items()}}


def summary(results: Path) -> str:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    by_recipe: dict[str, list[dict]] = {}
    for row in rows:
        by_recipe.setdefault(row["recipe"], []).append(row)
    cols = ("heldout", "heldout_multi", "dev_rw", "dev_mt")
    out = ["| recipe | seeds | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for recipe, runs in by_recipe.items():
        cells = []
        for col in cols:
            values = [r[col] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
        out.append(f"| {recipe} | {','.join(str(r['seed']) for r in runs)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/sent")
    parser.add_argument("--recipes", default="baseline")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--ensemble", metavar="RECIPE", help="score the mean of RECIPE's seeds")
    args = parser.parse_args(argv)
    work = Path(args.work)
    results = work / "results.jsonl"
    if args.summary:
        print(summary(results))
        return 0
    if not (work / "split" / "heldout.jsonl").exists():
        subprocess.run([sys.executable, "-m", "stancebeam.pipeline.cli", "split", "--data",
                        str(DATA / "train.jsonl"), "--out", str(work / "split")], check=True)
    sets = scored_sets(work)
    if args.ensemble:
        print(json.dumps(ensemble(work, args.ensemble, sets)))
        return 0
    done = set()
    if results.exists():
        done = {(r["recipe"], r["seed"]) for r in map(json.loads, results.read_text().splitlines())}
    # Seeds outside, recipes inside: a comparison cut short still has as many runs of each.
    for seed in map(int, args.seeds.split(",")):
        for recipe in args.recipes.split(","):
            if (recipe, seed) not in done:
                run(work, recipe, seed, results, sets)
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
