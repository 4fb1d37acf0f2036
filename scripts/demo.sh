#!/usr/bin/env bash
# Installs, then runs the main job on the bundled sample corpus with the bundled default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
OUT=${1:-out/sample}
.venv/bin/stancebeam run --input 'data/samples/*' --output "$OUT"
.venv/bin/stancebeam query "$OUT" --preset top-praised
