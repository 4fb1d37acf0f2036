"""A compact, canonical dump of every output table, to compare the rows of two pipeline versions.

`python -m tests.golden` runs this checkout's pipeline on `golden_input` with the tiny test
models (seed 0: the same weights in every process) and rewrites GOLDEN; tests/test_golden.py
re-runs it and compares. Canonical means: run_id and analysed_at dropped, the input folder replaced by
`<input>`, error_id checked then dropped (it hashes the absolute origin), floats rounded, long
strings replaced by a prefix and a digest, rows sorted.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from stancebeam.transforms.elements import stable_hash
from stancebeam.transforms.schemas import TABLES, VERSION_COLUMN
from tests.conftest import DATA, ROOT, corpus_texts

GOLDEN = DATA / "golden" / "mixed-tiny.json.gz"
DIGITS = 5
LONG = 40  # longer strings are stored as a digest: the dump stays small, equality still checked
SAMPLE_LINES = 3  # of data/samples/wikinews-sample.jsonl
PARTITIONING = ds.partitioning(pa.schema([("published_date", pa.date32())]), flavor="hive")


def golden_input(folder: Path) -> Path:
    """The reference article, the first JSONL sample lines, the format variants and corrupt files."""
    folder.mkdir(parents=True, exist_ok=True)
    samples = ROOT / "data" / "samples"
    shutil.copy(samples / "2021-07-01-kim-xi-message.txt", folder)
    lines = (samples / "wikinews-sample.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "wikinews-sample.jsonl").write_text("".join(lines[:SAMPLE_LINES]), encoding="utf-8")
    for src in [*(DATA / "corpus").iterdir(), *(DATA / "corrupt").iterdir()]:
        shutil.copy(src, folder / src.name)
    return folder


def _canonical(value, input_prefix: str):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, DIGITS)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        value = value.replace(input_prefix, "<input>")
        if len(value) > LONG:
            return f"{value[:20]}…#{hashlib.sha256(value.encode()).hexdigest()[:10]}"
        return value
    if isinstance(value, list):
        return [_canonical(v, input_prefix) for v in value]
    if isinstance(value, dict):
        return [_canonical(v, input_prefix) for v in value.values()]
    return value


def canonical_tables(out: Path, input_folder: Path) -> dict[str, dict]:
    """Every table under `out` as {"columns": [...], "rows": [[...], ...]}, canonical."""
    prefix = str(input_folder).rstrip("/")
    tables = {}
    for name in TABLES:
        data = ds.dataset(out / name, partitioning=PARTITIONING).to_table()
        columns = [c for c in data.column_names if c not in ("run_id", "error_id", VERSION_COLUMN)]
        rows = []
        for row in data.to_pylist():
            if name == "errors":
                assert row["error_id"] == stable_hash(row["origin"], row["stage"], row["reason"], length=20)
            rows.append([_canonical(row[c], prefix) for c in columns])
        tables[name] = {"columns": columns, "rows": sorted(rows, key=lambda r: json.dumps(r, ensure_ascii=False))}
    return tables


def differences(got, want, path: str = "", tolerance: float = 2 * 10 ** -DIGITS) -> list[str]:
    """Where two canonical dumps differ; floats are compared within `tolerance`."""
    if isinstance(want, float) and isinstance(got, (int, float)):
        return [] if abs(got - want) <= tolerance else [f"{path}: {got} != {want}"]
    if isinstance(want, dict) and isinstance(got, dict):
        if got.keys() != want.keys():
            return [f"{path}: keys {sorted(got)} != {sorted(want)}"]
        return [d for k in want for d in differences(got[k], want[k], f"{path}.{k}", tolerance)]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} items != {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in differences(g, w, f"{path}[{i}]", tolerance)]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


def run_golden(base: Path, model_dir: Path, stance_model_dir: Path) -> dict[str, dict]:
    """Runs the batch pipeline on `golden_input` with the two models; the canonical tables."""
    from stancebeam.pipeline.runner import run

    config = base / "config.yaml"
    config.write_text(f"model:\n  dir: {model_dir}\n  stance_dir: {stance_model_dir}\n"
                      "  max_batch_size: 64\n")
    folder = golden_input(base / "input")
    out = base / "out"
    assert run([f"--input={folder}/*", f"--output={out}", f"--config={config}", "--run-id=golden"]) == 0
    return canonical_tables(out, folder)


def write_golden(tables: dict, path: Path = GOLDEN) -> None:
    """One line per row, so that a regenerated dump diffs readably once unzipped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["{"]
    for i, (name, table) in enumerate(sorted(tables.items())):
        lines.append(f'{json.dumps(name)}: {{"columns": {json.dumps(table["columns"])}, "rows": [')
        lines.append(",\n".join(json.dumps(r, ensure_ascii=False) for r in table["rows"]))
        lines.append("]}" + ("," if i < len(tables) - 1 else ""))
    lines.append("}")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def read_golden(path: Path = GOLDEN) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


if __name__ == "__main__":
    from tests.tiny_model import build_tiny_model

    base = Path(tempfile.mkdtemp(prefix="stancebeam-golden-"))
    write_golden(run_golden(base, build_tiny_model(base / "model", corpus_texts()),
                            build_tiny_model(base / "stance-model", corpus_texts(), task="stance")))
    print({name: len(t["rows"]) for name, t in read_golden().items()}, GOLDEN.stat().st_size, "bytes")
