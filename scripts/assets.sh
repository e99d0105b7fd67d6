#!/usr/bin/env bash
# Install the front-end packages from npm and copy them into frontend/static/vendor (served by Studio itself).
set -euo pipefail
cd "$(dirname "$0")/../frontend"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent vendor
