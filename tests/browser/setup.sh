#!/usr/bin/env bash
# Installs the browser tests' npm packages (playwright-core, axe-core; pinned in
# package-lock.json) when they are missing. Called by `make test`; quick when installed.
# The browser itself is Debian's chromium (scripts/install-deps.sh test).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
