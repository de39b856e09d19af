#!/usr/bin/env bash
# Install the machine-level programs the test suite talks to (DESIGN.md §7):
#   redis-server, pdfsig and pdftoppm (poppler-utils), certutil (libnss3-tools: an NSS db holding the platform CA, so
#   pdfsig can check trust too), a CJK font (fonts-noto-cjk), the PostgreSQL server binaries and Debian's chromium
#   (the browser tests drive it with Playwright; Playwright's own browser download is not used, DESIGN.md §3b).
# Idempotent and fast when everything is present: it only checks, and calls apt-get only for what is missing.
# As root it installs with apt-get; otherwise it prints what to install and exits 1.
# A server given by JIANSHEN_TEST_POSTGRES_URL / JIANSHEN_TEST_REDIS_URL is used as-is, so its binaries are not needed.
set -euo pipefail

missing_packages=()
missing_what=()

need() {  # need <package> <what is missing>
    missing_packages+=("$1")
    missing_what+=("$2")
}

have_pg_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    local bin
    for bin in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$bin" ] && return 0
    done
    return 1
}

have_cjk_font() {
    command -v fc-list >/dev/null 2>&1 || return 1
    [ -n "$(fc-list :lang=zh family 2>/dev/null | head -n 1)" ]
}

if [ -z "${JIANSHEN_TEST_REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
    need redis-server "redis-server"
fi
if ! command -v pdfsig >/dev/null 2>&1; then
    need poppler-utils "pdfsig"
fi
if ! command -v certutil >/dev/null 2>&1; then
    need libnss3-tools "certutil"
fi
if ! have_cjk_font; then
    command -v fc-list >/dev/null 2>&1 || need fontconfig "fc-list"
    need fonts-noto-cjk "a CJK font (fc-list :lang=zh is empty)"
fi
if ! command -v chromium >/dev/null 2>&1; then
    need chromium "chromium (browser tests)"
fi
if [ -z "${JIANSHEN_TEST_POSTGRES_URL:-}" ] && ! have_pg_server; then
    need postgresql "PostgreSQL server binaries (initdb, pg_ctl, postgres)"
fi

if [ "${#missing_packages[@]}" -eq 0 ]; then
    echo "system deps: all present"
    exit 0
fi

printf 'system deps missing:'; printf ' [%s]' "${missing_what[@]}"; echo

if [ "$(id -u)" -ne 0 ]; then
    echo "Not root: install them with" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing_packages[*]}" >&2
    echo "(or point JIANSHEN_TEST_POSTGRES_URL / JIANSHEN_TEST_REDIS_URL at existing servers)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get not found: install these packages with your system's package manager: ${missing_packages[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep the packages' maintainer scripts from starting redis/postgres as services: the tests start their own
# servers on free ports. policy-rc.d exit code 101 = "action forbidden" for invoke-rc.d. Only remove it if we made it.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

apt-get update -q
apt-get install -y -q --no-install-recommends "${missing_packages[@]}"

# Debian ships the server binaries in /usr/lib/postgresql/<version>/bin (not on PATH); tests/servers.py looks there.
if [ -z "${JIANSHEN_TEST_POSTGRES_URL:-}" ] && ! have_pg_server; then
    echo "postgresql installed but initdb still not found" >&2
    exit 1
fi
echo "system deps: installed ${missing_packages[*]}"
