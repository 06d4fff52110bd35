#!/usr/bin/env bash
# Installs the S3 test server (s3rver, pinned in server/package-lock.json) when it is missing.
# Called by `make test`; quick when already installed.
set -euo pipefail
cd "$(dirname "$0")/server"
if [ ! -d node_modules/s3rver ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
