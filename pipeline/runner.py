"""Launches a pipeline run from command-line arguments and prints its summary."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from stancebeam.pipeline.config import ConfigError, load_config
from stancebeam.pipeline.options import validate

log = logging.getLogger(__name__)

# Beam's DirectRunner first tries to download the Prism runner (unreachable here) and falls back
# silently. For batch we pick the DirectRunner's own batch engine directly; streaming needs the
# bundle-based DirectRunner (the FnApiRunner has no streaming).
DEFAULT_BATCH_RUNNER = "FnApiRunner"
DEFAULT_STREAMING_RUNNER = "BundleBasedDirectRunner"


def _split_profile(argv: list[str]) -> tuple[str | None, list[str]]:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--profile", default=None)
    known, rest = parser.parse_known_args(argv)
    return known.profile, rest


def make_options(argv: list[str]) -> PipelineOptions:
    profile, argv = _split_profile(argv)
    if profile:
        from stancebeam.pipeline.profiles import apply_profile

        argv = apply_profile(argv, profile)
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    if not any(a == "--runner" or a.startswith("--runner=") for a in argv):
        standard.runner = DEFAULT_STREAMING_RUNNER if standard.streaming else DEFAULT_BATCH_RUNNER
    direct = options.view_as(DirectOptions)
    if (direct.direct_num_workers or 1) > 1 and not any(a.startswith("--direct_running_mode") for a in argv):
        # "--direct_num_workers N" means N processes here: Beam's default mode would run N
        # threads in one process, which the GIL keeps on one core.
        direct.direct_running_mode = "multi_processing"
    return options


def counters(result) -> dict[str, int]:
    """Committed counter values by name (summed over steps)."""
    totals: dict[str, int] = {}
    try:
        query = result.metrics().query()
    except Exception:  # some runners do not report metrics
        return totals
    for counter in query.get("counters", []):
        name = counter.key.metric.name
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[name] = totals.get(name, 0) + int(value or 0)
    return totals


def summary(result, seconds: float, run_id: str) -> dict:
    c = counters(result)
    documents = c.get("rows_documents", 0)
    return {
        "run_id": run_id,
        "state": str(result.state),
        "documents": documents,
        "rejected_documents": c.get("errors_rejected", 0),
        "warnings": c.get("errors_warning", 0),
        "actors": c.get("distinct_actors", 0),
        "mentions": c.get("rows_mentions", 0),
        "actor_sentiment_rows": c.get("rows_actor_sentiment", 0),
        "stance_rows": c.get("rows_actor_stance", 0),
        "seconds": round(seconds, 1),
        "documents_per_second": round(documents / seconds, 2) if seconds else None,
    }


def check_inputs(patterns: list[str]) -> None:
    """Fails at launch, with the pattern named, when an input glob matches no file."""
    from apache_beam.io.filesystems import FileSystems

    for pattern in patterns or []:
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception as e:  # unknown scheme, no credentials, ...
            raise ValueError(f"cannot list --input {pattern!r}: {e}") from e
        if not matched:
            raise ValueError(f"--input {pattern!r} matches no file")


def run(argv: list[str]) -> int:
    from stancebeam.pipeline.builder import build_batch_pipeline, job_settings

    try:
        options = make_options(argv)
        opts = validate(options)
        check_inputs(opts.input)
        config = load_config(opts.config)
        settings = job_settings(config, opts)
    except (ValueError, ConfigError, RuntimeError) as e:
        print(f"stancebeam run: {e}", file=sys.stderr)
        return 2
    if options.view_as(StandardOptions).streaming:
        from stancebeam.pipeline.streaming import build_streaming_pipeline

        pipeline = build_streaming_pipeline(options, settings)
    else:
        pipeline = build_batch_pipeline(options, settings)
    log.info("run %s: model %s (%s), output %s", settings.run.run_id, settings.run.model_id,
             settings.backend, opts.output)
    started = time.time()
    result = pipeline.run()
    result.wait_until_finish()
    report = summary(result, time.time() - started, settings.run.run_id)
    print(f"stancebeam: {report['documents']} documents, {report['rejected_documents']} rejected, "
          f"{report['warnings']} warnings, {report['actors']} actors, {report['mentions']} mentions, "
          f"{report['documents_per_second']} documents/s ({report['seconds']} s) -> {opts.output}")
    print(json.dumps(report))
    return 0
