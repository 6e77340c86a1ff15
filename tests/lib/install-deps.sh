#!/usr/bin/env bash
# Installs what building and testing secintake needs, when it is missing. Sourced by
# tests/run-all.sh, tests/demo.sh and .ci/run; needs root (or sudo) to install packages.
#
# Debian packages (install_deps):
# - libclang-dev, libssl-dev, pkg-config: sequoia-openpgp's OpenSSL backend (the `ossl`
#   crate runs bindgen, which needs libclang).
# - dovecot-imapd, dovecot-lmtpd, postfix: the real mail stack the tests run privately.
# - gnupg, rnp: play reporters and the team in tests (never used by the product); rnp is
#   Thunderbird's OpenPGP engine, for interop.
# - openssl: makes the tests' private CA; python3: the test mail stack's SMTP client.
# - python3-venv, nodejs + npm: the advisory validators (install_validators below).
# - systemd: `systemd-analyze` lints and scores the unit file (no running systemd needed).
# - man-db: `man secintake` on the installed package (tests/package.sh).
#
# Registry packages (install_validators), pinned by files committed in tests/validators/:
# - npm: BSI's CSAF validator (@secvisogram/csaf-validator-lib), `npm ci` from
#   package-lock.json into tests/validators/node_modules;
# - PyPI: cvelib (CVE JSON 5) and osv (the OSV schema), into tests/validators/.venv.
# Both are skipped when what is installed matches the committed pins.

SECINTAKE_DEPS=(libclang-dev libssl-dev pkg-config dovecot-imapd dovecot-lmtpd postfix gnupg rnp openssl
    python3 python3-venv ca-certificates systemd man-db)

# Rust: the toolchain rust-toolchain.toml names; Debian 12's cargo is far too old.
require_rust() {
    if ! command -v cargo >/dev/null 2>&1 || ! cargo --version >/dev/null 2>&1; then
        echo "secintake needs Rust 1.95 from rustup (Debian's cargo is too old):" >&2
        echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain 1.95.0" >&2
        echo "  . \"\$HOME/.cargo/env\"" >&2
        return 1
    fi
}

install_deps() {
    require_rust || return 1
    local missing=()
    for p in "${SECINTAKE_DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # Node from any source will do (a packaged nodejs with npm inside conflicts with
    # Debian's npm package): asked for by command, not by package.
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "Installing missing packages: ${missing[*]}" >&2
        local sudo=""
        if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
        # Postfix must not ask questions nor configure a system mail server.
        echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        # Packages may start the system instances; the tests run private ones on free ports.
        for svc in dovecot postfix; do
            $sudo systemctl stop "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
        done
    fi
    install_validators
}

# The advisory validators tests/export.rs runs. Idempotent and quick when up to date: each
# install leaves a copy of the pin file it installed from, compared on the next run.
install_validators() {
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../validators" && pwd)"
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.secintake-installed" 2>/dev/null; then
        echo "Installing the CSAF validator from npm (tests/validators/package-lock.json)" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
        cp "$dir/package-lock.json" "$dir/node_modules/.secintake-installed"
    fi
    if ! cat "$dir/requirements.txt" "$dir/requirements-nodeps.txt" | cmp -s - "$dir/.venv/.secintake-installed" 2>/dev/null; then
        echo "Installing cvelib and the OSV schema from PyPI (tests/validators/requirements*.txt)" >&2
        rm -rf "$dir/.venv"
        # Debian's interpreter, whatever python3 comes first on PATH.
        /usr/bin/python3 -m venv "$dir/.venv" || return 1
        "$dir/.venv/bin/pip" install -q --disable-pip-version-check -r "$dir/requirements.txt" || return 1
        "$dir/.venv/bin/pip" install -q --disable-pip-version-check --no-deps --ignore-requires-python -r "$dir/requirements-nodeps.txt" || return 1
        cat "$dir/requirements.txt" "$dir/requirements-nodeps.txt" > "$dir/.venv/.secintake-installed"
    fi
    # OpenPGP.js 5 and 6 (npm, pinned by fixtures/interop/js/package-lock.json): the
    # interop fixtures' maker, and tests/trust.rs encrypts with them at test time.
    local js
    js="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../fixtures/interop/js" && pwd)"
    if ! cmp -s "$js/package-lock.json" "$js/node_modules/.secintake-installed" 2>/dev/null; then
        echo "Installing OpenPGP.js 5 and 6 from npm (fixtures/interop/js/package-lock.json)" >&2
        (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
        cp "$js/package-lock.json" "$js/node_modules/.secintake-installed"
    fi
}
