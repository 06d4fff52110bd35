#!/usr/bin/env bash
# Render speed of the synth engine on one core: CPU time (user+sys, the espeak-ng child
# included) and peak RSS per song, for a 95 s and a 285 s song in several styles.
#
#   bench/synth/run.sh [build-dir]      # default: build
#
# Needs the synth_render tool (tests/golden) built, and GNU time (/usr/bin/time).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
tool=$build/tests/golden/synth_render
fixtures=$root/tests/golden/fixtures
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# A dense lyric: 300 short lines in 95 s (the most the LRC rules allow).
python3 - "$out/dense.lrc" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(300):
        t = i * 0.31
        f.write("[%02d:%05.2f]line %d goes on and on la la\n" % (int(t) // 60, t % 60, i))
PY

printf '%-8s %-30s %-12s %8s %8s %10s %8s\n' length style lyrics cpu_s wall_s realtime_x rss_mb
# Each song is rendered `repeats` times; the lowest CPU time is reported, because on a
# shared machine other processes only ever add to it (cache and core contention).
repeats=${REPEATS:-3}
run() {
  local length=$1 style=$2 lrc=$3
  local best_cpu="" best_wall="" max_rss=0
  for ((i = 0; i < repeats; i++)); do
    /usr/bin/time -o "$out/time" -f '%U %S %e %M' taskset -c 0 "$tool" --lyrics "$lrc" \
      --style "$style" --length "$length" --seed 7 --out "$out/song" >/dev/null 2>&1
    read -r user sys wall rss <"$out/time"
    local cpu
    cpu=$(echo "$user + $sys" | bc -l)
    if [[ -z $best_cpu ]] || (($(echo "$cpu < $best_cpu" | bc -l))); then
      best_cpu=$cpu
      best_wall=$wall
    fi
    ((rss > max_rss)) && max_rss=$rss
  done
  printf '%-8s %-30s %-12s %8.2f %8.2f %10.1f %8.0f\n' "$length" "$style" "$(basename "$lrc")" \
    "$best_cpu" "$best_wall" "$(echo "$length / $best_cpu" | bc -l)" "$(echo "$max_rss / 1024" | bc -l)"
}
run 95 "energetic EDM" "$fixtures/example.lrc"
run 95 "sad slow piano ballad" "$fixtures/example.lrc"
run 95 "rock" "$fixtures/example.lrc"
run 95 "民谣 吉他" "$fixtures/zh.lrc"
run 95 "pop" "$out/dense.lrc"
run 285 "energetic EDM" "$fixtures/long.lrc"
run 285 "uplifting pop rock with guitar" "$fixtures/long.lrc"
run 285 "jazz with saxophone" "$fixtures/long.lrc"
