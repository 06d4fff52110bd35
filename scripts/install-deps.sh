#!/usr/bin/env bash
# Installs the Debian packages songd needs. `install-deps.sh` (make run): what building and
# running need. `install-deps.sh test` (make test): those plus what only the tests and
# benchmarks use (servers to compare with, a browser, torch for the DiffRhythm stand-in).
# Idempotent: packages already present are skipped, so a second run is quick.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev
  libspdlog-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev libpq-dev
  libjemalloc-dev
  # song engine and audio
  libfluidsynth-dev libespeak-ng-dev librubberband-dev libsndfile1-dev libebur128-dev
  libaubio-dev
  timgm6mb-soundfont
  # the page's /docs: swagger-ui-dist from npm, installed once by the build (web/web.cmake)
  nodejs npm
)
if [ "${1:-}" = "test" ]; then
  packages+=(
    # tests and benchmarks
    curl ffmpeg aubio-tools sox wrk nginx-light python3 python3-botocore
    postgresql
    # the page's browser tests (tests/browser)
    chromium
    # the DiffRhythm stand-in and the worker's tests (Debian's /usr/bin/python3)
    python3-torch python3-torchaudio
    # bench/http: the FastAPI peer of the status benchmark
    python3-fastapi python3-uvicorn
  )
fi

missing=()
for p in "${packages[@]}"; do
  # Node.js from other builds (e.g. NodeSource) bundles npm and conflicts with Debian's npm
  # package: an npm on the PATH is enough.
  if [ "$p" = npm ] && command -v npm > /dev/null; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "install-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
