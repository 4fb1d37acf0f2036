#!/usr/bin/env bash
# What a new user does: build the wheel, install it into a fresh venv (no checkout anywhere on its
# path) and run the main job, a query and `evaluate` from an unrelated folder.
# Usage: bash scripts/check_wheel.sh [LABELLED.jsonl]   (NewsMTSC format; default: five examples)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
DATA=${1:+$(realpath "$1")}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$ROOT"
"$PYTHON" -m venv "$WORK/venv"
# torch first and pinned: an unpinned torch pulled in by another package downloads CUDA builds.
"$WORK/venv/bin/pip" install --quiet torch==2.13.0
"$WORK/venv/bin/pip" install --quiet "$WORK"/dist/stancebeam-*.whl

mkdir "$WORK/elsewhere" && cd "$WORK/elsewhere"
cp -r "$ROOT/data/samples" samples  # only the input documents come from the checkout
if [ -z "$DATA" ]; then
  DATA=$WORK/labelled.jsonl
  cat > "$DATA" <<'JSONL'
{"sentence_normalized": "The president praised the courageous firefighters for saving dozens of lives.", "targets": [{"from": 37, "to": 49, "mention": "firefighters", "polarity": 6.0}]}
{"sentence_normalized": "Protesters accused the mayor of corruption and of lying to voters.", "targets": [{"from": 19, "to": 28, "mention": "the mayor", "polarity": 2.0}]}
{"sentence_normalized": "The minister met the delegation in Geneva on Tuesday.", "targets": [{"from": 17, "to": 31, "mention": "the delegation", "polarity": 4.0}]}
{"sentence_normalized": "Critics slammed the senator's plan as reckless and dishonest.", "targets": [{"from": 16, "to": 27, "mention": "the senator", "polarity": 2.0}]}
{"sentence_normalized": "The committee will meet again in March, the chairman said.", "targets": [{"from": 40, "to": 52, "mention": "the chairman", "polarity": 4.0}]}
JSONL
fi
"$WORK/venv/bin/stancebeam" run --input 'samples/*' --output out
"$WORK/venv/bin/stancebeam" query out --preset top-praised
"$WORK/venv/bin/stancebeam" evaluate --data "$DATA"
echo "check_wheel: the installed wheel runs, queries and evaluates without the checkout"
