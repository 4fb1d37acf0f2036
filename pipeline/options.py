"""The pipeline's own options, parsed alongside Beam's."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from stancebeam.transforms.read import FORMATS


class StancebeamOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", action="append", default=None,
                            help="glob of input files on any Beam filesystem; repeatable")
        parser.add_argument("--input-format", "--input_format", dest="input_format",
                            choices=FORMATS, default="auto")
        parser.add_argument("--input-subscription", "--input_subscription", dest="input_subscription",
                            default=None, help="Pub/Sub subscription (with --streaming)")
        parser.add_argument("--window-seconds", "--window_seconds", dest="window_seconds", type=int,
                            default=60, help="fixed window length for streaming output")
        parser.add_argument("--output", default=None, help="output root folder (any Beam filesystem)")
        parser.add_argument("--config", default=None, help="YAML file overriding configs/default.yaml")
        parser.add_argument("--run-id", "--run_id", dest="run_id", default=None,
                            help="identifier stamped on every row (default: time-based)")
        parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default=None,
                            help="model directory, overrides model.dir of the config")
        parser.add_argument("--stance-model-dir", "--stance_model_dir", dest="stance_model_dir",
                            default=None, help="stance model directory, overrides model.stance_dir")
        parser.add_argument("--backend", choices=("torch", "onnx-int8"), default=None,
                            help="inference backend, overrides model.backend of the config")


def validate(options: PipelineOptions) -> StancebeamOptions:
    """Checks flag combinations; raises ValueError with a message a user can act on."""
    opts = options.view_as(StancebeamOptions)
    streaming = options.view_as(StandardOptions).streaming
    if not opts.output:
        raise ValueError("--output is required")
    if streaming:
        if not opts.input_subscription:
            raise ValueError("--streaming needs --input-subscription projects/P/subscriptions/S")
        if opts.input:
            raise ValueError("--input reads files in batch mode; drop it or drop --streaming")
        if opts.window_seconds <= 0:
            raise ValueError("--window-seconds must be positive")
    else:
        if opts.input_subscription:
            raise ValueError("--input-subscription needs --streaming")
        if not opts.input:
            raise ValueError("--input GLOB is required (or --streaming with --input-subscription)")
    return opts
