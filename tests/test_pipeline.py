"""The whole batch pipeline on fixtures: tables, the row-count invariant, reruns, bad input."""
import shutil

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from stancebeam.pipeline.runner import run
from tests.conftest import DATA, ROOT
from stancebeam.transforms.schemas import TABLES

SAMPLES = ROOT / "data" / "samples"
# Typed, so that a table holding only undated rows still reads (see docs/tables.md).
DATE_PARTITIONING = ds.partitioning(pa.schema([("published_date", pa.date32())]), flavor="hive")


def count_inputs(folder):
    """Input documents as a user counts them: a text file is one, a JSONL line is one."""
    n = 0
    for path in folder.iterdir():
        if path.suffix == ".jsonl":
            n += sum(1 for line in path.read_bytes().splitlines() if line.strip())
        else:
            n += 1
    return n


def run_pipeline(tmp_path, inputs, config, *extra):
    out = tmp_path / "out"
    argv = [f"--input={p}" for p in inputs] + [f"--output={out}", f"--config={config}", *extra]
    assert run(argv) == 0
    return out


def table(out, name):
    return duckdb.sql(f"select * from read_parquet('{out}/{name}/**/*.parquet', hive_partitioning=true)")


def scalar(sql):
    return duckdb.connect().execute(sql).fetchone()[0]


def count(out, name, where="true"):
    return scalar(f"select count(*) from read_parquet('{out}/{name}/**/*.parquet', hive_partitioning=true) "
                  f"where {where}")


@pytest.fixture(scope="module")
def mixed_input(tmp_path_factory):
    """Sample corpus, format variants and corrupt files in one folder."""
    folder = tmp_path_factory.mktemp("input")
    for src in [*SAMPLES.iterdir(), *(DATA / "corpus").iterdir(), *(DATA / "corrupt").iterdir()]:
        shutil.copy(src, folder / src.name)
    return folder


@pytest.fixture(scope="module")
def output(tmp_path_factory, mixed_input, tiny_config):
    return run_pipeline(tmp_path_factory.mktemp("run"), [mixed_input / "*"], tiny_config, "--run-id=test-run")


def test_every_input_document_is_accounted_for(output, mixed_input):
    documents = count(output, "documents")
    rejected = scalar(f"select count(distinct origin) from read_parquet('{output}/errors/**/*.parquet') "
                      "where severity = 'rejected'")
    assert documents == 24 + 1 + 5 + 1  # samples, kim article, corpus, the good line in mixed.jsonl
    assert documents + rejected == count_inputs(mixed_input)


def test_errors_carry_origin_stage_reason_and_excerpt(output):
    rows = table(output, "errors").fetchall()
    cols = table(output, "errors").columns
    errors = [dict(zip(cols, r)) for r in rows]
    by_file = {e["origin"].split("/")[-1]: e for e in errors}
    assert by_file["binary.txt"]["stage"] == "read" and "binary" in by_file["binary.txt"]["reason"]
    assert "UTF-8" in by_file["latin1.txt"]["reason"]
    assert by_file["broken.parquet"]["stage"] == "read"
    assert "malformed JSON" in by_file["mixed.jsonl:2"]["reason"]
    assert by_file["variant-bad-date.txt"]["severity"] == "warning"
    assert all(e["run_id"] == "test-run" and e["reason"] for e in errors)


def test_tables_have_explicit_schemas_partitions_and_ids(output):
    for name, schema in TABLES.items():
        data = ds.dataset(output / name, partitioning=DATE_PARTITIONING).to_table()
        assert data.num_rows > 0, name
        for field in schema:
            assert data.schema.field(field.name).type == field.type, (name, field.name)
    assert count(output, "documents", "published_date = DATE '2021-07-01'") == 1
    assert count(output, "documents", "published_date is null") == 2  # no date, invalid date
    assert count(output, "mentions", "model_id <> 'tiny-test' or run_id <> 'test-run'") == 0
    assert count(output, "mentions", "actor_id = 'person:kim_jong_un'") >= 5


def test_rerun_into_the_same_output_does_not_duplicate(tmp_path, tiny_config):
    out = run_pipeline(tmp_path, [SAMPLES / "*"], tiny_config)
    before = {t: count(out, t) for t in ("documents", "mentions", "actor_stance")}
    run_pipeline(tmp_path, [SAMPLES / "*"], tiny_config)
    after = {t: count(out, t) for t in ("documents", "mentions", "actor_stance")}
    assert before == after and before["documents"] == 25


def test_two_worker_processes_give_the_same_tables(tmp_path, tiny_config, output):
    out = run_pipeline(tmp_path, [DATA / "corpus" / "*"], tiny_config, "--direct_running_mode=multi_processing",
                       "--direct_num_workers=2")
    query = ("select doc_id, mention_id, actor_id, round(score, 4) from read_parquet('{}/mentions/**/*.parquet') "
             f"where doc_id in (select doc_id from read_parquet('{out}/documents/**/*.parquet')) order by mention_id")
    got = duckdb.sql(query.format(out)).fetchall()
    ref = duckdb.sql(query.format(output)).fetchall()
    assert got == ref and len(got) > 5


def test_bad_arguments_fail_with_a_message(tmp_path, capsys):
    assert run([f"--output={tmp_path}"]) == 2
    assert "--input" in capsys.readouterr().err
    assert run([f"--input={tmp_path}/*.none", f"--output={tmp_path}"]) == 2
    assert "matches no file" in capsys.readouterr().err
    assert run([f"--input={SAMPLES}/*", f"--output={tmp_path}", "--model-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_batch_graph_shuffles_nothing_that_grows_with_the_corpus(tmp_path, tiny_config):
    """The local runner holds every GroupByKey's and Flatten's input in memory, so only small
    values may cross them: file names and ranges, (doc_id, origin) pairs, actor ids, staged file
    names, errors. A new shuffle of documents or rows must be a deliberate change of this list."""
    from apache_beam.portability import common_urns

    from stancebeam.pipeline.builder import build_batch_pipeline, job_settings
    from stancebeam.pipeline.config import load_config
    from stancebeam.pipeline.options import validate
    from stancebeam.pipeline.runner import make_options

    options = make_options([f"--input={tmp_path}/*", f"--output={tmp_path}/out", f"--config={tiny_config}"])
    settings = job_settings(load_config(str(tiny_config)), validate(options))
    graph = build_batch_pipeline(options, settings).to_runner_api()
    shuffles = {t.unique_name for t in graph.components.transforms.values()
                if t.spec.urn == common_urns.primitives.GROUP_BY_KEY.urn}
    flattens = {t.unique_name for t in graph.components.transforms.values()
                if t.spec.urn == common_urns.primitives.FLATTEN.urn and len(t.inputs) > 1}
    top = lambda names: {n.split("/")[0] + ("/" + n.split("/")[1] if "/" in n else "") for n in names}  # noqa: E731
    assert top(shuffles) == {
        "ListInputs/SpreadFiles", "SpreadRanges/ReshufflePerKey", "FindDuplicates/GroupOriginsById",
        "DistinctActors/Group", "WriteTables/GroupByFile", "WriteTables/CountFiles",
        "WriteErrors/GroupByFile", "WriteErrors/CountFiles"}, shuffles
    assert flattens == {"FlattenErrors", "Analyse/FlattenAnalysisErrors"}, flattens
