#!/usr/bin/env bash
# Scores systemd/secintake.service offline and fails when its exposure passes the gate.
set -euo pipefail
cd "$(dirname "$0")/.."
THRESHOLD=${SECINTAKE_UNIT_THRESHOLD:-15}   # 0-100 scale: 15 is "1.5"
if ! command -v systemd-analyze >/dev/null; then
    echo "unit-score: systemd-analyze missing (install Debian's systemd package)" >&2
    exit 1
fi
systemd-analyze security --offline=true --threshold="$THRESHOLD" systemd/secintake.service | tail -3
