#!/usr/bin/env bash
# What `make test` runs: lint, then the whole pytest suite on real PostgreSQL, Redis, Celery and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
set +e
scripts/test-services.sh .venv/bin/python -m pytest "$@"
status=$?
set -e
if [ $status -eq 5 ]; then
  echo "pytest collected no tests (exit 5): treating as a failure of the suite's layout" >&2
  exit 1
fi
exit $status
