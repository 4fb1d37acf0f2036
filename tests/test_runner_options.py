"""Launch options: default runners, profiles with command-line overrides, flag validation."""
import pytest
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from stancebeam.pipeline.options import validate
from stancebeam.pipeline.runner import make_options


def test_default_runner_skips_the_prism_download():
    batch = make_options(["--input=x", "--output=y"])
    assert batch.view_as(StandardOptions).runner == "FnApiRunner"
    streaming = make_options(["--streaming", "--input-subscription=projects/p/subscriptions/s", "--output=y"])
    assert streaming.view_as(StandardOptions).runner == "BundleBasedDirectRunner"


def test_direct_num_workers_means_processes():
    options = make_options(["--direct_num_workers=2", "--input=x", "--output=y"])
    assert options.view_as(DirectOptions).direct_running_mode == "multi_processing"
    threads = make_options(["--direct_num_workers=2", "--direct_running_mode=multi_threading", "--input=x", "--output=y"])
    assert threads.view_as(DirectOptions).direct_running_mode == "multi_threading"


def test_profile_applies_and_command_line_overrides():
    options = make_options(["--profile", "local", "--direct_num_workers=1", "--input=x", "--output=y"])
    assert options.view_as(StandardOptions).runner == "FnApiRunner"
    assert options.view_as(DirectOptions).direct_num_workers == 1
    assert options.view_as(DirectOptions).direct_running_mode == "multi_processing"
    explicit = make_options(["--profile=local", "--runner=DirectRunner", "--input=x", "--output=y"])
    assert explicit.view_as(StandardOptions).runner == "DirectRunner"


@pytest.mark.parametrize("argv,message", [
    (["--input=x"], "--output is required"),
    (["--output=y"], "--input GLOB is required"),
    (["--streaming", "--output=y"], "needs --input-subscription"),
    (["--streaming", "--input-subscription=s", "--input=x", "--output=y"], "drop it or drop --streaming"),
    (["--input-subscription=s", "--output=y"], "needs --streaming"),
])
def test_bad_flag_combinations(argv, message):
    with pytest.raises(ValueError, match=message):
        validate(make_options(argv))
