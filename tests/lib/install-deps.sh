#!/usr/bin/env bash
# Installs, from Debian's packages only, what building and testing secintake needs, when
# it is missing. Sourced by tests/run-all.sh and tests/demo.sh; needs root to install.
#
# - libclang-dev, nettle-dev, pkg-config: sequoia-openpgp's nettle backend runs bindgen.
# - dovecot-imapd, dovecot-lmtpd, postfix: the real mail stack the tests run privately.
# - gnupg: plays the reporter and the team in tests (never used by the product).
# - openssl: makes the tests' private CA; python3: the test mail stack's SMTP client.
# - systemd: `systemd-analyze` lints and scores the unit file (no running systemd needed).

SECINTAKE_DEPS=(libclang-dev nettle-dev pkg-config dovecot-imapd dovecot-lmtpd postfix gnupg openssl python3 ca-certificates systemd python3-jsonschema)

install_deps() {
    local missing=()
    for p in "${SECINTAKE_DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
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
}
