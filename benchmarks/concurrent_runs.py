"""Concurrent runs into one output: do all their rows survive? With and without the commit lock.

Starts `--runs` `stancebeam run` processes at once, each on its own documents of one date, into
one output, for `--rounds` rounds (every round rewrites every document), then counts what the
files hold. `--no-lock` runs the same with `transforms.write.commit_lock` replaced by a no-op:
the commit as it was before issue 13.

    .venv/bin/python -m benchmarks.concurrent_runs --config CONFIG --out benchmarks/results/concurrent_runs.json
    .venv/bin/python -m benchmarks.concurrent_runs --commits-only --rounds 20 --out benchmarks/results/concurrent_commits.json

`--commits-only`: the same race without the pipeline: `--runs` processes that only stage and
commit, into one final file, `--rounds` commits each.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
DATE = "2020-01-01"
LAUNCH = """
import contextlib, sys
if sys.argv[1] == "no-lock":
    import stancebeam.transforms.write as w
    w.commit_lock = lambda *a, **k: contextlib.nullcontext()
    w.CommitPartitionFn._remove_leftovers = lambda self, path: None
from stancebeam.pipeline.cli import main
sys.exit(main(["run", *sys.argv[2:]]))
"""


def corpora(folder: Path, runs: int, docs: int) -> list[Path]:
    """`runs` JSONL files of `docs` documents each, all dated DATE, with distinct ids."""
    lines = (ROOT / "data" / "samples" / "wikinews-sample.jsonl").read_text(encoding="utf-8").splitlines()
    short = sorted((json.loads(line) for line in lines), key=lambda r: len(r["text"]))
    out = []
    for r in range(runs):
        path = folder / f"run{r}.jsonl"
        records = [{**short[(r * docs + i) % len(short)], "id": f"run{r}-doc{i}", "date": DATE} for i in range(docs)]
        path.write_text("".join(json.dumps(x) + "\n" for x in records), encoding="utf-8")
        out.append(path)
    return out


def one_setting(lock: bool, config: str, runs: int, docs: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="stancebeam-concurrent-") as tmp:
        tmp = Path(tmp)
        inputs, out = corpora(tmp, runs, docs), tmp / "out"
        per_round = []
        for round_ in range(rounds):
            started = time.time()
            procs = [subprocess.Popen([sys.executable, "-c", LAUNCH, "lock" if lock else "no-lock",
                                       f"--input={path}", f"--output={out}", f"--config={config}"],
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for path in inputs]
            codes = [p.wait() for p in procs]
            seconds = time.time() - started
            con = duckdb.connect()
            found = {t: dict(con.execute(
                f"select doc_id, count(*) from read_parquet('{out}/{t}/**/*.parquet') group by doc_id").fetchall())
                for t in ("documents", "mentions")}
            expected = {f"run{r}-doc{i}" for r in range(runs) for i in range(docs)}
            per_round.append({
                "exit_codes": codes, "seconds": round(seconds, 1),
                "documents_expected": len(expected),
                "documents_found": len(set(found["documents"]) & expected),
                "documents_lost": sorted(expected - set(found["documents"])),
                "documents_twice": sorted(d for d, n in found["documents"].items() if n > 1),
                "documents_without_mentions": sorted(expected - set(found["mentions"])),
            })
        return {"lock": lock, "rounds": per_round}


COMMITTER = """
import contextlib, sys, time
from pathlib import Path
import stancebeam.transforms.write as w
from stancebeam.transforms.elements import TableRow
root, name, rounds, lock = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "lock"
if not lock:
    w.commit_lock = lambda *a, **k: contextlib.nullcontext()
    w.CommitPartitionFn._remove_leftovers = lambda self, path: None

def row(doc_id, title):
    return TableRow("documents", "2020-01-01", {"run_id": name, "model_id": "m", "doc_id": doc_id, "origin": "o",
        "title": title, "date": "2020-01-01", "n_chars": 1, "n_chars_processed": 1, "n_sentences": 1,
        "n_mentions": 0, "n_actors": 0, "n_statements": 0})

commit = w.CommitPartitionFn(str(root))
(root / f"ready-{name}").touch()
while not (root / "go").exists():
    time.sleep(0.01)
started = time.perf_counter()
for r in range(rounds):  # every round: 20 new documents, and the run's first 20 again
    rows = [row(f"{name}-{r}-{i}", "new") for i in range(20)] + [row(f"{name}-0-{i}", f"round {r}") for i in range(20) if r]
    stage = w.StageRowsFn(str(root / "_staging" / f"{name}{r}"), max_rows=1000)
    stage.start_bundle()
    for x in rows:
        list(stage.process(x))
    [(key, value)] = [wv.value for wv in stage.finish_bundle()]
    list(commit.process((key, [value])))
print(time.perf_counter() - started)
"""


def commits_only(lock: bool, runs: int, rounds: int) -> dict:
    """`runs` processes that only stage and commit (no models), all into one final file."""
    with tempfile.TemporaryDirectory(prefix="stancebeam-commits-") as tmp:
        root = Path(tmp)
        names = [f"w{i}" for i in range(runs)]
        procs = [subprocess.Popen([sys.executable, "-c", COMMITTER, str(root), n, str(rounds),
                                   "lock" if lock else "no-lock"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
                 for n in names]
        while len(list(root.glob("ready-*"))) < runs:
            time.sleep(0.05)
        (root / "go").touch()
        seconds = [float(p.communicate()[0].strip() or "nan") for p in procs]
        found = dict(duckdb.connect().execute(
            f"select doc_id, count(*) from read_parquet('{root}/documents/**/*.parquet') group by doc_id").fetchall())
        expected = {f"{n}-{r}-{i}" for n in names for r in range(rounds) for i in range(20)}
        return {"lock": lock, "commits": runs * rounds, "seconds_per_writer": [round(x, 2) for x in seconds],
                "documents_expected": len(expected), "documents_lost": len(expected - set(found)),
                "documents_twice": sum(1 for n in found.values() if n > 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="pipeline config (e.g. pointing at the tiny test models)")
    parser.add_argument("--commits-only", action="store_true",
                        help="writers that only stage and commit (no pipeline, no models): quick")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--docs", type=int, default=4, help="documents per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings", default="lock,no-lock")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.commits_only:
        result = {"load_average": os.getloadavg(), "writers": args.runs, "rounds": args.rounds,
                  "settings": [commits_only(s == "lock", args.runs, args.rounds) for s in args.settings.split(",")]}
    else:
        if not args.config:
            parser.error("--config is needed (unless --commits-only)")
        result = {"load_average": os.getloadavg(), "runs": args.runs, "docs_per_run": args.docs,
                  "settings": [one_setting(s == "lock", args.config, args.runs, args.docs, args.rounds)
                               for s in args.settings.split(",")]}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
