"""Deployment files agree with each other and with Beam: Dockerfile, runner profiles, flex template."""
import json
import re
import tomllib
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import (GoogleCloudOptions, PipelineOptions,
                                                  StandardOptions, WorkerOptions)

from stancebeam.pipeline.profiles import (ProfileError, apply_profile, available_profiles, load_profile,
                               profile_argv)

ROOT = Path(__file__).resolve().parent.parent
ENV_VARS = ("STANCEBEAM_GCP_PROJECT", "STANCEBEAM_GCP_REGION", "STANCEBEAM_GCS_BUCKET",
            "STANCEBEAM_FLINK_MASTER", "STANCEBEAM_IMAGE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def pinned(pyproject, package: str) -> str:
    for dep in pyproject["project"]["dependencies"]:
        m = re.fullmatch(rf"{re.escape(package)}(\[[^\]]*\])?==(\S+)", dep)
        if m:
            return m.group(2)
    raise AssertionError(f"{package} is not pinned in pyproject.toml")


@pytest.fixture(scope="module")
def dockerfile():
    """Dockerfile instructions as (KEYWORD, args) with ${ARG} defaults substituted."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"<<'?EOF'?([^\n]*)\n.*?\nEOF\n", r"\1\n", text, flags=re.S)  # heredoc bodies
    text = text.replace("\\\n", " ")
    args, out = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest)
        if keyword.upper() == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args[name] = value
        out.append((keyword.upper(), rest))
    return out


def instructions(dockerfile, keyword):
    return [rest for kw, rest in dockerfile if kw == keyword]


def test_dockerfile_python_and_beam_match_pyproject(pyproject, dockerfile):
    beam = pinned(pyproject, "apache-beam")
    requires = pyproject["project"]["requires-python"]
    m = re.fullmatch(r">=(\d+)\.(\d+),<(\d+)\.(\d+)", requires.replace(" ", ""))
    assert m, f"requires-python {requires!r} should name one minor version"
    major, minor = int(m.group(1)), int(m.group(2))
    assert (int(m.group(3)), int(m.group(4))) == (major, minor + 1)
    python = f"{major}.{minor}"

    froms = [f.split()[0] for f in instructions(dockerfile, "FROM")]
    assert f"apache/beam_python{python}_sdk:{beam}" in froms
    assert froms[-1] == f"python:{python}-slim"
    launcher = [f for f in froms if "template-launcher" in f]
    assert all(f"python{python.replace('.', '')}-" in f for f in launcher)


def test_dockerfile_installs_cpu_torch_first_and_checks(pyproject, dockerfile):
    runs = instructions(dockerfile, "RUN")
    torch = pinned(pyproject, "torch")
    torch_step = next(i for i, r in enumerate(runs) if f"torch=={torch}" in r)
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch_step]
    project_step = next(i for i, r in enumerate(runs) if re.search(r"pip install \S*stancebeam-\S*\.whl", r))
    assert torch_step < project_step
    assert any("pip check" in r for r in runs[project_step:])


def test_dockerfile_installs_the_wheel_not_the_checkout(dockerfile):
    runs = instructions(dockerfile, "RUN")
    assert any(re.search(r"pip wheel --no-deps -w (\S+) \.", r) for r in runs)
    assert not any(re.search(r"pip install (.* )?(-e|--editable)\b", r) for r in runs)
    # The runtime stage takes only the wheel from the build stage, no source folder.
    stages = " ".join(kw + " " + rest for kw, rest in dockerfile).split("FROM ")
    runtime = stages[-1]
    assert "COPY --from=wheel" in runtime
    assert not re.search(r"COPY (pipeline|transforms|classifier|analysis|configs|models)/", runtime)


def test_package_data_covers_every_shipped_file(pyproject):
    """A file in configs/ or models/ that no package-data pattern matches would be missing from
    the wheel (and so from the image): `package:` references would not find it on a worker."""
    from fnmatch import fnmatch

    setuptools = pyproject["tool"]["setuptools"]
    folders = {package: Path(folder) for package, folder in setuptools["package-dir"].items()}
    for package in ("stancebeam.configs", "stancebeam.models"):
        root = ROOT / folders[package]
        patterns = setuptools["package-data"][package]
        subpackages = {ROOT / f for p, f in folders.items() if p.startswith(package + ".")}
        for path in root.rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            if any(sub in path.parents for sub in subpackages):
                continue  # checked under its own package
            rel = path.relative_to(root).as_posix()
            assert any(fnmatch(rel, pattern) for pattern in patterns), f"{package}: {rel} is not package data"


def test_image_tags_follow_the_package_version(pyproject):
    version = pyproject["project"]["version"]
    texts = {name: (ROOT / name).read_text(encoding="utf-8") for name in
             ("configs/profiles/dataflow.yaml", "configs/profiles/flink.yaml", "Dockerfile",
              "docs/deploy.md")}
    for name, text in texts.items():
        tags = set(re.findall(r"stancebeam[:-](\d+\.\d+\.\d+)", text))
        assert tags == {version}, f"{name} names stancebeam {sorted(tags)}, the package is {version}"


def test_dockerfile_runs_beam_boot_as_non_root(dockerfile):
    users = instructions(dockerfile, "USER")
    assert users, "the image needs a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert instructions(dockerfile, "ENTRYPOINT")[-1] == '["/opt/apache/beam/boot"]'
    env = " ".join(instructions(dockerfile, "ENV"))
    assert "HF_HUB_OFFLINE=1" in env and "TRANSFORMERS_OFFLINE=1" in env


def test_dockerfile_copies_what_the_package_needs(pyproject, dockerfile):
    copied = {src.rstrip("/") for c in instructions(dockerfile, "COPY") if not c.startswith("--")
              for src in c.split()[:-1]}
    folders = {d.split("/")[0] for d in pyproject["tool"]["setuptools"]["package-dir"].values()}
    needed = folders | {"pyproject.toml", "configs", "models"}
    if "readme" in pyproject["project"]:
        needed.add(pyproject["project"]["readme"])
    assert needed <= copied
    ignored = {line.strip().rstrip("/") for line in
               (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    assert not (copied & ignored), "the .dockerignore drops something the Dockerfile copies"


@pytest.mark.parametrize("name", available_profiles())
def test_profile_loads_and_beam_accepts_it(name):
    profile = load_profile(name)
    assert profile["description"].strip() and "\n" not in profile["description"].strip()
    assert profile["options"].get("runner")
    flags = profile_argv(profile)
    options = PipelineOptions(flags)
    assert options.view_as(StandardOptions).runner == profile["options"]["runner"]
    parsed = options.get_all_options()
    for key, value in profile["options"].items():
        assert key in parsed, f"{name}: {key!r} is not a Beam pipeline option"
        if isinstance(value, list):
            assert parsed[key] == [str(v) for v in value]
        else:
            assert str(parsed[key]) == str(value), f"{name}: {key}"


def test_expected_profiles_exist():
    assert {"dataflow", "flink", "local", "portable-local"} <= set(available_profiles())


def test_dataflow_profile_round_trips(monkeypatch):
    monkeypatch.setenv("STANCEBEAM_GCP_PROJECT", "proj-1")
    monkeypatch.setenv("STANCEBEAM_GCP_REGION", "europe-west4")
    monkeypatch.setenv("STANCEBEAM_GCS_BUCKET", "bkt")
    profile = load_profile("dataflow")
    assert profile["unresolved"] == []
    options = PipelineOptions(profile_argv(profile))
    gcp = options.view_as(GoogleCloudOptions)
    worker = options.view_as(WorkerOptions)
    assert (gcp.project, gcp.region, gcp.temp_location) == ("proj-1", "europe-west4", "gs://bkt/tmp")
    assert worker.machine_type == profile["options"]["machine_type"]
    assert worker.sdk_container_image == (
        "europe-west4-docker.pkg.dev/proj-1/stancebeam/stancebeam:0.1.0")
    assert worker.autoscaling_algorithm == "THROUGHPUT_BASED"
    assert "use_runner_v2" in options.get_all_options()["experiments"]


def test_command_line_overrides_profile():
    argv = apply_profile(["--region=asia-east1", "--machine_type=n2-highmem-4"], "dataflow")
    options = PipelineOptions(argv)
    assert options.view_as(GoogleCloudOptions).region == "asia-east1"
    assert options.view_as(WorkerOptions).machine_type == "n2-highmem-4"
    assert argv[-2:] == ["--region=asia-east1", "--machine_type=n2-highmem-4"]


def test_list_options_accumulate_rather_than_override():
    argv = apply_profile(["--experiments=enable_data_sampling"], "dataflow")
    experiments = PipelineOptions(argv).get_all_options()["experiments"]
    assert {"use_runner_v2", "enable_data_sampling"} <= set(experiments)


def test_unknown_profile_names_the_available_ones():
    with pytest.raises(ProfileError) as err:
        load_profile("no-such-profile")
    for name in ("dataflow", "flink", "local", "portable-local"):
        assert name in str(err.value)


def test_env_var_expansion(tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "description: test profile\n"
        "options:\n"
        "  runner: DirectRunner\n"
        "  project: ${SB_TEST_PROJECT}\n"
        "  region: ${SB_TEST_REGION:-us-east1}\n"
        "  temp_location: gs://${SB_TEST_BUCKET}/tmp\n"
        "  experiments: [a, '${SB_TEST_PROJECT}-b']\n"
        "  save_main_session: true\n"
        "  streaming: false\n", encoding="utf-8")
    monkeypatch.setenv("SB_TEST_PROJECT", "p1")
    monkeypatch.delenv("SB_TEST_REGION", raising=False)
    monkeypatch.delenv("SB_TEST_BUCKET", raising=False)
    profile = load_profile(str(path))
    assert profile["name"] == "mine"
    assert profile["options"]["project"] == "p1"
    assert profile["options"]["region"] == "us-east1"
    assert profile["options"]["temp_location"] == "gs://${SB_TEST_BUCKET}/tmp"
    assert profile["unresolved"] == ["SB_TEST_BUCKET"]
    assert profile_argv(profile) == [
        "--runner=DirectRunner", "--project=p1", "--region=us-east1",
        "--temp_location=gs://${SB_TEST_BUCKET}/tmp", "--experiments=a", "--experiments=p1-b",
        "--save_main_session"]


def test_malformed_profile_is_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("description: x\noptions: [runner]\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="options"):
        load_profile(str(path))


def test_flex_template_metadata():
    meta = json.loads((ROOT / "configs/flex-template/metadata.json").read_text(encoding="utf-8"))
    assert meta["name"] and meta["description"]
    params = {p["name"]: p for p in meta["parameters"]}
    assert {"input", "output", "input_format", "config"} <= set(params)
    for p in params.values():
        assert p["label"] and p["helpText"]
        for rx in p.get("regexes", []):
            re.compile(rx)
    assert not params["input"].get("isOptional") and not params["output"].get("isOptional")

    def ok(name, value):
        return all(re.fullmatch(rx, value) for rx in params[name]["regexes"])

    assert ok("input", "gs://bucket/news/*.jsonl") and not ok("input", "/local/news.jsonl")
    assert ok("input_format", "jsonl") and not ok("input_format", "csv")
    assert ok("config", "configs/pipeline.yaml") and ok("config", "gs://b/c.yaml")


def test_flex_entry_point_runs_the_cli_with_stancebeam_flag_names(monkeypatch):
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    body = re.search(r"COPY <<'EOF' \S*flex_main\.py\n(.*?)\nEOF\n", text, flags=re.S).group(1)
    calls = []
    monkeypatch.setattr("os.execvp", lambda file, args: calls.append(args))
    monkeypatch.setattr("sys.argv", ["flex_main.py", "--input=gs://b/in/*.jsonl",
                                     "--input_format=jsonl", "--temp_location=gs://b/tmp"])
    exec(compile(body, "flex_main.py", "exec"), {"__name__": "__main__"})
    assert calls == [["stancebeam", "run", "--profile", "dataflow", "--input=gs://b/in/*.jsonl",
                      "--input-format=jsonl", "--temp_location=gs://b/tmp"]]
