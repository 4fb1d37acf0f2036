"""Trains training recipes over several seeds and scores each on a held-out fold of train.

    python scripts/compare_recipes.py --work runs/sent --recipes baseline,others --seeds 1,2,3
    python scripts/compare_recipes.py --work runs/sent --summary
    python scripts/compare_recipes.py --work runs/sent --ensemble baseline
    python scripts/compare_recipes.py --task stance --work runs/stfold --recipes baseline,mtl-ema --seeds 13

The fold comes from `stancebeam split` (whole articles; `WORK/split/`). Every run trains on
`fit.jsonl` with `--select last` (no checkpoint is picked on anything), then the reloaded artifact
is scored on the held-out fold and, as a final look only, on the task's dev sets: for sentiment
the fold's multi-target sentences alone (the kind test-mt holds), dev-rw and dev-mt; for stance
valid, and valid with per-class logit offsets fitted on the fold (`stancebeam calibrate`). One
JSON line per run goes to WORK/results.jsonl; finished runs are skipped, and a run whose model
folder is already trained is only scored, so the script can be stopped and started again.
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
DIRECTED = Path("../shared/data/directed")
# Per task: the labelled train set the fold is cut from, the settings every recipe shares (the
# shipped model's) and each recipe's additions to (or overrides of) them.
TRAIN_DATA = {"sentiment": DATA / "train.jsonl", "stance": DIRECTED / "train.jsonl"}
COMMON = {
    "sentiment": ["--task", "sentiment", "--scheme", "markers", "--epochs", "3", "--lr", "4e-5",
                  "--label-smoothing", "0.1", "--batch-size", "32", "--select", "last",
                  "--evals-per-epoch", "1"],
    "stance": ["--config", "models/stance-minilm/stancebeam_model.json", "--select", "last"],
}
# The distillation recipes' shared part: the fold teachers' soft labels, one batch every second step.
DISTILL_FOLD = ["--distill", "runs/distill/soft_fold.jsonl", "--distill-weight", "1.0",
                "--distill-every", "2"]
RECIPES = {
    "sentiment": {
        "baseline": [],
        # the sentence's other targets wrapped in their own markers (test-mt is all multi-target)
        "others": ["--scheme", "markers+others"],
        # multi-task: directed stance batches through the same encoder
        "mtl": ["--aux-task", "stance", "--aux-train", str(DIRECTED / "train.jsonl"),
                "--aux-weight", "0.5", "--aux-every", "2"],
        # an exponential moving average of the weights, shipped instead of the last step's; the
        # decay gives a window of about 100 steps, a sixth of the fold's ~660 (not tuned)
        "ema": ["--ema", "0.99"],
        # layer-wise learning-rate decay: the head at 6e-5, each layer below 0.85 times the one
        # above (layer 1 at 2.3e-5); the usual values for a 6-layer encoder, not tuned
        "llrd": ["--lr", "6e-5", "--layer-decay", "0.85"],
        # domain-adaptive pretraining: the fine-tune starts from the encoder after masked-LM on
        # the Wikinews articles (`stancebeam adapt --news ../shared/data/news/wikinews.jsonl
        # --out runs/dapt`, 2 epochs)
        "dapt": ["--init-from", "runs/dapt"],
        # llrd (ahead on the multi-target sentences) and ema (ahead on the whole fold), together
        "llrd-ema": ["--lr", "6e-5", "--layer-decay", "0.85", "--ema", "0.99"],
        # R-Drop: each batch twice with different dropout masks, plus the symmetric KL between the
        # two passes at weight 1 (not tuned)
        "rdrop": ["--rdrop", "1.0"],
    },
    "stance": {
        "baseline": [],
        # multi-task with NewsMTSC target sentiment, and an EMA of the weights (the training
        # log scores the live weights beside the average, so the run measures both)
        "mtl-ema": ["--ema", "0.997", "--aux-task", "sentiment", "--aux-train",
                    str(DATA / "train.jsonl"), "--aux-weight", "0.5", "--aux-every", "2"],
        # every example also with e1 and e2 exchanged (none ones too), so the marker order carries
        # no label by itself and the two orders of a pair can be averaged at inference (`_swap_avg`)
        "swap-all": ["--swap-augment", "all"],
        # ensemble distillation: 10,000 news pairs labelled by the four fold models above
        # (baseline and mtl-ema, seeds 13 and 7; `scripts/news_pairs.py`, `stancebeam distill-label`)
        "distill": DISTILL_FOLD,
        # the same with layer-wise learning-rate decay (ahead on multi-target sentences for
        # sentiment): the head at 8e-5, each layer below 0.85 times the one above (not tuned)
        "distill-llrd": [*DISTILL_FOLD, "--lr", "8e-5", "--layer-decay", "0.85"],
        # the same with R-Drop instead (ahead at every seed for sentiment; weight 1, not tuned)
        "distill-rdrop": [*DISTILL_FOLD, "--rdrop", "1.0"],
    },
}


def multi_target_subset(heldout: Path, out: Path) -> Path:
    lines = [line for line in heldout.read_text(encoding="utf-8").splitlines()
             if line.strip() and len(json.loads(line)["targets"]) > 1]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def scored_sets(work: Path, task: str) -> dict[str, Path]:
    """The sets every run is scored on (the fold first), the multi-target part written once."""
    heldout = work / "split" / "heldout.jsonl"
    if task == "stance":
        return {"heldout": heldout, "valid": DIRECTED / "valid.jsonl"}
    return {"heldout": heldout,
            "heldout_multi": multi_target_subset(heldout, work / "heldout-multi.jsonl"),
            "dev_rw": DATA / "dev-rw.jsonl", "dev_mt": DATA / "dev-mt.jsonl"}


def scores(models: list[Path], sets: dict[str, Path], task: str) -> dict[str, dict]:
    """Each set's macro-F1, accuracy and size for the models' mean probabilities (one model: its
    own), through the pipeline's loading and inference code; each model is loaded once. For
    stance, also each set with both orders of every pair averaged (`<set>_swap_avg`) and each later
    set with logit offsets fitted on the fold (`<set>_calibrated`)."""
    import numpy as np

    from stancebeam.classifier.calibration import fit_logit_bias
    from stancebeam.classifier.inference import TargetClassifier, swapped_proba
    from stancebeam.classifier.metrics import classification_report
    from stancebeam.classifier.tasks import get_task

    classifiers = [TargetClassifier.from_dir(str(p)) for p in models]
    out, bias = {}, None
    for name, path in sets.items():
        examples, gold = get_task(task).read(path)
        probs = np.mean([c.predict_proba(examples) for c in classifiers], axis=0)
        report = classification_report(gold, probs.argmax(-1), classifiers[0].labels)
        out[name] = {"f1_macro": report["f1_macro"], "accuracy": report["accuracy"], "n": report["n"]}
        if task != "stance":
            continue
        # Both orders of each pair averaged (the swapped answer mapped back to the original roles).
        swapped = np.mean([swapped_proba(c, examples) for c in classifiers], axis=0)
        report = classification_report(gold, (probs + swapped).argmax(-1), classifiers[0].labels)
        out[f"{name}_swap_avg"] = {"f1_macro": report["f1_macro"], "accuracy": report["accuracy"],
                                   "n": report["n"]}
        log_probs = np.log(np.clip(probs, 1e-12, None))
        if bias is None:  # the first set is the fold: fit there, apply to the others
            bias = fit_logit_bias(log_probs, gold)
            out["logit_bias"] = [float(b) for b in bias]
            continue
        report = classification_report(gold, (log_probs + bias).argmax(-1), classifiers[0].labels)
        out[f"{name}_calibrated"] = {"f1_macro": report["f1_macro"],
                                     "accuracy": report["accuracy"], "n": report["n"]}
    return out


def train_args(work: Path, task: str, recipe: str, seed: int) -> list[str]:
    split = work / "split"
    prefix = {"sentiment": "tsc", "stance": "stfold"}[task]
    return [sys.executable, "-m", "stancebeam.pipeline.cli", "train", *COMMON[task],
            "--train", str(split / "fit.jsonl"), "--dev", str(split / "heldout.jsonl"),
            "--out", str(work / f"{recipe}-s{seed}"), *RECIPES[task][recipe],
            "--seed", str(seed), "--model-id", f"{prefix}-{recipe}-s{seed}"]


def run(work: Path, task: str, recipe: str, seed: int, results: Path, sets: dict[str, Path]) -> None:
    out = work / f"{recipe}-s{seed}"
    if not (out / "training_log.json").exists():
        args = train_args(work, task, recipe, seed)
        print("+", shlex.join(args), flush=True)
        with open(work / f"{recipe}-s{seed}.log", "w") as log:
            subprocess.run(args, check=True, stdout=log, stderr=subprocess.STDOUT)
    seconds = json.loads((out / "training_log.json").read_text())["seconds"]
    detail = scores([out], sets, task)
    line = {"recipe": recipe, "seed": seed, "args": RECIPES[task][recipe], "train_seconds": seconds,
            **{k: v["f1_macro"] for k, v in detail.items() if isinstance(v, dict)},
            "detail": detail}
    with open(results, "a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps({k: v for k, v in line.items() if k != "detail"}), flush=True)


def ensemble(work: Path, task: str, recipe: str, sets: dict[str, Path]) -> dict:
    """Macro-F1 of the recipe's seeds averaged (mean probabilities): what distilling them into one
    student could reach at most, measured before paying for the distillation."""
    models = sorted(p for p in work.glob(f"{recipe}-s*") if (p / "training_log.json").exists())
    detail = scores(models, sets, task)
    return {"recipe": f"{recipe} (ensemble of {len(models)})", "members": [p.name for p in models],
            **{k: v["f1_macro"] for k, v in detail.items() if isinstance(v, dict)}}


def summary(results: Path) -> str:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    by_recipe: dict[str, list[dict]] = {}
    for row in rows:
        by_recipe.setdefault(row["recipe"], []).append(row)
    skip = ("recipe", "seed", "args", "train_seconds", "detail")
    cols = list(dict.fromkeys(k for row in rows for k in row if k not in skip))  # all, in order
    out = ["| recipe | seeds | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for recipe, runs in by_recipe.items():
        cells = []
        for col in cols:
            values = [r[col] for r in runs if col in r]  # runs scored before a column existed lack it
            if not values:
                cells.append("-")
                continue
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
        out.append(f"| {recipe} | {','.join(str(r['seed']) for r in runs)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(COMMON), default="sentiment")
    parser.add_argument("--work", default=None, help="default runs/sent (sentiment), runs/stfold (stance)")
    parser.add_argument("--recipes", default="baseline")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--ensemble", metavar="RECIPE", help="score the mean of RECIPE's seeds")
    args = parser.parse_args(argv)
    task = args.task
    work = Path(args.work or {"sentiment": "runs/sent", "stance": "runs/stfold"}[task])
    results = work / "results.jsonl"
    if args.summary:
        print(summary(results))
        return 0
    if not (work / "split" / "heldout.jsonl").exists():
        subprocess.run([sys.executable, "-m", "stancebeam.pipeline.cli", "split", "--data",
                        str(TRAIN_DATA[task]), "--out", str(work / "split")], check=True)
    sets = scored_sets(work, task)
    if args.ensemble:
        print(json.dumps(ensemble(work, task, args.ensemble, sets)))
        return 0
    done = set()
    if results.exists():
        done = {(r["recipe"], r["seed"]) for r in map(json.loads, results.read_text().splitlines())}
    # Seeds outside, recipes inside: a comparison cut short still has as many runs of each.
    for seed in map(int, args.seeds.split(",")):
        for recipe in args.recipes.split(","):
            if (recipe, seed) not in done:
                run(work, task, recipe, seed, results, sets)
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
