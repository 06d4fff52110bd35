#!/usr/bin/env bash
# Retention pass over 10 000 and 100 000 expired jobs, local and with S3 (s3rver); see
# README.md here. Prints one result line per run; `ok=yes` means every job was expired and
# every file and object is gone. About 6 minutes on 2 cores, most of it setting up the jobs.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BENCH="./$BUILD/bench/songd_retention_benchmark"
[ -x "$BENCH" ] || { echo "retention bench: $BENCH not built (needs node)"; exit 0; }
bash tests/s3/setup.sh
echo "== retention pass (bench/retention/README.md)"
for args in "--jobs 10000" "--jobs 100000" "--jobs 10000 --s3" "--jobs 100000 --s3"; do
  "$BENCH" $args | grep '^jobs='
done
