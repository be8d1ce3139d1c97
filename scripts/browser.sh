#!/usr/bin/env bash
# scripts/browser.sh - a headless Chromium for the tests that open `rtbuild metrics --html`
# pages in a real browser (tests/observe). Idempotent: with chromium present it only checks
# that it starts, and returns at once.
#
# Exit codes: 0 ready, 1 failure, 2 not root and chromium must be installed.
set -euo pipefail

log() { printf 'browser.sh: %s\n' "$*" >&2; }

find_chromium() { command -v chromium || command -v chromium-browser || command -v google-chrome || true; }

if [ -z "$(find_chromium)" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "chromium is missing; run as root: apt-get install -y --no-install-recommends chromium"
        exit 2
    fi
    log "installing chromium (Debian package)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium >&2 \
        || { apt-get -o DPkg::Lock::Timeout=600 update >&2 && \
             apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium >&2; }
fi
binary=$(find_chromium)
[ -n "$binary" ] || { log "chromium still missing after the install"; exit 1; }
version=$("$binary" --version 2>/dev/null | head -n1) || { log "$binary does not start"; exit 1; }
log "ready: $version"
