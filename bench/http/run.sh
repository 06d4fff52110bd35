#!/usr/bin/env bash
# Side by side on one machine, back to back in one run: songd (default configuration, access
# log on) against nginx (1 worker) serving the same bytes, and against the FastAPI peer
# (bench/http/fastapi_peer.py). Prints the four ratios of bench/http/README.md.
#   bench/http/run.sh [build-dir]        DURATION=5 CONNECTIONS=64 DOWNLOAD_CONNECTIONS=8 ROUNDS=3
# Extra songd variables can be passed in the environment as SONGD_ENV="IO_THREADS=2 ...".
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-${BUILD:-build}}
SONGD=$PWD/$BUILD/songd
PY=/usr/bin/python3
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
DOWNLOAD_CONNECTIONS=${DOWNLOAD_CONNECTIONS:-8}
ROUNDS=${ROUNDS:-3}
[[ -x "$SONGD" ]] || { echo "build songd first ($SONGD)" >&2; exit 2; }
work=$(mktemp -d /tmp/songd-http-bench-XXXXXX)
chmod 755 "$work"  # nginx workers may run as an unprivileged user
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }
# wrk_run URL CONNECTIONS [header] → "requests_per_second p99_ms MiB_per_second"
wrk_run() {
  local out
  if [[ -n "${3:-}" ]]; then
    out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency -H "$3" "$1")
  else
    out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency "$1")
  fi
  echo "$out" >> "$work/wrk.log"
  $PY - "$out" <<'PY'
import re, sys
out = sys.argv[1]
def ms(v):
    m = re.match(r'([0-9.]+)(us|ms|s)$', v)
    return float(m.group(1)) * {'us': 0.001, 'ms': 1, 's': 1000}[m.group(2)]
def mib(v):
    m = re.match(r'([0-9.]+)([KMG]?B)$', v)
    return float(m.group(1)) * {'B': 1 / 2**20, 'KB': 1 / 1024, 'MB': 1, 'GB': 1024}[m.group(2)]
rps = float(re.search(r'Requests/sec:\s+([0-9.]+)', out).group(1))
p99 = ms(re.search(r'\n\s+99%\s+(\S+)', out).group(1))
tr = mib(re.search(r'Transfer/sec:\s+(\S+)', out).group(1))
non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
print(f"{rps:.0f} {p99:.2f} {tr:.0f} {non2xx.group(1) if non2xx else 0}")
PY
}
etag_of() { curl -sI "$1" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}'; }

# --- songd: default configuration, one completed 95 s job --------------------------------
port=$(free_port)
mkdir -p "$work/songd"
( cd "$work/songd" && exec env ENGINE=tone PORT=$port HOST=127.0.0.1 ENABLE_RATE_LIMIT=false \
    ${SONGD_ENV:-} "$SONGD" serve 2>"$work/songd.log" ) &
pids+=($!)
wait_http "http://127.0.0.1:$port/healthz"
base="http://127.0.0.1:$port/api/v1"
job=$(curl -sf -X POST "$base/generate" -H 'Content-Type: application/json' \
  -d '{"lyrics":"[00:05.00]Morning light on the water\n[00:12.50]We sing along","style_prompt":"pop, happy, piano","audio_length":95}' \
  | $PY -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
for _ in $(seq 600); do
  curl -sf "$base/status/$job" | grep -q '"status":"completed"' && break; sleep 0.1
done
curl -sf "$base/status/$job" > "$work/status.json"
grep -q '"status":"completed"' "$work/status.json" || { echo "the job did not complete" >&2; exit 1; }

# --- nginx, 1 worker, the same bytes from files at the same paths -------------------------
nport=$(free_port)
mkdir -p "$work/nginx/www/api/v1/status" "$work/nginx/www/api/v1/download" "$work/nginx/tmp"
cp "$work/status.json" "$work/nginx/www/api/v1/status/$job"
curl -sf "$base/download/$job" -o "$work/nginx/www/api/v1/download/$job"
song_bytes=$(stat -c %s "$work/nginx/www/api/v1/download/$job")
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  default_type application/json;
  server { listen 127.0.0.1:$nport; root $work/nginx/www; }
}
CONF
nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
nbase="http://127.0.0.1:$nport/api/v1"
wait_http "$nbase/status/$job"
cmp <(curl -s "$nbase/status/$job") "$work/status.json"

# --- the FastAPI peer ----------------------------------------------------------------------
fport=$(free_port)
$PY bench/http/fastapi_peer.py "$fport" "$work/status.json" >"$work/fastapi.log" 2>&1 &
pids+=($!)
fbase="http://127.0.0.1:$fport/api/v1"
wait_http "$fbase/status/$job"

s_etag=$(etag_of "$base/status/$job")
n_etag=$(etag_of "$nbase/status/$job")
[[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $s_etag" "$base/status/$job")" == 304 ]]
[[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $n_etag" "$nbase/status/$job")" == 304 ]]

# ROUNDS rounds, each running every measurement once, servers interleaved, so a burst of
# load from elsewhere on the machine touches all three alike; the medians are compared.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A runs=() bad=()
for round in $(seq "$ROUNDS"); do
  add() { runs[$1]+="$2 "; }
  read -r v p _ s_bad <<<"$(wrk_run "$base/status/$job" "$CONNECTIONS")"; add s_rps "$v"; add s_p99 "$p"
  read -r v p _ n_bad <<<"$(wrk_run "$nbase/status/$job" "$CONNECTIONS")"; add n_rps "$v"; add n_p99 "$p"
  read -r v p _ f_bad <<<"$(wrk_run "$fbase/status/$job" "$CONNECTIONS")"; add f_rps "$v"; add f_p99 "$p"
  read -r v _ _ _ <<<"$(wrk_run "$base/status/$job" "$CONNECTIONS" "If-None-Match: $s_etag")"; add s304_rps "$v"
  read -r v _ _ _ <<<"$(wrk_run "$nbase/status/$job" "$CONNECTIONS" "If-None-Match: $n_etag")"; add n304_rps "$v"
  read -r _ _ m sd_bad <<<"$(wrk_run "$base/download/$job" "$DOWNLOAD_CONNECTIONS")"; add sd_mib "$m"
  read -r _ _ m nd_bad <<<"$(wrk_run "$nbase/download/$job" "$DOWNLOAD_CONNECTIONS")"; add nd_mib "$m"
  for k in s_bad n_bad f_bad sd_bad nd_bad; do bad[$k]=$(( ${bad[$k]:-0} + ${!k} )); done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
median() { $PY -c 'import statistics,sys; print(f"{statistics.median(map(float, sys.argv[1:])):g}")' $1; }
for k in "${!runs[@]}"; do
  printf -v "$k" '%s' "$(median "${runs[$k]}")"
  printf -v "${k}_all" '%s' "${runs[$k]% }"
done
log_lines=$(grep -c '"request"\| request ' "$work/songd.log" || true)

# A ratio is the median of the rounds' own ratios: the two runs of a pair are seconds apart,
# so a machine that slows down between rounds (the VM's neighbours) moves both alike.
r() {
  $PY - "${runs[$1]}" "${runs[$2]}" <<'PY'
import statistics, sys
a, b = (list(map(float, v.split())) for v in sys.argv[1:3])
print(f"{statistics.median(x / y for x, y in zip(a, b)):.2f}")
PY
}
verdict() { $PY -c "print('ok' if $1 $2 $3 else 'MISSED')"; }
status_ratio=$(r s_rps n_rps); fast_ratio=$(r s_rps f_rps); p99_ratio=$(r s_p99 n_p99)
nm_ratio=$(r s304_rps n304_rps); dl_ratio=$(r sd_mib nd_mib)
{
  echo "# bench/http — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, wrk -t1 ${DURATION}s × $ROUNDS rounds (medians; ratios: median of the rounds' ratios), load average $load_before → $load_after"
  echo
  echo "songd: ${SONGD_ENV:-default configuration} (access log on: $log_lines request lines written)"
  echo
  echo "| measurement | songd | nginx (1 worker) | FastAPI peer |"
  echo "|---|---|---|---|"
  echo "| status, $CONNECTIONS connections, requests/s | $s_rps | $n_rps | $f_rps |"
  echo "| status, p99 ms | $s_p99 | $n_p99 | $f_p99 |"
  echo "| status with If-None-Match (304), requests/s | $s304_rps | $n304_rps | |"
  echo "| download of a $((song_bytes / 1048576)) MiB WAV, $DOWNLOAD_CONNECTIONS connections, MiB/s | $sd_mib | $nd_mib | |"
  echo "| non-2xx/3xx answers, all rounds (status, download) | ${bad[s_bad]}, ${bad[sd_bad]} | ${bad[n_bad]}, ${bad[nd_bad]} | ${bad[f_bad]} |"
  echo
  echo "Every round (requests/s; MiB/s): songd status $s_rps_all; nginx $n_rps_all; FastAPI $f_rps_all;"
  echo "songd 304 $s304_rps_all; nginx 304 $n304_rps_all; songd download $sd_mib_all; nginx $nd_mib_all;"
  echo "status p99 ms: songd $s_p99_all; nginx $n_p99_all; FastAPI $f_p99_all."
  echo
  echo "| ratio | measured | goal | |"
  echo "|---|---|---|---|"
  echo "| status songd/nginx | $status_ratio | ≥ 0.6 | $(verdict "$status_ratio" '>=' 0.6) |"
  echo "| status songd/FastAPI | $fast_ratio | ≥ 25 | $(verdict "$fast_ratio" '>=' 25) |"
  echo "| status p99 songd/nginx | $p99_ratio | ≤ 2 | $(verdict "$p99_ratio" '<=' 2) |"
  echo "| 304 songd/nginx | $nm_ratio | ≥ 0.8 | $(verdict "$nm_ratio" '>=' 0.8) |"
  echo "| download songd/nginx | $dl_ratio | ≥ 0.9 | $(verdict "$dl_ratio" '>=' 0.9) |"
}
