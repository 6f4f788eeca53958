#!/usr/bin/env bash
# The system tools some tests drive: Debian's chromium and its chromedriver (the /docs browser test)
# and docker-compose (the compose-file checks). Installed with apt when missing; idempotent.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "system-deps: ${missing[*]} missing; install them (Debian: apt-get install ${missing[*]})," \
        "or their tests skip" >&2
    exit 0
fi
log="${TMPDIR:-/tmp}/amms-system-deps.log"
echo "system-deps: installing ${missing[*]} with apt-get (log: $log)" >&2
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -20 "$log" >&2
    exit 1
fi
