#!/usr/bin/env bash
# Builds the Debian package with cargo-deb from an already built binary, installs it on
# this machine (dpkg -i), checks what an admin gets, then purges it again.
#
#   tests/package.sh [PROFILE]    PROFILE: dev (default: what tests/run-all.sh builds) or release
#
# The test suite packages the dev-profile binary so CI builds one profile only (a release
# build of everything adds minutes; cargo-deb warns about it, and strips the binary). A
# package to ship is built from release: `tests/package.sh release` or the README steps.
# cargo-deb is installed from crates.io when missing (into ~/.cargo/bin, kept between runs).
# Needs root. Refuses to touch a secintake package it did not install itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-dev}
CARGO_DEB_VERSION=3.8.0
case "$PROFILE" in
    dev) OUT=target/debug ;;
    release) OUT=target/release ;;
    *) echo "package: PROFILE is dev or release" >&2; exit 2 ;;
esac
BIN=$PWD/$OUT/secintake
[ -x "$BIN" ] || { echo "package: $BIN missing; build it first (cargo build$([ "$PROFILE" = release ] && echo ' --release'))" >&2; exit 1; }

if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    echo "package: installing cargo-deb $CARGO_DEB_VERSION from crates.io (once per machine)"
    start=$(date +%s)
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
    echo "package: cargo-deb installed in $(( $(date +%s) - start )) s"
fi

if dpkg-query -W -f='${Status}' secintake 2>/dev/null | grep -q "install ok installed"; then
    echo "package: a secintake package is already installed on this machine; this test installs and purges its own, so it refuses (dpkg --purge secintake first)" >&2
    exit 1
fi

rm -rf target/assets
"$BIN" assets --out target/assets >/dev/null
rm -f target/debian/secintake_*.deb
# --no-build: the binary above is the one packaged. cargo-deb warns that dev is not a
# release profile; that is the point here (see the header).
cargo deb --no-build --profile "$PROFILE" --quiet 2> >(grep -v -e 'dev profile is not supported' -e 'cargo-deb is for making releases' -e 'To enable debug symbols' -e 'Cargo also supports custom profiles' >&2)
DEB=$(ls target/debian/secintake_*.deb)
echo "package: built $DEB ($(du -h "$DEB" | cut -f1))"

passed=0
failed=0
check() {
    local what=$1
    shift
    if out=$("$@" 2>&1); then
        passed=$((passed + 1))
        echo "ok: $what"
    else
        failed=$((failed + 1))
        echo "FAIL: $what"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
}
mode_is() { [ "$(stat -c '%a %U' "$2")" = "$1" ] || { stat -c '%a %U %n' "$2"; return 1; }; }

cleanup() { dpkg --purge secintake >/dev/null 2>&1 || true; }
trap cleanup EXIT
check "dpkg -i installs the package" dpkg -i "$DEB"
check "secintake --help runs from PATH" bash -c 'secintake --help | grep -q "Usage: secintake"'
check "secintake --version" secintake --version
check "man secintake shows the page" bash -c 'MANPAGER=cat man secintake | grep -q "secintake"'
check "man secintake-case (one page per command)" bash -c 'MANPAGER=cat man secintake-case | grep -q -- "--status"'
check "bash completion completes subcommands" bash -c '. /usr/share/bash-completion/completions/secintake && complete -p secintake'
check "zsh and fish completions installed" test -s /usr/share/zsh/vendor-completions/_secintake -a -s /usr/share/fish/vendor_completions.d/secintake.fish
UNIT=$(dpkg -L secintake | grep '/systemd/system/secintake.service$' || true)
check "the unit is installed ($UNIT)" test -n "$UNIT" -a -f "$UNIT"
check "systemd-analyze verify on the installed unit" systemd-analyze verify "$UNIT"
check "the unit is neither enabled nor started by the package" bash -c "! test -e /etc/systemd/system/multi-user.target.wants/secintake.service"
check "example config shipped" test -s /usr/share/doc/secintake/secintake.example.toml
check "/etc/secintake is 0755 root" mode_is "755 root" /etc/secintake
check "/etc/secintake/credentials is 0700 root" mode_is "700 root" /etc/secintake/credentials
check "/etc/secintake/team is 0755 root" mode_is "755 root" /etc/secintake/team
check "dpkg --purge removes it all" bash -c 'dpkg --purge secintake >/dev/null && ! command -v secintake && ! test -e /etc/secintake'
echo "package: $passed checks passed, $failed failed"
[ "$failed" = 0 ]
