#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing (Debian packages), then
# runs every test, including those against the real Dovecot + Postfix stack on loopback.
# Those need root (Postfix's master must start as root); they never skip silently.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/lib/install-deps.sh
install_deps

if [ "$(id -u)" != 0 ]; then
    echo "tests/run-all.sh: the real mail stack tests need root (Postfix runs as root); run with sudo" >&2
    exit 1
fi

# One build profile (dev, dependencies optimised; see Cargo.toml) for everything.
cargo build --all-targets --locked
# The unit file: linted against the built binary, hardening score gated.
bash tests/unit-score.sh "$PWD/target/debug/secintake"
cargo test --locked -- --test-threads=2
