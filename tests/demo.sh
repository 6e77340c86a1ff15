#!/usr/bin/env bash
# The demo: secintake doing its main job end to end on this machine.
#   1. installs what is missing (Debian packages), builds secintake;
#   2. starts a private Dovecot + Postfix on loopback (tests/mailstack/mailstack.sh);
#   3. makes an intake key (secintake keys generate), a team key and a reporter key (gpg);
#   4. the reporter sends a gpg-encrypted, signed PGP/MIME report through SMTP;
#   5. `secintake run --once` fetches it, opens a case, acks the reporter, briefs the team;
#   6. prints the case list, the case, the ack as the reporter's gpg decrypts and verifies
#      it, and the team summary as a team member's gpg decrypts and verifies it;
#   7. two projects in one daemon: a second report goes to security@numlib.test (a
#      Postfix virtual alias into the same mailbox), becomes numlib's case, is acked From
#      numlib's address with numlib's own key, and briefs numlib's maintainer, who cannot
#      read the first project's case until `case set --also-affects numlib`; then stops
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
# numlib: its own intake key, and a maintainer (Nina) whose cert only numlib lists.
NUMLIB_FPR=$("$BIN" keys generate --uid "numlib Security <security@numlib.test>" --out "$DEPLOY/numlib-keys" 2>/dev/null)
mkdir -m 700 "$WORK/gpg-nina"
mkdir -p "$DEPLOY/numlib-team"
gpgh nina --quick-gen-key "Nina Numlib <nina@numlib.test>" future-default default never 2>/dev/null
gpgh nina --armor --export nina@numlib.test > "$DEPLOY/numlib-team/nina.asc"
gpgh nina --import "$DEPLOY/numlib-keys/intake.pub.asc" 2>/dev/null
gpgh reporter --import "$DEPLOY/numlib-keys/intake.pub.asc" 2>/dev/null
echo "numlib's intake key $NUMLIB_FPR"
# Postfix delivers security@numlib.test into security@intake.test's mailbox.
echo "security@numlib.test security@intake.test" > "$WORK/valias"
postconf -c "$POSTFIX_DIR" -e "virtual_alias_domains = numlib.test" "virtual_alias_maps = texthash:$WORK/valias"
postfix -c "$POSTFIX_DIR" reload >/dev/null 2>&1

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

# A second project in the same daemon: its own address (aliased into the one mailbox),
# case prefix, intake key, list and maintainer.
[[projects]]
name = "numlib"
addresses = ["security@numlib.test"]
case_prefix = "NUM"
intake_secret = "numlib-keys/intake.key.asc"
list_address = "carol@team.test"
team_certs = "numlib-team"
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

step "Two projects: a report to security@numlib.test (aliased into the same mailbox)"
cat > "$WORK/inner2.txt" <<'INNER'
Content-Type: text/plain; charset=utf-8; protected-headers="v1"
Subject: Integer overflow in numlib.resize

Steps to Reproduce:
1. numlib.resize(a, 2**62)
2. the process reads past the buffer

Affected versions: 1.4.0 to 1.4.2
INNER
sed -i 's/$/\r/' "$WORK/inner2.txt"
gpgh reporter --trust-model always --armor --encrypt --sign -r "$NUMLIB_FPR" -u alice@reporter.test -o "$WORK/report2.asc" "$WORK/inner2.txt" 2>/dev/null
{
    printf 'From: Alice Reporter <alice@reporter.test>\r\nTo: security@numlib.test\r\nSubject: ...\r\n'
    printf 'Message-ID: <demo2-%s@reporter.test>\r\nDate: %s\r\nMIME-Version: 1.0\r\n' "$$" "$(date -R)"
    printf 'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b1"\r\n\r\n'
    printf -- '--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b1\r\n'
    printf 'Content-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
    sed 's/$/\r/' "$WORK/report2.asc"
    printf -- '--b1--\r\n'
} > "$WORK/report2.eml"
tests/mailstack/mailstack.sh send "$STACK" alice@reporter.test security@numlib.test "$WORK/report2.eml"
tests/mailstack/mailstack.sh wait "$STACK" security@intake.test INBOX 1 30 >/dev/null
"${SI[@]}" run --once
"${SI[@]}" case list
NUM=$("${SI[@]}" case list --project numlib --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
echo "secintake case list --project numlib: $NUM"
"${SI[@]}" status | grep -E '^Project:' || true

step "numlib's ack, From numlib's address, signed by numlib's key (the reporter's gpg)"
tests/mailstack/mailstack.sh wait "$STACK" alice@reporter.test INBOX 2 30 >/dev/null
rm -rf "$WORK/ack2" && tests/mailstack/mailstack.sh fetch "$STACK" alice@reporter.test INBOX "$WORK/ack2" >/dev/null
ACK2=$(grep -l "^Subject: \[$NUM\]" "$WORK"/ack2/*.eml | sed -n 1p)
grep -m1 '^From:' "$ACK2"
sed -n '/-----BEGIN PGP MESSAGE-----/,/-----END PGP MESSAGE-----/p' "$ACK2" > "$WORK/ack2.asc"
gpgh reporter --status-fd 2 --decrypt "$WORK/ack2.asc" > /dev/null 2> "$WORK/ack2.status"
grep -E 'Good signature' "$WORK/ack2.status" || { cat "$WORK/ack2.status"; exit 1; }
# VALIDSIG ends with the primary key's fingerprint.
grep -q "VALIDSIG .*$NUMLIB_FPR" "$WORK/ack2.status" || { echo "not signed by numlib's key"; cat "$WORK/ack2.status"; exit 1; }
echo "signed by numlib's key $NUMLIB_FPR"

# Who can read which summary: every team mail in carol@team.test's mailbox (numlib's list)
# and team@team.test's (the shared list), tried with Nina's gpg.
nina_reads() {  # nina_reads MAILBOX CASE: prints yes/no for the first mail about CASE
    rm -rf "$WORK/box" && tests/mailstack/mailstack.sh fetch "$STACK" "$1" INBOX "$WORK/box" >/dev/null
    local f
    for f in "$WORK"/box/*.eml; do
        grep -q "^Subject: \[$2\]" "$f" || continue
        sed -n '/-----BEGIN PGP MESSAGE-----/,/-----END PGP MESSAGE-----/p' "$f" > "$WORK/try.asc"
        # gpg exits non-zero for a signature by a key Nina does not hold: read its status.
        gpgh nina --status-fd 2 --decrypt "$WORK/try.asc" > /dev/null 2> "$WORK/try.status" || true
        if grep -q DECRYPTION_OKAY "$WORK/try.status"; then echo yes; else echo no; fi
        return
    done
    echo "none"
}
step "numlib's maintainer reads numlib's case, not the other project's"
tests/mailstack/mailstack.sh wait "$STACK" carol@team.test INBOX 1 30 >/dev/null
echo "Nina reads $NUM's summary on numlib's list: $(nina_reads carol@team.test "$NUM")"
echo "Nina reads $ID's summary on the shared list: $(nina_reads team@team.test "$ID")"

step "secintake case set $ID --also-affects numlib: numlib's team is told, encrypted to Nina"
"${SI[@]}" case set "$ID" --also-affects numlib
"${SI[@]}" run --once
tests/mailstack/mailstack.sh wait "$STACK" carol@team.test INBOX 2 30 >/dev/null
echo "Nina reads $ID's summary on numlib's list now: $(nina_reads carol@team.test "$ID")"
echo "secintake case list --project numlib:"
"${SI[@]}" case list --project numlib
"${SI[@]}" stats

step "At rest: the state directory holds the cases sealed (README, \"At rest\")"
for s in "Remote code execution" "Integer overflow" "alice@reporter.test"; do
    if grep -rqaF "$s" "$DEPLOY/state"; then echo "FAIL: \"$s\" is readable in state/" >&2; exit 1; fi
    echo "\"$s\": in no file of state/ (the CLI above read it with the store key)"
done
ls "$DEPLOY/state"

echo
echo "Demo done: the report became $ID, the reporter got a signed and encrypted receipt,"
echo "and the team an encrypted, signed summary whose title only shows inside;"
echo "numlib's report became $NUM, answered From security@numlib.test with numlib's key,"
echo "and only numlib's maintainer was briefed, until $ID was marked as affecting numlib."
