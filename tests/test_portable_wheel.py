"""Workers that cannot see the launcher's checkout still run the pipeline, from the built wheel.

The remote deployments (Dataflow, Flink) run workers from an image with its own install: a
pickled path of the launching machine means nothing there. This test gives the workers that
situation on one machine: the worker pool runs from a separate venv holding only the built wheel
(third-party dependencies are borrowed from the launcher's venv through a .pth file), in a mount
namespace where the checkout's code, configs/ and models/ are empty tmpfs mounts. The launcher
submits from the checkout with the default config, so the workers must find the packaged model
and gazetteer in their own install. The tables must equal the FnApiRunner's.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from stancebeam.pipeline.runner import run
from tests.conftest import ROOT, SAMPLE_ARTICLE
from tests.test_portable import QUERIES, SAMPLES, free_port, rows, stop, wait_for_port

# About 2 minutes on an idle 2-core machine; the bound allows for a machine shared with training.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
# A cold venv importing Beam on a loaded 2-core machine has taken over 60 s to listen.
POOL_START_TIMEOUT_S = 180
# Beam's PortableRunner gives up on a job's state stream after job_server_timeout (300 s by
# default), which a starved machine has reached; the job itself would have finished.
JOB_SERVER_TIMEOUT_S = 900

# What the wheel is built from (as the Dockerfile copies it), and what the workers must not see.
SOURCES = ("pyproject.toml", "README.md", "pipeline", "transforms", "classifier", "analysis",
           "configs", "models")
HIDDEN = ("pipeline", "transforms", "classifier", "analysis", "configs", "models")

# Runs "$@" with empty, read-only tmpfs mounts over the folders given in $HIDE (private mounts:
# the launcher's view is unchanged).
HIDE_AND_EXEC = 'for d in $HIDE; do mount -t tmpfs -o ro,size=1m tmpfs "$d" || exit 97; done; exec "$@"'


def hiding_supported() -> str | None:
    """Why the hidden-checkout worker cannot be set up here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "needs Linux mount namespaces"
    if shutil.which("unshare") is None:
        return "needs util-linux unshare"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            f'mount -t tmpfs tmpfs "{ROOT / "models"}"'],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot mount in a new mount namespace (needs root): {probe.stderr.strip()}"
    return None


def build_wheel(out: Path) -> Path:
    """Builds the wheel from a copy of the sources, offline (the launcher venv's setuptools)."""
    src = out / "src"
    src.mkdir(parents=True)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out / "dist"), str(src)], check=True)
    return next((out / "dist").glob("stancebeam-*.whl"))


def worker_venv(path: Path, wheel: Path) -> Path:
    """A venv with the wheel installed and the launcher's third-party packages on its path.

    A directory named in a .pth file is not scanned for .pth files itself, so the launcher's
    editable-install finder (which maps stancebeam to the checkout) stays inactive here.
    """
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "launcher_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def hidden(python: Path, args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    """Starts `python args` in its own mount namespace with the checkout's folders hidden."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
               HIDE=" ".join(str(ROOT / d) for d in HIDDEN), STANCEBEAM_CACHE=str(cwd / "cache"))
    return subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", HIDE_AND_EXEC,
                             "sh", str(python), *args], cwd=cwd, env=env, **kwargs)


@pytest.fixture(scope="module")
def wheel_workers(tmp_path_factory):
    """(job service port, worker pool port, worker python): workers that see only the wheel."""
    reason = hiding_supported()
    if reason:
        pytest.skip(f"hidden-checkout workers: {reason}")
    tmp = tmp_path_factory.mktemp("wheel-workers")
    python = worker_venv(tmp / "venv", build_wheel(tmp / "build"))
    job_port, pool_port = free_port(), free_port()
    processes = []
    try:
        with open(tmp / "worker_pool.log", "wb") as log:
            pool = hidden(python, ["-m", "apache_beam.runners.worker.worker_pool_main",
                                   f"--service_port={pool_port}"], tmp, stdout=log,
                          stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(pool)
        with open(tmp / "job_service.log", "wb") as log:
            jobs = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                                     "--port", str(job_port)], cwd=tmp, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(jobs)
        wait_for_port(pool_port, pool, tmp / "worker_pool.log", POOL_START_TIMEOUT_S)
        wait_for_port(job_port, jobs, tmp / "job_service.log")
        yield job_port, pool_port, python, tmp
    finally:
        for process in reversed(processes):
            stop(process)


def test_workers_import_the_wheel_and_see_no_checkout(wheel_workers):
    _, _, python, tmp = wheel_workers
    probe = ("import stancebeam.pipeline, pathlib; "
             "from stancebeam.classifier.resources import resolve_dir; "
             "print(stancebeam.pipeline.__file__); print(resolve_dir('package:models/tsc-minilm')); "
             f"print(sorted(p.name for p in pathlib.Path({str(ROOT / 'models')!r}).iterdir()))")
    done = hidden(python, ["-c", probe], tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    code, model, listing = out.splitlines()
    venv_root = str(python.parent.parent)
    assert code.startswith(venv_root) and model.startswith(venv_root)
    assert listing == "[]"  # the checkout's models/ is hidden from the workers


def few_documents(folder: Path, n_jsonl: int = 5) -> Path:
    """The sample article and a few Wikinews records: enough for every table, and quick."""
    folder.mkdir()
    shutil.copy2(SAMPLE_ARTICLE, folder)
    lines = (SAMPLES / "wikinews-sample.jsonl").read_text(encoding="utf-8").splitlines(True)
    (folder / "wikinews.jsonl").write_text("".join(lines[:n_jsonl]), encoding="utf-8")
    return folder


def test_portable_run_with_hidden_checkout_equals_the_direct_run(tmp_path, wheel_workers):
    job_port, pool_port, _, _ = wheel_workers
    common = [f"--input={few_documents(tmp_path / 'input') / '*'}"]
    # The default config: the packaged model and gazetteer, which the workers resolve themselves.
    assert run([*common, f"--output={tmp_path / 'portable'}", "--runner=PortableRunner",
                f"--job_endpoint=127.0.0.1:{job_port}", f"--job_server_timeout={JOB_SERVER_TIMEOUT_S}",
                "--environment_type=EXTERNAL", f"--environment_config=127.0.0.1:{pool_port}",
                "--run-id=portable"]) == 0
    assert run([*common, f"--output={tmp_path / 'direct'}", "--run-id=direct"]) == 0
    for table in QUERIES:
        assert rows(tmp_path / "portable", table) == rows(tmp_path / "direct", table), table
    assert len(rows(tmp_path / "direct", "documents")) == 6
    assert len(rows(tmp_path / "direct", "actor_stance")) > 0
