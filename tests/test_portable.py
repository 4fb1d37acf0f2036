"""The batch pipeline through the portable runner path (job service + external workers) matches the FnApiRunner."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from stancebeam.pipeline.runner import run
from tests.conftest import ROOT

SAMPLES = ROOT / "data" / "samples"
START_TIMEOUT_S = 60
# Both runs of the samples take about 20 s with the tiny model; a hung job fails the test here.
pytestmark = pytest.mark.timeout(240)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{process.args} did not listen on {port} within {timeout} s:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    """Ends the process and everything it started (its own process group), bounded."""
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)
    else:  # its workers may outlive it
        try:
            os.killpg(process.pid, 9)
        except ProcessLookupError:
            pass


def start(args: list[str], log: Path) -> subprocess.Popen:
    venv_bin = str(Path(sys.executable).parent)
    # The worker pool starts each SDK worker as plain `python` from PATH: it must be this venv's
    # python, and the workers import this project's modules.
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def portable_services(tmp_path_factory):
    """A local job service and an external worker pool, as Flink's or Dataflow's portable path uses."""
    logs = tmp_path_factory.mktemp("portable-logs")
    job_port, pool_port = free_port(), free_port()
    processes = []
    try:
        pool = start(["-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={pool_port}"],
                     logs / "worker_pool.log")
        processes.append(pool)
        jobs = start(["-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(job_port)],
                     logs / "job_service.log")
        processes.append(jobs)
        wait_for_port(pool_port, pool, logs / "worker_pool.log")
        wait_for_port(job_port, jobs, logs / "job_service.log")
        yield job_port, pool_port
    finally:
        for process in reversed(processes):
            stop(process)


def run_samples(out: Path, config: Path, *runner_args: str) -> Path:
    assert run([f"--input={SAMPLES / '*'}", f"--output={out}", f"--config={config}", *runner_args]) == 0
    return out


QUERIES = {
    "documents": "select doc_id, origin, n_mentions, n_actors from {}",
    "mentions": "select doc_id, mention_id, actor_id, round(score, 4) from {}",
    "actor_sentiment": "select doc_id, actor_id, n_mentions, round(score, 4), label from {}",
    "actor_stance": "select doc_id, holder_id, target_id, n_statements, round(score, 4), stance from {}",
}


def rows(out: Path, table: str) -> list[tuple]:
    source = f"read_parquet('{out}/{table}/**/*.parquet', hive_partitioning=true)"
    return sorted(duckdb.sql(QUERIES[table].format(source)).fetchall())


def test_portable_runner_gives_the_same_tables_as_the_direct_runner(tmp_path, tiny_config, portable_services):
    job_port, pool_port = portable_services
    portable = run_samples(tmp_path / "portable", tiny_config, "--runner=PortableRunner",
                           f"--job_endpoint=127.0.0.1:{job_port}", "--environment_type=EXTERNAL",
                           f"--environment_config=127.0.0.1:{pool_port}", "--run-id=portable")
    direct = run_samples(tmp_path / "direct", tiny_config, "--run-id=direct")
    for table in QUERIES:
        got, expected = rows(portable, table), rows(direct, table)
        assert got == expected, table
    assert len(rows(direct, "documents")) == 25 and len(rows(direct, "mentions")) > 100
