#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run runs exactly this): installs what is
# missing (Debian packages, the advisory validators from npm and PyPI), builds once (the
# dev profile, dependencies optimised; see Cargo.toml), then runs every check even when
# an earlier one fails, and ends with one summary line:
#   the unit file (lint + hardening score), every cargo test binary (--no-fail-fast), the
#   Debian package (built from the same binary, installed, checked, purged), the fuzz
#   target's build, rustfmt and clippy (warnings are errors).
# The real mail stack tests and the package need root (Postfix's master runs as root;
# dpkg); nothing is skipped silently.
set -uo pipefail
cd "$(dirname "$0")/.."
. tests/lib/install-deps.sh
install_deps || { echo "tests/run-all.sh: installing the dependencies failed" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
    echo "tests/run-all.sh: the real mail stack tests and the package check need root; run with sudo" >&2
    exit 1
fi

section() { printf '\n== %s\n' "$*"; }
started=$(date +%s)
LOG=$(mktemp /tmp/secintake-tests.XXXXXX)
trap 'rm -f "$LOG"' EXIT

section "Building (cargo build --all-targets)"
if ! cargo build --all-targets --locked; then
    echo "tests/run-all.sh: the build failed; nothing was tested"
    echo "summary: 0 passed, 1 failed"
    exit 1
fi

passed=0
failed=0
failures=()
script() {
    local name=$1
    shift
    section "$name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
    fi
}

script "Unit file: systemd-analyze verify and hardening score" bash tests/unit-score.sh "$PWD/target/debug/secintake"

section "cargo test (every test binary, even after a failure)"
cargo test --locked --no-fail-fast -- --test-threads=2 2>&1 | tee "$LOG"
test_rc=${PIPESTATUS[0]}
# "test result: ok. 12 passed; 0 failed; 1 ignored; ..." once per test binary.
read -r t_passed t_failed t_ignored < <(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) ~ /^passed;?/) p += $(i-1); if ($(i) ~ /^failed;?/) f += $(i-1); if ($(i) ~ /^ignored;?/) g += $(i-1)
        }
    } END { print p+0, f+0, g+0 }' "$LOG")
passed=$((passed + t_passed))
failed=$((failed + t_failed))
if [ "$test_rc" != 0 ] && [ "$t_failed" = 0 ]; then
    # A test binary that crashed or did not build reports no "failed" count of its own.
    failed=$((failed + 1))
    failures+=("cargo test exited $test_rc")
fi

script "Debian package: cargo deb, dpkg -i, checks, purge" bash tests/package.sh dev
# The fuzz target (the real ingest path) must build; same profile and target dir.
script "Fuzz target builds" cargo build --locked --manifest-path fuzz/Cargo.toml --target-dir target
script "cargo fmt --check" cargo fmt --check
script "cargo clippy -D warnings" cargo clippy --locked --all-targets -- -D warnings

section "Summary ($(( $(date +%s) - started )) s)"
for f in "${failures[@]}"; do echo "failed: $f"; done
if [ "$t_ignored" != 0 ]; then
    echo "summary: $passed passed, $failed failed, $t_ignored skipped"
else
    echo "summary: $passed passed, $failed failed"
fi
[ "$failed" = 0 ]
