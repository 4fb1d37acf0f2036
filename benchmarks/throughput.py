"""How fast is the pipeline, against how fast its models could go? One run, side by side.

The *limit* is the models' own work on the corpus with nothing around it: the spaCy pass
(`ActorExtractor.analyse` in batches; the bare `nlp.pipe` with the same components is timed too),
then tokenisation (`TargetClassifier.encode`) and the classifier forward pass
(`predict_encoded`, batched by length) on exactly the classification inputs the pipeline makes
(`transforms.classify.to_examples`). All of it in this process on one thread. A pipeline run
cannot beat its limit on one thread; the gap is what Beam, serialisation, batching and start-up
cost.

The *pipeline* runs are the real command line (`python -m pipeline.cli run`) as a subprocess on
the FnApiRunner: 1 process with 1 thread (fp32 PyTorch), 2 worker processes with 1 thread each,
and 1 process with the int8 ONNX fast path (built before timing; its export time is reported
apart). Each reports wall time and the peak RSS of its whole process tree (polled every 0.2 s,
summed over the tree). The classifier alone compares fp32 and int8 on the same encoded inputs,
and both backends' dev-rw macro-F1 shows what the fast path costs in quality.

    .venv/bin/python -m benchmarks.throughput --docs 500 --out benchmarks/results/throughput.json

Timings mean something only on a quiet machine: the JSON records the load average before and
after, and the table warns when it was high.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import (BUSY_LOAD, DEFAULT_DEV, DEFAULT_NEWS, ROOT, build_corpus, classification_inputs,
                                last_json_line, machine_info, measure_spacy, no_pairs_config, one_thread_config,
                                one_thread_here, pair_inputs,
                                quiet_libraries, read_corpus, run_monitored, source_documents, subprocess_env, timed,
                                write_corpus)
from stancebeam.transforms.elements import Document


@dataclasses.dataclass(frozen=True)
class PipelineRun:
    """One configuration of the real pipeline, run as a subprocess."""

    label: str
    backend: str
    beam_args: tuple[str, ...]
    no_pairs: bool = False  # stance.max_pairs_per_sentence 0: the stance model reads nothing


PIPELINE_RUNS = {
    "torch-1proc": PipelineRun("pipeline torch fp32, 1 proc", "torch", ("--direct_num_workers=1",)),
    "torch-2proc": PipelineRun("pipeline torch fp32, 2 procs", "torch",
                               ("--direct_running_mode=multi_processing", "--direct_num_workers=2")),
    "int8-1proc": PipelineRun("pipeline onnx-int8, 1 proc", "onnx-int8", ("--direct_num_workers=1",)),
    # The pipeline as it was before the stance model: no pairs are classified (cap 0).
    "torch-1proc-nopairs": PipelineRun("pipeline torch fp32, 1 proc, no stance pairs", "torch",
                                       ("--direct_num_workers=1",), no_pairs=True),
}


def measure_classifier(examples: list, model_dir: str, backends=("torch", "onnx-int8")) -> dict:
    """Tokenisation once, then each backend's forward pass on the same encoded inputs, 1 thread."""
    import torch

    from stancebeam.classifier.inference import TargetClassifier

    torch.set_num_threads(1)
    out = {"mentions": len(examples)}
    encoded = None
    for backend in backends:
        clf, load_s, _ = timed(TargetClassifier.from_dir, model_dir, backend=backend, threads=1)
        if encoded is None:
            clf.encode(examples[:8])  # warm-up
            encoded, out["encode_s"], out["encode_cpu_s"] = timed(clf.encode, examples)
            out["tokens"] = sum(len(e) for e in encoded)
        clf.predict_encoded(encoded[:8])  # warm-up: first-call allocations are not work
        _, wall, cpu = timed(clf.predict_encoded, encoded)
        out[backend] = {"load_s": load_s, "forward_s": wall, "forward_cpu_s": cpu,
                        "mentions_per_s": len(encoded) / wall if wall else None}
    return out


def limit_summary(n_docs: int, spacy: dict, classifier: dict, backend: str,
                  stance: dict | None = None) -> dict:
    """The limit of one backend: its seconds, rates and each part's share."""
    parts = {"spacy": spacy["analyse_s"], "tokenise": classifier["encode_s"],
             "forward": classifier[backend]["forward_s"]}
    if stance is not None:
        parts.update({"stance_tokenise": stance["encode_s"], "stance_forward": stance[backend]["forward_s"]})
    seconds = sum(parts.values())
    return {"seconds": seconds, "documents_per_s": n_docs / seconds,
            "mentions_per_s": classifier["mentions"] / seconds,
            "parts_s": parts, "shares": {k: v / seconds for k, v in parts.items()}}


def measure_limit(documents: list[Document], model_dir: str, config: dict,
                  backends=("torch", "onnx-int8"), stance_model_dir: str | None = None) -> dict:
    """spaCy, the sentiment model and (with `stance_model_dir`) the stance model, each alone.

    `by_backend` is the limit of the whole pipeline; `by_backend_nopairs` that of the pipeline
    without the stance step, the baseline of the `torch-1proc-nopairs` run.
    """
    analysed, spacy = measure_spacy(documents, config)
    classifier = measure_classifier(classification_inputs(analysed), model_dir, backends)
    out = {"documents": len(documents), "spacy": spacy, "classifier": classifier,
           "by_backend_nopairs": {b: limit_summary(len(documents), spacy, classifier, b) for b in backends}}
    if stance_model_dir:
        out["stance"] = measure_classifier(pair_inputs(analysed, config), stance_model_dir, backends)
    out["by_backend"] = {b: limit_summary(len(documents), spacy, classifier, b, out.get("stance"))
                         for b in backends}
    return out


def measure_int8_export(model_dir: str) -> dict:
    """Builds the int8 model into the (fresh) cache, timed, so no pipeline run pays for it."""
    from stancebeam.classifier.artifacts import load_model
    from stancebeam.classifier.onnx_export import RECIPE, int8_path

    path, wall, _ = timed(lambda: int8_path(load_model(model_dir)))
    return {"export_s": wall, "recipe": RECIPE.version, "path": str(path),
            "size_mb": path.stat().st_size / 1e6}


def measure_dev(model_dir: str, dev: str, backends=("torch", "onnx-int8")) -> dict:
    from stancebeam.classifier.evaluate import evaluate

    out = {}
    for backend in backends:
        report = evaluate(model_dir, dev, backend, threads=1)
        out[backend] = {k: report[k] for k in ("f1_macro", "accuracy", "n_targets", "targets_per_second")}
    return out


def run_pipeline(spec: PipelineRun, corpus: Path, model_dir: str, workdir: Path, env: dict,
                 timeout: float) -> dict:
    """One pipeline run as a subprocess; its summary line plus our own measurements."""
    output = Path(tempfile.mkdtemp(prefix="out-", dir=workdir))
    cmd = [sys.executable, "-m", "stancebeam.pipeline.cli", "run", "--input", str(corpus), "--output", str(output),
           "--model-dir", model_dir, "--config", str(one_thread_config(workdir / "one-thread.yaml")),
           "--backend", spec.backend, "--run-id", "benchmark", *spec.beam_args]
    if spec.no_pairs:
        cmd[cmd.index("--config") + 1] = str(no_pairs_config(workdir / "no-pairs.yaml"))
    measured = run_monitored(cmd, env, timeout)
    summary = last_json_line(measured.pop("stdout")) if measured["returncode"] == 0 else None
    stderr = measured.pop("stderr")
    result = {"label": spec.label, "backend": spec.backend, "beam_args": list(spec.beam_args), **measured,
              "summary": summary}
    if summary is None:
        result["error"] = "timed out" if measured["timed_out"] else stderr[-3000:]
    return result


def rates(run: dict, limit: dict | None) -> dict:
    """Documents/s and mentions/s over the process's wall time, and the share of the limit reached."""
    summary = run.get("summary") or {}
    docs, mentions, wall = summary.get("documents", 0), summary.get("mentions", 0), run["wall_s"]
    out = {"documents_per_s": docs / wall if wall else None, "mentions_per_s": mentions / wall if wall else None}
    if limit and out["documents_per_s"]:
        out["x_limit"] = out["documents_per_s"] / limit["documents_per_s"]
    return out


def startup_cost(sources: list[Document], model_dir: str, workdir: Path, env: dict, timeout: float) -> dict:
    """The 1-process pipeline on one document: the fixed cost (imports, model loads, graph) in every run."""
    corpus = write_corpus(build_corpus(sources, 1), workdir / "one-document.jsonl")
    run = run_pipeline(PIPELINE_RUNS["torch-1proc"], corpus, model_dir, workdir, env, timeout)
    return {"wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"], "ok": run.get("summary") is not None}


def memory_scan(sizes: list[int], sources: list[Document], model_dir: str, workdir: Path, env: dict,
                timeout_for, baseline: bool = False) -> list[dict]:
    """Peak RSS of the 1-process pipeline at several corpus sizes: flat if nothing accumulates.

    With `baseline`, each size also runs with malloc trimming off (STANCEBEAM_MALLOC_TRIM_S=0,
    see transforms/memory.py), right before the default run, so the two series share conditions.
    """
    spec = PIPELINE_RUNS["torch-1proc"]
    scan = []
    for size in sizes:
        corpus = write_corpus(build_corpus(sources, size), workdir / f"scan-{size}.jsonl")
        for trim in ((False, True) if baseline else (True,)):
            run_env = env if trim else dict(env, STANCEBEAM_MALLOC_TRIM_S="0")
            run = run_pipeline(spec, corpus, model_dir, workdir, run_env, timeout_for(size))
            scan.append({"documents": size, "malloc_trim": trim, "peak_rss_mb": run["peak_rss_mb"],
                         "median_rss_mb": run["median_rss_mb"],
                         "peak_rss_by_quarter_mb": run["peak_rss_by_quarter_mb"], "wall_s": run["wall_s"],
                         "ok": run.get("summary") is not None, **rates(run, None)})
    return scan


def memory_slopes(scan: list[dict], field: str = "peak_rss_mb") -> dict:
    """MB of `field` per extra document, from the smallest to the largest corpus, per series."""
    slopes = {}
    for trim in (True, False):
        rows = sorted((r for r in scan if r["malloc_trim"] == trim and r["ok"]), key=lambda r: r["documents"])
        if len(rows) >= 2 and rows[-1]["documents"] > rows[0]["documents"]:
            slopes["malloc_trim" if trim else "no_trim"] = (
                (rows[-1][field] - rows[0][field]) / (rows[-1]["documents"] - rows[0]["documents"]))
    return slopes


def fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(r: dict) -> None:
    limit, clf = r["limit"], r["limit"]["classifier"]
    print(f"\nstancebeam throughput: {r['documents']} documents, {clf['mentions']} mentions, "
          f"model {r['machine']['model_id']}, 1 thread per process, {r['machine']['cpu_count']} CPUs")
    if max(r["load_average"]["before"][0], r["load_average"]["after"][0]) > BUSY_LOAD:
        print(f"WARNING: load average {r['load_average']}: the machine was busy, timings are unreliable")
    print(f"{'':34} {'seconds':>8} {'docs/s':>8} {'mentions/s':>10} {'x limit':>8} {'peak RSS MB':>11}")
    for key, suffix in (("by_backend", ""), ("by_backend_nopairs", ", no pairs")):
        for backend, lim in limit.get(key, {}).items():
            print(f"{'limit ' + backend + suffix:34} {lim['seconds']:>8.1f} {lim['documents_per_s']:>8.2f} "
                  f"{lim['mentions_per_s']:>10.1f} {1.0:>8.2f} {'-':>11}")
    for run in r["pipeline"].values():
        print(f"{run['label']:34} {run['wall_s']:>8.1f} {fmt(run.get('documents_per_s'), '.2f'):>8} "
              f"{fmt(run.get('mentions_per_s')):>10} {fmt(run.get('x_limit'), '.2f'):>8} "
              f"{run['peak_rss_mb']:>11.0f}" + ("" if run.get("summary") else f"  FAILED: {run.get('error', '')[-200:]}"))
    torch_limit = limit["by_backend"]["torch"]
    shares = ", ".join(f"{k} {v:.0%}" for k, v in torch_limit["shares"].items())
    print(f"\nlimit (torch) parts: {shares}; bare nlp.pipe {limit['spacy']['nlp_pipe_s']:.1f} s of "
          f"{limit['spacy']['analyse_s']:.1f} s spaCy analyse")
    for backend in ("torch", "onnx-int8"):
        if backend in clf:
            dev = r.get("dev", {}).get(backend, {})
            print(f"classifier alone {backend:10} {clf[backend]['mentions_per_s']:>7.1f} mentions/s  "
                  f"dev-rw macro-F1 {fmt(dev.get('f1_macro'), '.4f')}")
    stance = limit.get("stance")
    for backend in ("torch", "onnx-int8"):
        if stance and backend in stance:
            print(f"stance model alone {backend:8} {stance[backend]['mentions_per_s']:>7.1f} pairs/s "
                  f"({stance['mentions']} pairs)")
    if r.get("int8_export"):
        print(f"int8 export (one-off, not in any timing): {r['int8_export']['export_s']:.1f} s, "
              f"recipe {r['int8_export']['recipe']}")
    if r.get("startup"):
        print(f"start-up (1-proc torch pipeline on 1 document): {r['startup']['wall_s']:.1f} s, "
              f"included in every pipeline run's seconds above")
    print("ratios: " + ", ".join(f"{k} {fmt(v, '.2f')}" for k, v in r["ratios"].items()))
    for row in r.get("memory_scan", []):
        print(f"memory scan: {row['documents']:>6} documents{'' if row['malloc_trim'] else ' (no trim)'} -> "
              f"peak RSS {row['peak_rss_mb']:.0f} MB, median {row['median_rss_mb']:.0f} MB, "
              f"peak by quarter of the run {row['peak_rss_by_quarter_mb']} MB "
              f"({row['wall_s']:.0f} s{'' if row['ok'] else ', FAILED'})")
    for measure, slopes in r.get("memory_slope_mb_per_doc", {}).items():
        for series, slope in slopes.items():
            print(f"memory slope, {measure} RSS ({series}): {slope:.3f} MB per extra document")


def ratio(a, b):
    return a / b if a and b else None


def ratios(r: dict) -> dict:
    runs, clf = r["pipeline"], r["limit"]["classifier"]

    def docs_per_s(name):
        return runs.get(name, {}).get("documents_per_s")

    return {"2proc_over_1proc": ratio(docs_per_s("torch-2proc"), docs_per_s("torch-1proc")),
            "int8_over_fp32_pipeline": ratio(docs_per_s("int8-1proc"), docs_per_s("torch-1proc")),
            "int8_over_fp32_classifier": ratio(clf.get("onnx-int8", {}).get("mentions_per_s"),
                                               clf.get("torch", {}).get("mentions_per_s")),
            "with_pairs_over_no_pairs": ratio(docs_per_s("torch-1proc"), docs_per_s("torch-1proc-nopairs")),
            "torch_1proc_x_limit": runs.get("torch-1proc", {}).get("x_limit")}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="benchmarks.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=500, help="corpus size (sources are cycled)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/throughput.json"))
    parser.add_argument("--model-dir", default=None, help="model directory (default: the config's)")
    parser.add_argument("--news", default=str(DEFAULT_NEWS), help="news JSONL the corpus is drawn from")
    parser.add_argument("--dev", default=str(DEFAULT_DEV), help="dev set for macro-F1 ('' to skip)")
    parser.add_argument("--runs", default=",".join(PIPELINE_RUNS),
                        help=f"pipeline runs, comma-separated, of {','.join(PIPELINE_RUNS)} ('' for none)")
    parser.add_argument("--no-startup", dest="startup", action="store_false",
                        help="skip the 1-document run that measures the fixed start-up cost")
    parser.add_argument("--memory-scan", default="", help="corpus sizes for the peak-RSS scan, e.g. 500,2000")
    parser.add_argument("--memory-baseline", action="store_true",
                        help="in the memory scan, also run each size with malloc trimming off")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per pipeline run (default: 300 + 3 per document)")
    args = parser.parse_args(argv)
    if args.docs < 1:
        parser.error("--docs must be at least 1")
    args.runs = [r for r in args.runs.split(",") if r]
    unknown = set(args.runs) - set(PIPELINE_RUNS)
    if unknown:
        parser.error(f"unknown --runs {sorted(unknown)}; choose from {list(PIPELINE_RUNS)}")
    args.memory_scan = [int(s) for s in args.memory_scan.split(",") if s.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    from stancebeam.pipeline.config import load_config

    config = load_config()
    from stancebeam.classifier.resources import resolve_dir

    # Local folders: the pipeline subprocesses get the same paths (a package: reference would too).
    model_dir = resolve_dir(args.model_dir or config["model"]["dir"])
    config["model"]["stance_dir"] = resolve_dir(config["model"]["stance_dir"])

    def timeout_for(n):
        return args.timeout or 300 + 3 * n

    report = {"documents": args.docs, "machine": machine_info(model_dir),
              "load_average": {"before": os.getloadavg()}, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with tempfile.TemporaryDirectory(prefix="stancebeam-bench-") as tmp:
        workdir = Path(tmp)
        os.environ["STANCEBEAM_CACHE"] = str(workdir / "cache")  # a fresh cache: the export is timed
        sources = source_documents(Path(args.news))
        corpus = write_corpus(build_corpus(sources, args.docs), workdir / "corpus.jsonl")
        documents = read_corpus(corpus)
        report["corpus"] = {"news": args.news, "distinct_sources": len(sources),
                            "characters": sum(len(d.text) for d in documents)}
        report["int8_export"] = measure_int8_export(model_dir)
        with one_thread_here():
            report["limit"] = measure_limit(documents, model_dir, config,
                                            stance_model_dir=config["model"]["stance_dir"])
            if args.dev:
                report["dev"] = measure_dev(model_dir, args.dev)
        env = subprocess_env(workdir / "cache")
        report["pipeline"] = {}
        for name in args.runs:
            spec = PIPELINE_RUNS[name]
            run = run_pipeline(spec, corpus, model_dir, workdir, env, timeout_for(args.docs))
            limits = report["limit"]["by_backend_nopairs" if spec.no_pairs else "by_backend"]
            run.update(rates(run, limits[spec.backend]))
            report["pipeline"][name] = run
        if args.startup:
            report["startup"] = startup_cost(sources, model_dir, workdir, env, timeout_for(1))
        if args.memory_scan:
            report["memory_scan"] = memory_scan(args.memory_scan, sources, model_dir, workdir, env, timeout_for,
                                                args.memory_baseline)
            report["memory_slope_mb_per_doc"] = {
                "peak": memory_slopes(report["memory_scan"]),
                "median": memory_slopes(report["memory_scan"], "median_rss_mb")}
    report["ratios"] = ratios(report)
    report["load_average"]["after"] = os.getloadavg()
    print_report(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0 if all(run.get("summary") for run in report["pipeline"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
