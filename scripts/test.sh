#!/usr/bin/env bash
# Installs, then runs the test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The report test renders the HTML in headless Chromium (a Debian package).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: its tests will skip"
fi
.venv/bin/python -m pytest -q "$@"
