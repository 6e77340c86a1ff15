#!/usr/bin/env bash
# Benchmark: acknowledgement latency with IMAP IDLE, on the real local mail stack.
# Measures, for N reports (default 20), the time from Postfix accepting the report over
# SMTP (the client's DATA reply) to the ack's arrival in the reporter's mailbox, with
# `secintake run` up (IDLE). Prints every sample, then p50 / p95 / max.
#   bash tests/bench/ack-latency.sh [N]
# Target (issue 4): p50 < 1.5 s, p95 < 3 s. Needs root (Postfix). Builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
N=${1:-20}
. tests/lib/install-deps.sh
install_deps
cargo build --release --quiet
BIN=$REPO/target/release/secintake

WORK=$(mktemp -d /tmp/secintake-bench.XXXXXX)
chmod 755 "$WORK"
STACK=$WORK/stack
DAEMON=""
cleanup() {
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
    tests/mailstack/mailstack.sh stop "$STACK" >/dev/null 2>&1 || true
    GNUPGHOME=$WORK/gpg-team gpgconf --kill all >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
tests/mailstack/mailstack.sh start "$STACK" >/dev/null
. "$STACK/env"

DEPLOY=$WORK/deploy
mkdir -p "$DEPLOY/team" && mkdir -m 700 "$WORK/gpg-team"
"$BIN" keys generate --uid "Security <security@intake.test>" --out "$DEPLOY/keys" >/dev/null 2>&1
GNUPGHOME=$WORK/gpg-team gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key "Team <carol@team.test>" future-default default never 2>/dev/null
GNUPGHOME=$WORK/gpg-team gpg --batch --armor --export carol@team.test > "$DEPLOY/team/carol.asc"
install -m 600 /dev/null "$DEPLOY/pw" && printf secret > "$DEPLOY/pw"
cat > "$DEPLOY/secintake.toml" <<TOML
[intake]
address = "security@intake.test"
[imap]
host = "127.0.0.1"
port = $IMAP_PORT
tls = "starttls"
ca_file = "$CA_FILE"
username = "security@intake.test"
password_file = "pw"
idle = true
poll_interval = "60s"
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
project = "Bench"
[store]
path = "state"
[limits]
acks_per_address_per_hour = 1000
acks_per_hour = 1000
TOML
SECINTAKE_LOG=warn "$BIN" --config "$DEPLOY/secintake.toml" run 2> "$WORK/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do grep -q ready "$WORK/daemon.log" 2>/dev/null && break; sleep 0.1; done
SECINTAKE_LOG=info
sleep 1

python3 - "$SMTP_PORT" "$IMAP_PORT" "$CA_FILE" "$N" <<'PY'
import imaplib, smtplib, ssl, statistics, sys, time
smtp_port, imap_port, ca, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
# Each report comes from its own reporter address so per-address limits never apply;
# all of them are delivered to one mailbox via the reporter domain's catch-all user.
imap = imaplib.IMAP4("127.0.0.1", imap_port)
imap.starttls(ssl_context=ctx)
imap.login("alice@reporter.test", "secret")
imap.select("INBOX")
def count():
    imap.noop()
    typ, data = imap.select("INBOX", readonly=True)
    return int(data[0])
base = count()
samples = []
for i in range(n):
    msg = (f"From: Alice <alice@reporter.test>\r\nTo: security@intake.test\r\n"
           f"Subject: Bench report {i}\r\nMessage-ID: <bench-{i}-{time.time_ns()}@reporter.test>\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\nReport number {i}.\r\n")
    with smtplib.SMTP("127.0.0.1", smtp_port) as s:
        s.starttls(context=ctx)
        s.sendmail("alice@reporter.test", ["security@intake.test"], msg)
        t0 = time.monotonic()   # Postfix accepted the message (DATA replied 250)
    while count() < base + i + 1:
        if time.monotonic() - t0 > 30:
            sys.exit(f"report {i}: no ack within 30 s")
        time.sleep(0.02)
    dt = time.monotonic() - t0
    samples.append(dt)
    print(f"report {i:2d}: ack after {dt:.3f} s", flush=True)
    time.sleep(0.2)
samples.sort()
def pct(p):
    k = max(0, min(len(samples) - 1, round(p / 100 * len(samples) + 0.5) - 1))
    return samples[k]
print(f"ack latency over {n} reports: p50 {statistics.median(samples):.3f} s, p95 {pct(95):.3f} s, max {samples[-1]:.3f} s")
PY
