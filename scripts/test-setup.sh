#!/usr/bin/env bash
# Prepares what the tests need beyond Debian packages (npm test servers), once.
set -euo pipefail
cd "$(dirname "$0")/.."
for setup in tests/*/setup.sh; do
  [ -f "$setup" ] && bash "$setup"
done
exit 0
