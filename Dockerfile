# syntax=docker/dockerfile:1
# stancebeam SDK container: one image for Dataflow (--sdk_container_image), Flink
# (--environment_type=DOCKER --environment_config=IMAGE) and the Dataflow Flex Template launcher.
# Build: docker build -t stancebeam:0.1.0 .   (see docs/deploy.md)

# Keep these equal to pyproject.toml (tests/test_deploy_config.py checks it).
ARG PYTHON_VERSION=3.11
ARG BEAM_VERSION=2.77.0
# Pin a dated tag in production; see Dataflow's "Flex Templates base images" page.
ARG FLEX_LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base:20230622_RC00

FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION} AS beam_sdk
FROM ${FLEX_LAUNCHER_IMAGE} AS flex_launcher

# The wheel: code, default config, gazetteer and shipped models as package data. The runtime
# stage installs it and keeps no source tree, exactly as `pip install stancebeam-*.whl` would.
FROM python:${PYTHON_VERSION}-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline/ pipeline/
COPY transforms/ transforms/
COPY classifier/ classifier/
COPY analysis/ analysis/
COPY configs/ configs/
COPY models/ models/
RUN pip wheel --no-deps -w /dist .

FROM python:${PYTHON_VERSION}-slim
# A runner that mounts root-only folders into the container can be served by
# --build-arg RUN_AS=0:0 (see docs/deploy.md); the default is the unprivileged user below.
ARG RUN_AS=1000:1000

# Beam's worker boot binary; it must stay the entrypoint (Dataflow custom-container requirement).
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
# Lets the same image serve as a Flex Template image.
COPY --from=flex_launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# Everything is loaded from the image; never reach for the Hugging Face hub at run time.
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Runners start one SDK process per vCPU; one torch/BLAS thread each avoids oversubscription.
ENV OMP_NUM_THREADS=1
# Dependencies live in the system environment; the boot binary would otherwise build a venv
# under /opt/apache, which the non-root user cannot write.
ENV RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1

# CPU-only torch first, from PyTorch's CPU index: installing the project afterwards finds
# torch==2.13.0 satisfied (2.13.0+cpu) and does not pull several GB of CUDA wheels from PyPI.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# Not editable: workers resolve `package:models/...` and `package:configs/...` in site-packages.
COPY --from=wheel /dist /tmp/dist
RUN pip install /tmp/dist/stancebeam-*.whl && pip check && rm -rf /tmp/dist

WORKDIR /opt/stancebeam
# Dataflow Flex Template entry point: the launcher runs `python FILE --name=value ...`.
COPY <<'EOF' /opt/stancebeam/flex_main.py
"""Dataflow Flex Template entry point: `stancebeam run --profile dataflow` with the parameters."""
import os
import sys

# Template parameters arrive as --name=value; stancebeam's own flags are dashed, Beam's are not.
OWN = {"input_format", "input_subscription", "window_seconds"}
args = []
for arg in sys.argv[1:]:
    name, sep, value = arg[2:].partition("=")
    args.append(f"--{name.replace('_', '-')}{sep}{value}" if name in OWN else arg)
os.execvp("stancebeam", ["stancebeam", "run", "--profile", "dataflow", *args])
EOF
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/stancebeam/flex_main.py

# The home folder holds the cache of models fetched from gs:// (see docs/deploy.md).
RUN useradd --create-home --uid 1000 --user-group beam \
    && chown -R beam:beam /opt/stancebeam
USER ${RUN_AS}

ENTRYPOINT ["/opt/apache/beam/boot"]
