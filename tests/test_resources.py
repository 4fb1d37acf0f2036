"""Resource references: packaged data, models on a Beam filesystem (fetched, verified, cached once)."""
import pickle
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from stancebeam.classifier import resources
from stancebeam.classifier.artifacts import MANIFEST, WEIGHTS, ModelLoadError, load_model, read_manifest
from stancebeam.classifier.resources import ResourceError, resolve_dir, resolve_file
from stancebeam.pipeline.config import load_config
from tests.conftest import ROOT
from tests.memfs import MemoryFileSystem

SHIPPED = "package:models/tsc-minilm"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("STANCEBEAM_CACHE", str(root))
    return root


@pytest.fixture
def store():
    MemoryFileSystem.objects.clear()
    MemoryFileSystem.reads.clear()
    yield MemoryFileSystem
    MemoryFileSystem.objects.clear()


def test_default_config_names_packaged_resources():
    config = load_config()
    assert config["model"]["dir"] == SHIPPED
    assert config["model"]["stance_dir"] == "package:models/stance-minilm"
    assert config["nlp"]["gazetteer"] == "package:configs/actors.yaml"
    assert Path(resolve_file(config["nlp"]["gazetteer"])).is_file()
    assert (Path(resolve_dir(SHIPPED)) / MANIFEST).is_file()


def test_what_the_launcher_pickles_names_no_launcher_path():
    from stancebeam.pipeline.builder import job_settings
    from stancebeam.pipeline.options import validate

    options = PipelineOptions(["--input=x", "--output=y"])
    settings = job_settings(load_config(), validate(options))
    assert (settings.model_dir, settings.gazetteer) == (SHIPPED, "package:configs/actors.yaml")
    assert str(ROOT).encode() not in pickle.dumps(settings)


def test_user_config_paths(tmp_path):
    path = tmp_path / "conf" / "mine.yaml"
    path.parent.mkdir()
    path.write_text("model:\n  dir: models/m\n  stance_dir: gs://b/stance\n"
                    "nlp:\n  gazetteer: package:configs/actors.yaml\n")
    config = load_config(path)
    # A relative local path is relative to the file, made absolute at launch; references stay.
    assert config["model"]["dir"] == str(tmp_path / "conf" / "models" / "m")
    assert config["model"]["stance_dir"] == "gs://b/stance"
    assert config["nlp"]["gazetteer"] == "package:configs/actors.yaml"


def test_config_on_a_beam_filesystem(store):
    store.objects["memtest://b/conf/c.yaml"] = b"model:\n  dir: models/m\nnlp:\n  gazetteer: /abs/a.yaml\n"
    config = load_config("memtest://b/conf/c.yaml")
    assert config["model"]["dir"] == "memtest://b/conf/models/m"
    assert config["nlp"]["gazetteer"] == "/abs/a.yaml"


def test_missing_references_fail_clearly():
    with pytest.raises(ModelLoadError, match="no-such-model is not installed"):
        read_manifest("package:models/no-such-model")
    with pytest.raises(ResourceError, match="no package data folder"):
        resolve_dir("package:nothing/here")
    with pytest.raises(ResourceError, match="does not exist"):
        resolve_file("package:configs/no-such.yaml")


def test_model_on_a_beam_filesystem_is_fetched_verified_and_cached_once(tiny_model_dir, cache, store):
    uri = store.upload(tiny_model_dir, "memtest://bucket/models/tiny")
    # The launcher reads only the manifest, and caches nothing.
    assert read_manifest(uri)["model_id"] == "tiny-test"
    assert not cache.exists()

    loaded = load_model(uri)
    local = Path(loaded.model_dir)
    assert local.parent == cache / "models" and loaded.model_id == "tiny-test"
    assert (local / "encoder" / "config.json").is_file()  # subfolders come along
    weights = f"{uri}/{WEIGHTS}"
    assert store.reads[weights] == 1

    assert load_model(uri).model_dir == str(local)  # a second load finds the cached copy
    assert store.reads[weights] == 1
    assert [p.name for p in local.parent.iterdir()] == [local.name]  # no temporary folders left


def test_corrupt_remote_model_fails_and_leaves_no_cache(tiny_model_dir, cache, store):
    uri = store.upload(tiny_model_dir, "memtest://bucket/models/bad")
    data = bytearray(store.objects[f"{uri}/{WEIGHTS}"])
    data[-1] ^= 0xFF
    store.objects[f"{uri}/{WEIGHTS}"] = bytes(data)
    with pytest.raises(ModelLoadError, match="does not match the weights_sha256"):
        load_model(uri)
    assert not list((cache / "models").iterdir())


def test_remote_file_is_cached_by_content(cache, store):
    store.objects["memtest://b/actors.yaml"] = b"countries: []\n"
    first = resolve_file("memtest://b/actors.yaml")
    assert Path(first).read_bytes() == b"countries: []\n" and Path(first).name == "actors.yaml"
    assert resolve_file("memtest://b/actors.yaml") == first
    store.objects["memtest://b/actors.yaml"] = b"people: []\n"  # new content, new copy
    assert resolve_file("memtest://b/actors.yaml") != first


def test_a_process_that_loses_the_race_keeps_the_winners_copy(tmp_path):
    final, tmp = tmp_path / "final", tmp_path / "tmp"
    for folder, text in ((final, "winner"), (tmp, "loser")):
        folder.mkdir()
        (folder / "f").write_text(text)
    assert resources._publish(tmp, final) == final
    assert (final / "f").read_text() == "winner" and not tmp.exists()


def test_local_paths_are_used_as_they_are(tiny_model_dir, tmp_path, monkeypatch):
    assert resolve_dir(str(tiny_model_dir)) == str(tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    assert resources.normalise("m") == str(tmp_path / "m")  # --model-dir m, made absolute at launch
