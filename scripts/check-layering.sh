#!/usr/bin/env bash
# Checks that includes between the folders of src/ point one way (the layering of STYLE.md):
#   core/               includes only core/
#   engine/, audio/     include nothing from jobs/
#   storage/, jobs/     include nothing from retention/, http/, app/
#   <curl/curl.h>       only inside src/net/ (the one HTTP client)
# Prints one line per offending include (file:line: the include, and the rule) and exits 1;
# exits 0 when every include is allowed. Run from anywhere: bash scripts/check-layering.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

failed=0
report() {  # file, line number, include text, rule
    printf '%s:%s: %s (%s)\n' "$1" "$2" "$3" "$4" >&2
    failed=1
}

# Every include line of src/, as "file:line:text".
while IFS= read -r hit; do
    file="${hit%%:*}"
    rest="${hit#*:}"
    line_no="${rest%%:*}"
    line="${rest#*:}"
    [[ "$line" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\"\<])([^\"\>]+)[\"\>] ]] || continue
    kind="${BASH_REMATCH[1]}"
    target="${BASH_REMATCH[2]}"
    if [[ "$kind" == '<' ]]; then text="#include <$target>"; else text="#include \"$target\""; fi
    folder="${file#src/}"
    folder="${folder%%/*}"
    if [[ "$target" == "curl/curl.h" && "$folder" != "net" ]]; then
        report "$file" "$line_no" "$text" "only src/net/ may use libcurl"
    fi
    # Quoted includes with a folder are project headers; the rest are system or siblings.
    [[ "$kind" == '"' && "$target" == */* ]] || continue
    dep="${target%%/*}"
    case "$folder" in
        core)
            [[ "$dep" == core ]] || report "$file" "$line_no" "$text" "core/ includes only core/"
            ;;
        engine | audio)
            [[ "$dep" != jobs ]] || report "$file" "$line_no" "$text" "$folder/ must not include jobs/"
            ;;
        storage | jobs)
            case "$dep" in
                retention | http | app)
                    report "$file" "$line_no" "$text" "$folder/ must not include $dep/"
                    ;;
            esac
            ;;
    esac
done < <(grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' \
    '^[[:space:]]*#[[:space:]]*include' src | sort -t: -k1,1 -k2,2n)

if [[ $failed -ne 0 ]]; then
    echo "check-layering: includes that break the layering (see above)" >&2
    exit 1
fi
echo "check-layering: ok"
