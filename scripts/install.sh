#!/usr/bin/env bash
# Create .venv and install Studio's Python dependencies: torch with pip first (pip's config finds the
# local CPU wheel; uv does not), then the rest with uv (fast), falling back to pip.
# Usage: scripts/install.sh [extra]   e.g. `scripts/install.sh dev` for the test tools too.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

if [ ! -x .venv/bin/python ]; then
  if command -v uv >/dev/null; then uv venv --python "$python" .venv; else "$python" -m venv .venv; fi
fi
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then .venv/bin/python -m ensurepip --upgrade >/dev/null; fi

torch_spec=$(grep -oE '"torch==[^"]+"' pyproject.toml | tr -d '"')
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('torch').split('+')[0] == '${torch_spec#torch==}' else 1)" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet "$torch_spec"
fi

target="."
[ -n "$extra" ] && target=".[$extra]"
if .venv/bin/python -m pip install --quiet "uv>=0.4" 2>/dev/null && .venv/bin/uv pip install --quiet --python .venv/bin/python -e "$target"; then
  echo "installed $target with uv"
else
  echo "uv unavailable or failed; installing with pip" >&2
  .venv/bin/python -m pip install --quiet -e "$target"
fi
