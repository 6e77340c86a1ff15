#!/usr/bin/env bash
# The demo: secintake doing its main job end to end on this machine.
#   1. installs what is missing (Debian packages), builds secintake;
#   2. starts a private Dovecot + Postfix on loopback (tests/mailstack/mailstack.sh);
#   3. makes an intake key (secintake keys generate), a team key and a reporter key (gpg);
#   4. the reporter sends a gpg-encrypted, signed PGP/MIME report through SMTP;
#   5. `secintake run --once` fetches it, opens a case, acks the reporter, briefs the team;
#   6. prints the case list, the case, the ack as the reporter's gpg decrypts and verifies
#      it, and the team summary as a team member's gpg decrypts and verifies it; then stops
#      everything it started.
# Needs root (Postfix's master runs as root). Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. tests/lib/install-deps.sh
install_deps
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The first build compiles every dependency (minutes on 2 cores): cargo shows each crate.
step "Building secintake (cargo build; the first time takes a few minutes)"
started=$(date +%s)
cargo build --locked --bin secintake
echo "built in $(( $(date +%s) - started )) s"
BIN=$REPO/target/debug/secintake

WORK=$(mktemp -d /tmp/secintake-demo.XXXXXX)
chmod 755 "$WORK"
STACK=$WORK/stack
cleanup() {
    tests/mailstack/mailstack.sh stop "$STACK" >/dev/null 2>&1 || true
    for h in "$WORK"/gpg-*; do GNUPGHOME=$h gpgconf --kill all >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

step "Starting a private mail stack (Dovecot IMAP + Postfix SMTP on loopback)"
tests/mailstack/mailstack.sh start "$STACK" >/dev/null
. "$STACK/env"
echo "IMAP 127.0.0.1:$IMAP_PORT (STARTTLS), SMTP 127.0.0.1:$SMTP_PORT (STARTTLS), CA $CA_FILE"

gpgh() { local who=$1; shift; GNUPGHOME=$WORK/gpg-$who gpg --batch --yes --no-tty --pinentry-mode loopback --passphrase '' "$@"; }
mkdir -m 700 "$WORK/gpg-reporter" "$WORK/gpg-team"

step "Making keys: intake (secintake), team and reporter (gpg)"
DEPLOY=$WORK/deploy
mkdir -p "$DEPLOY/team"
INTAKE_FPR=$("$BIN" keys generate --uid "Security <security@intake.test>" --out "$DEPLOY/keys" 2>/dev/null)
gpgh team --quick-gen-key "Team Member <carol@team.test>" future-default default never 2>/dev/null
gpgh team --armor --export carol@team.test > "$DEPLOY/team/carol.asc"
gpgh reporter --quick-gen-key "Alice Reporter <alice@reporter.test>" future-default default never 2>/dev/null
gpgh reporter --import "$DEPLOY/keys/intake.pub.asc" 2>/dev/null
# The team knows the intake key too: it verifies the summaries' signatures.
gpgh team --import "$DEPLOY/keys/intake.pub.asc" 2>/dev/null
echo "intake key $INTAKE_FPR"

install -m 600 /dev/null "$DEPLOY/imap-password"
printf secret > "$DEPLOY/imap-password"
cat > "$DEPLOY/secintake.toml" <<TOML
[intake]
address = "security@intake.test"

[imap]
host = "127.0.0.1"
port = $IMAP_PORT
tls = "starttls"
ca_file = "$CA_FILE"
username = "security@intake.test"
password_file = "imap-password"

[smtp]
host = "127.0.0.1"
port = $SMTP_PORT
tls = "starttls"
ca_file = "$CA_FILE"

[keys]
intake_secret = "keys/intake.key.asc"
team_certs = "team"

[team]
list_address = "team@team.test"

[policy]
project = "Demo Project"

[store]
path = "state"
TOML
SI=("$BIN" --config "$DEPLOY/secintake.toml")
"${SI[@]}" check

step "The reporter sends a gpg-encrypted, signed report (PGP/MIME, protected subject)"
cat > "$WORK/inner.txt" <<'INNER'
Content-Type: text/plain; charset=utf-8; protected-headers="v1"
Subject: Remote code execution in the upload handler

Vulnerability Title: Remote code execution in the upload handler
Affected Version(s): 2.3.0, 2.3.1
CWE-434
TLP:AMBER

Steps to Reproduce:
1. Upload a file named shell.php
2. Request /uploads/shell.php

I would like credit as Alice Reporter.
INNER
sed -i 's/$/\r/' "$WORK/inner.txt"
gpgh reporter --trust-model always --armor --encrypt --sign -r "$INTAKE_FPR" -u alice@reporter.test -o "$WORK/report.asc" "$WORK/inner.txt" 2>/dev/null
KEYDATA=$(gpgh reporter --export --export-options export-minimal alice@reporter.test | base64 -w 72 | sed 's/^/ /')
{
    printf 'From: Alice Reporter <alice@reporter.test>\r\nTo: security@intake.test\r\nSubject: ...\r\n'
    printf 'Message-ID: <demo-%s@reporter.test>\r\nDate: %s\r\nMIME-Version: 1.0\r\n' "$$" "$(date -R)"
    printf 'Autocrypt: addr=alice@reporter.test; keydata=\r\n%s\r\n' "$(printf '%s' "$KEYDATA" | sed 's/$/\r/')"
    printf 'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b1"\r\n\r\n'
    printf -- '--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b1\r\n'
    printf 'Content-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
    sed 's/$/\r/' "$WORK/report.asc"
    printf -- '--b1--\r\n'
} > "$WORK/report.eml"
tests/mailstack/mailstack.sh send "$STACK" alice@reporter.test security@intake.test "$WORK/report.eml"
tests/mailstack/mailstack.sh wait "$STACK" security@intake.test INBOX 1 30 >/dev/null
echo "delivered to security@intake.test (outer subject on the wire: \"...\")"

step "secintake run --once"
"${SI[@]}" run --once

step "secintake case list"
"${SI[@]}" case list
ID=$("${SI[@]}" case list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

step "secintake case show $ID --json"
"${SI[@]}" case show "$ID" --json

step "The acknowledgement in the reporter's mailbox, decrypted and verified by the reporter's gpg"
tests/mailstack/mailstack.sh wait "$STACK" alice@reporter.test INBOX 1 30 >/dev/null
tests/mailstack/mailstack.sh fetch "$STACK" alice@reporter.test INBOX "$WORK/ack" >/dev/null
grep -m1 '^Subject:' "$WORK/ack/1.eml"
sed -n '/-----BEGIN PGP MESSAGE-----/,/-----END PGP MESSAGE-----/p' "$WORK/ack/1.eml" > "$WORK/ack.asc"
gpgh reporter --decrypt "$WORK/ack.asc" 2> "$WORK/ack.status"
grep -E 'Good signature|gpg: Signature made' "$WORK/ack.status" || { cat "$WORK/ack.status"; exit 1; }

step "The team's summary on the list, decrypted and verified by a team member's gpg"
tests/mailstack/mailstack.sh wait "$STACK" team@team.test INBOX 1 30 >/dev/null
tests/mailstack/mailstack.sh fetch "$STACK" team@team.test INBOX "$WORK/team" >/dev/null
echo "On the wire (unencrypted headers):"
grep -m1 '^Subject:' "$WORK/team/1.eml" | sed 's/^/  /'
sed -n '/-----BEGIN PGP MESSAGE-----/,/-----END PGP MESSAGE-----/p' "$WORK/team/1.eml" > "$WORK/summary.asc"
echo "Inside, as carol@team.test's gpg decrypts it (protected Subject, then the summary):"
gpgh team --decrypt "$WORK/summary.asc" 2> "$WORK/summary.status" > "$WORK/summary.txt"
grep -q 'Good signature' "$WORK/summary.status" || { cat "$WORK/summary.status"; exit 1; }
grep -m3 -iE '^(Subject|Content-Type):' "$WORK/summary.txt" | sed 's/^/  /'
# The body is quoted-printable: decoded for reading, first lines only.
python3 -c 'import email,sys; m=email.message_from_binary_file(open(sys.argv[1],"rb")); parts=[p for p in m.walk() if p.get_content_type()=="text/plain"]; t=(parts[0].get_payload(decode=True) or b"").decode("utf-8","replace"); print("\n".join(t.splitlines()[:30]))' "$WORK/summary.txt" | sed 's/^/  | /'
grep -E 'Good signature' "$WORK/summary.status"
echo
echo "Demo done: the report became $ID, the reporter got a signed and encrypted receipt,"
echo "and the team an encrypted, signed summary whose title only shows inside."
