#!/usr/bin/env bash
# ctest's entry for one browser test: skips (77) when the npm packages or chromium are missing
# (run tests/browser/setup.sh, or `make test`), else runs `node TEST.test.js`.
set -uo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
  echo "skipped: run tests/browser/setup.sh (npm ci) first"
  exit 77
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "skipped: no chromium (apt-get install chromium)"
  exit 77
fi
exec node "$1.test.js"
