#!/usr/bin/env bash
# songd benchmarks, measured as ratios against nginx on the same machine in the same run.
#   bench/run.sh            (make bench builds first)
# Writes bench/results/latest.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SONGD=$PWD/$BUILD/songd
SEED=$PWD/$BUILD/bench/songd_bench_seed
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
work=$(mktemp -d /tmp/songd-bench-XXXXXX)
chmod 755 "$work"  # nginx workers run as an unprivileged user
results=bench/results
mkdir -p "$results"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# wrk_run URL CONNECTIONS → "requests_per_second p50_ms p99_ms"
wrk_run() {
  local out
  out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency "$1")
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { python3 -c "import re,sys; v=sys.argv[1]; m=re.match(r'([0-9.]+)(us|ms|s)',v); f={'us':0.001,'ms':1,'s':1000}[m.group(2)]; print(round(float(m.group(1))*f,3))" "$1"; }

# --- songd with one completed job, one I/O thread, tone engine ---------------------------
port=$(free_port)
mkdir -p "$work/songd"
( cd "$work/songd" && ENGINE=tone IO_THREADS=1 WORKERS=1 PORT=$port HOST=127.0.0.1 \
    LOG_LEVEL=warning ENABLE_RATE_LIMIT=false exec "$SONGD" serve 2>"$work/songd.log" ) &
pids+=($!)
songd_pid=$!
wait_http "http://127.0.0.1:$port/healthz"
sleep 1
idle_rss=$(rss_kb "$songd_pid")
job=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/generate" -H 'Content-Type: application/json' \
  -d '{"lyrics":"[00:05.00]Morning light on the water\n[00:12.50]We sing along","style_prompt":"pop, happy, piano"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$port/api/v1/status/$job" | grep -q '"status":"completed"' && break; sleep 0.1
done
status_url="http://127.0.0.1:$port/api/v1/status/$job"
curl -sf "$status_url" > "$work/status.json"

# --- nginx serving the same bytes from a file, one worker process -------------------------
nport=$(free_port)
mkdir -p "$work/nginx/www/api/v1/status" "$work/nginx/tmp"
cp "$work/status.json" "$work/nginx/www/api/v1/status/$job"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  default_type application/json;
  server { listen 127.0.0.1:$nport; root $work/nginx/www; }
}
CONF
nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:$nport/api/v1/status/$job"
cmp <(curl -s "http://127.0.0.1:$nport/api/v1/status/$job") "$work/status.json"

read -r s_rps s_p50 s_p99 <<<"$(wrk_run "$status_url" "$CONNECTIONS")"
read -r n_rps n_p50 n_p99 <<<"$(wrk_run "http://127.0.0.1:$nport/api/v1/status/$job" "$CONNECTIONS")"
ratio=$(python3 -c "print(round($s_rps/$n_rps, 3))")
read -r s1_rps s1_p50 s1_p99 <<<"$(wrk_run "$status_url" 1)"
loaded_rss=$(rss_kb "$songd_pid")
kill "$songd_pid"; wait "$songd_pid" 2>/dev/null || true

# --- status with 100 000 jobs in the store --------------------------------------------------
JOBS=${JOBS:-100000}
mkdir -p "$work/big/data"
big_job=$("$SEED" "$work/big/data/songd.db" "$JOBS")
bport=$(free_port)
( cd "$work/big" && ENGINE=tone IO_THREADS=1 WORKERS=1 PORT=$bport HOST=127.0.0.1 \
    LOG_LEVEL=warning exec "$SONGD" serve 2>"$work/big.log" ) &
pids+=($!)
big_pid=$!
wait_http "http://127.0.0.1:$bport/healthz"
sleep 1
big_idle_rss=$(rss_kb "$big_pid")
read -r b_rps b_p50 b_p99 <<<"$(wrk_run "http://127.0.0.1:$bport/api/v1/status/$big_job" 1)"
read -r b64_rps b64_p50 b64_p99 <<<"$(wrk_run "http://127.0.0.1:$bport/api/v1/status/$big_job" "$CONNECTIONS")"

{
  echo "# songd benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, wrk -t1 ${DURATION}s"
  echo
  echo "| measurement | songd | nginx | songd/nginx |"
  echo "|---|---|---|---|"
  echo "| status, $CONNECTIONS connections, requests/s | $s_rps | $n_rps | **$ratio** |"
  echo "| status, $CONNECTIONS connections, p50 / p99 ms | $s_p50 / $s_p99 | $n_p50 / $n_p99 | |"
  echo "| status, 1 connection, requests/s, p50 / p99 ms | $s1_rps, $s1_p50 / $s1_p99 | | |"
  echo "| idle RSS | $((idle_rss / 1024)) MiB ($idle_rss kB) | | |"
  echo "| RSS after the load | $((loaded_rss / 1024)) MiB | | |"
  echo "| status with $JOBS jobs, 1 connection, p50 / p99 ms | $b_p50 / $b_p99 ($b_rps req/s) | | |"
  echo "| status with $JOBS jobs, $CONNECTIONS connections, requests/s | $b64_rps | | |"
  echo "| idle RSS with $JOBS jobs | $((big_idle_rss / 1024)) MiB | | |"
} | tee "$results/latest.md"
