#!/usr/bin/env bash
# Lints systemd/secintake.service (systemd-analyze verify, against the built binary) and
# scores its hardening offline; fails when the exposure passes the gate.
#   SECINTAKE_UNIT_THRESHOLD: 0-100 scale, default 15 (an exposure of 1.5).
set -euo pipefail
cd "$(dirname "$0")/.."
THRESHOLD=${SECINTAKE_UNIT_THRESHOLD:-15}
if ! command -v systemd-analyze >/dev/null; then
    echo "unit-score: systemd-analyze missing (install Debian's systemd package)" >&2
    exit 1
fi
BIN=${1:-$PWD/target/debug/secintake}
if [ -x "$BIN" ]; then
    # verify checks that ExecStart exists: point it at the built binary in a copy.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    sed "s|/usr/bin/secintake|$BIN|g" systemd/secintake.service > "$tmp/secintake.service"
    systemd-analyze verify "$tmp/secintake.service"
    echo "unit-score: systemd-analyze verify ok"
fi
systemd-analyze security --offline=true --threshold="$THRESHOLD" systemd/secintake.service | tail -1
