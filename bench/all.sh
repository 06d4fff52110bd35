#!/usr/bin/env bash
# Every benchmark, one after the other (`make bench`). Each writes or prints its own table;
# the READMEs beside them say what is measured against what.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
echo "== service: status endpoint against nginx, 100k-job store (bench/README.md)"
bash bench/run.sh
echo "== status, 304 and download: songd vs nginx vs FastAPI (bench/http/README.md)"
bash bench/http/run.sh "$BUILD"
echo "== synth engine render speed (bench/synth/README.md)"
bash bench/synth/run.sh "$PWD/$BUILD"
echo "== audio finishing (bench/audio/README.md)"
"./$BUILD/bench/finish_benchmark" 95 285
if [ -x "./$BUILD/bench/songd_s3_benchmark" ]; then
  echo "== S3 upload and signing against s3rver (bench/s3/README.md)"
  bash tests/s3/setup.sh
  "./$BUILD/bench/songd_s3_benchmark"
  "./$BUILD/bench/songd_s3_service_benchmark" --jobs 3 --length 95
fi
for extra in bench/*/run-bench.sh; do
  [ -f "$extra" ] && bash "$extra"
done
exit 0
