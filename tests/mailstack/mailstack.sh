#!/usr/bin/env bash
# mailstack.sh - a private, throw-away mail stack on loopback for integration tests.
#
# Runs one Dovecot 2.3 (IMAP + LMTP) and one Postfix 3.7 (SMTP) instance entirely inside a
# directory chosen by the caller, on free 127.0.0.1 ports.  Nothing under /etc/dovecot,
# /etc/postfix, /var/spool/postfix, /var/lib/* or /run is read for configuration or written;
# several instances (one per directory) run side by side, so tests can run in parallel.
# Mail for the test domains goes Postfix -> LMTP -> Dovecot; every other destination hits
# Postfix's "error" transport, so nothing ever leaves the machine.
#
# Must run as root (Postfix's master insists on it; Dovecot needs it to switch to the
# dovecot/dovenull users).
#
# Usage:
#   mailstack.sh start   DIR                      start; prints the KEY=VALUE lines of DIR/env
#   mailstack.sh stop    DIR                      stop both daemons (idempotent)
#   mailstack.sh send    DIR FROM TO[,TO...] FILE submit FILE over SMTP (envelope FROM/TO)
#   mailstack.sh count   DIR USER MAILBOX         print the message count (0 if no mailbox)
#   mailstack.sh fetch   DIR USER MAILBOX OUTDIR  write OUTDIR/1.eml ...; print how many
#   mailstack.sh wait    DIR USER MAILBOX N [TIMEOUT_S]  wait for >= N messages (default 30 s)
#   mailstack.sh deliver DIR USER FILE            save FILE into USER's INBOX, bypassing SMTP
#
# Layout of DIR after "start":
#   env            KEY=VALUE lines (see write_env), sourceable by sh and trivially parsable
#   password       the password of every test user ("secret", no trailing newline), mode 600
#   ca.pem ca.key  the test CA (trust anchor for clients); leaf.pem leaf.key: server cert
#   dovecot/       dovecot.conf, users (passwd-file), state/
#   run/           Dovecot base_dir (sockets, master.pid)
#   mail/          mail homes, DIR/mail/DOMAIN/USER/sdbox, owned by dovecot
#   dovecot.log    all Dovecot logging
#   postfix/       main.cf, master.cf
#   postfix-queue/ postfix-data/   Postfix queue_directory and data_directory
#   postfix.log    all Postfix logging (via postlogd)
#   *.start.log    stdout/stderr of the daemon start commands (start-up errors land here)

set -euo pipefail

# Test users; every one has the password in $PASSWORD.
USERS=(security@intake.test alice@reporter.test bob@reporter.test team@team.test carol@team.test)
DOMAINS="intake.test reporter.test team.test"
PASSWORD=secret

PROG=${0##*/}

# Only the standard library (socket, smtplib) is needed, so prefer the distribution's
# interpreter over whatever "python3" is first on PATH (a pyenv shim is a bash script that
# costs ~0.2 s per call), and skip site-packages/user site (-I -S): ~0.03 s per call.
PYTHON=python3
[[ -x /usr/bin/python3 ]] && PYTHON=/usr/bin/python3
py() { "$PYTHON" -I -S "$@"; }

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
usage() {
    sed -n '/^# Usage:/,/^# *$/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Resolve DIR to an absolute path.  Configs, the env file and Postfix's parameter syntax
# (whitespace/comma separated lists, $ expansion) cannot cope with odd characters, and the
# env file is unquoted, so only a conservative character set is accepted.
absdir() {
    local d=$1
    [[ $d == /* ]] || d="$PWD/$d"
    # Collapse "//", "/./", ".." and a trailing "/" without requiring the dir to exist.
    d=$(realpath -m -- "$d")
    [[ $d =~ ^[A-Za-z0-9._/+-]+$ ]] ||
        die "DIR must consist of [A-Za-z0-9._/+-] only (got '$d')"
    # Dovecot clients (doveadm, login processes) connect to ABSOLUTE unix-socket paths under
    # base_dir = DIR/run, and sun_path holds at most 107 bytes; the longest socket name
    # Dovecot 2.3 uses below base_dir is about 25 bytes ("token-login/tokenlogin" etc.).
    (( ${#d} <= 75 )) || die "DIR path too long for unix sockets (${#d} > 75 chars): $d"
    printf '%s\n' "$d"
}

# Read KEY from DIR/env (written by start).
env_get() {
    local key=$1 line
    [[ -f $DIR/env ]] || die "$DIR/env not found: is the mail stack started?"
    while IFS= read -r line; do
        if [[ $line == "$key="* ]]; then printf '%s\n' "${line#*=}"; return 0; fi
    done <"$DIR/env"
    die "$key missing from $DIR/env"
}

# ---------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------

# Print N distinct free TCP ports on 127.0.0.1.  All sockets are held open until every port is
# chosen, so the N ports are distinct; the kernel picks them at random from the ephemeral
# range, so parallel instances rarely collide, and "start" retries with new ports if a daemon
# nevertheless fails with "Address already in use" (another process may grab a port between
# this probe and the daemon's bind).
free_ports() {
    py - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# Wait until every given 127.0.0.1 port accepts a TCP connection; exit 1 after TIMEOUT_S.
# (Both masters bind all their listeners before their start command returns, so this is a
# cheap sanity check; the implicit-TLS ports are not probed because a bare connect there only
# produces TLS handshake errors in the logs.)
wait_ports() {
    py - "$@" <<'EOF'
import socket, sys, time
timeout = float(sys.argv[1])
ports = [int(p) for p in sys.argv[2:]]
deadline = time.monotonic() + timeout
for port in ports:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                print(f"port {port} does not accept connections after {timeout} s", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.05)
EOF
}

# ---------------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------------

# A CA plus a leaf signed by it.  rustls/webpki refuses a self-signed certificate that is its
# own CA (CaUsedAsEndEntity), so the server presents a separate leaf: CA:FALSE, serverAuth,
# SAN localhost + 127.0.0.1.  EC P-256 because key generation is instant.
make_certs() {
    local d=$1 ext
    [[ -s $d/ca.pem && -s $d/leaf.pem && -s $d/leaf.key ]] && return 0  # reuse on restart
    ext=$(mktemp "$d/leaf-ext.XXXXXX")
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/ca.key" -out "$d/ca.pem" -days 3650 -subj "/CN=mailstack test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
    cat >"$ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    # "x509 -req" in OpenSSL 3.0 cannot backdate notBefore: the leaf is valid from "now".
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/leaf.key" -out "$d/leaf.csr" -subj "/CN=localhost" 2>/dev/null
    openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$ext" \
        -out "$d/leaf.pem" 2>/dev/null
    rm -f "$ext" "$d/leaf.csr"
    # Keys are read by root only (Dovecot's config process, Postfix's smtpd before it drops
    # privileges); certificates are public.
    chmod 600 "$d/ca.key" "$d/leaf.key"
    chmod 644 "$d/ca.pem" "$d/leaf.pem"
}

# ---------------------------------------------------------------------------------------------
# Dovecot
# ---------------------------------------------------------------------------------------------

write_dovecot_conf() {
    local d=$1 conf=$1/dovecot/dovecot.conf dh=""
    # Debian ships DH parameters; only DHE cipher suites need them (the EC cert uses ECDHE),
    # but setting it silences 2.3's complaint if a client offers DHE.
    [[ -r /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    cat >"$conf" <<EOF
# Private Dovecot instance generated by $PROG; do not edit (rewritten on every start).
# Nothing here refers to /etc/dovecot; every path is absolute and below $d.

# Runtime dir (sockets, master.pid) and state dir: private, so instances never meet.
base_dir = $d/run
state_dir = $d/dovecot/state
# A single log file for everything (errors, info, debug).
log_path = $d/dovecot.log
info_log_path = $d/dovecot.log
debug_log_path = $d/dovecot.log

protocols = imap lmtp
# Only ever bind loopback (every inet_listener below names 127.0.0.1 too).
listen = 127.0.0.1
hostname = imap.intake.test

# TLS with the leaf signed by the private CA ("<" = read the file's content).
ssl = yes
ssl_cert = <$d/leaf.pem
ssl_key = <$d/leaf.key
$dh

# Tests log in over plain IMAP on loopback too, not only after STARTTLS / on IMAPS.
disable_plaintext_auth = no
auth_mechanisms = plain login
# The default 2 s penalty after a failed login would slow down negative tests.
auth_failure_delay = 0
# Debian's default (first_valid_uid = 500) rejects the dovecot system user (uid ~100) as mail
# owner; mail must not be owned by root either, so allow low uids.
first_valid_uid = 1
# System users that exist in Debian's dovecot-core package.
default_internal_user = dovecot
default_login_user = dovenull

# Every user authenticates with {PLAIN} passwords from a private passwd-file ...
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu $d/dovecot/users
}
# ... and all mail is stored as the dovecot user below DIR/mail/DOMAIN/USER.  A static userdb
# (without allow_all_users) still asks the passdb whether a user exists, so LMTP rejects
# unknown recipients at RCPT TO.
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$d/mail/%Ld/%Ln
}
mail_uid = dovecot
mail_gid = dovecot
# single-dbox: one file per message, much faster than Maildir for big mailboxes.
mail_location = sdbox:~/sdbox
# Test mail is disposable; skipping fsync() makes deliveries faster.
mail_fsync = never
# Note: sdbox stores every message (LMTP, doveadm save, IMAP APPEND) with LF line ends, CRLF
# and LF in the input alike; mail_save_crlf = yes has no effect on sdbox.  IMAP clients get
# the stored text with every LF turned into CRLF.

namespace inbox {
  inbox = yes
  separator = /
  prefix =
}

# The default of 10 IMAP connections per user+IP would break parallel test clients, which all
# come from 127.0.0.1.
protocol imap {
  mail_max_userip_connections = 1000
}

protocol lmtp {
  # Deliver user+detail@domain to INBOX, never to a mailbox named "detail".
  lmtp_save_to_detail_mailbox = no
  postmaster_address = postmaster@intake.test
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}

# LMTP over TCP on loopback, so Postfix (which cannot reach into base_dir portably) delivers
# with virtual_transport = lmtp:inet:127.0.0.1:PORT.
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}
EOF
}

start_dovecot() {
    local d=$1 u
    mkdir -p "$d/dovecot/state" "$d/run" "$d/mail"
    # Mail homes are created on demand by processes running as the dovecot user.
    chown dovecot:dovecot "$d/mail"
    chmod 755 "$d/dovecot" "$d/run"
    : >"$d/dovecot/users"
    for u in "${USERS[@]}"; do
        # passwd-file format: user:password:uid:gid:gecos:home:shell:extra
        printf '%s:{PLAIN}%s::::::\n' "$u" "$PASSWORD" >>"$d/dovecot/users"
    done
    # Dovecot 2.3's auth process runs as default_internal_user (dovecot), not root.
    chown root:dovecot "$d/dovecot/users"
    chmod 640 "$d/dovecot/users"
    write_dovecot_conf "$d"
    # cmd_start has checked that no Dovecot of this DIR is alive; a leftover master.pid may
    # still name a zombie (not yet reaped by PID 1), which Dovecot would take for a running
    # instance ("Fatal: Dovecot is already running with PID ...").
    rm -f "$d/run/master.pid"
    # Daemonizes after binding every listener, so a port clash makes this command fail.
    # stdio goes to a file: a daemon inheriting the caller's pipe would keep it open and hang
    # callers that read our output to EOF (e.g. Rust's Command::output()).
    if ! dovecot -c "$d/dovecot/dovecot.conf" </dev/null >"$d/dovecot.start.log" 2>&1; then
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# Postfix
# ---------------------------------------------------------------------------------------------

write_postfix_conf() {
    local d=$1 pf=$1/postfix u
    for u in "${USERS[@]}"; do printf '%s OK\n' "$u"; done >"$pf/vmailbox"
    cat >"$pf/main.cf" <<EOF
# Private Postfix instance generated by $PROG; do not edit (rewritten on every start).
# Started with "postfix -c $pf start"; nothing here refers to /etc/postfix or /var.
compatibility_level = 3.6

# Private queue and data (TLS caches, master.lock) directories.
queue_directory = $d/postfix-queue
data_directory = $d/postfix-data

# Log to a file through postlogd (needs the postlog service in master.cf); Postfix refuses a
# maillog_file outside the maillog_file_prefixes directories.
maillog_file = $d/postfix.log
maillog_file_prefixes = $d

# The unprivileged user and the group of the queue's public directories (Debian's); stated
# explicitly because make_postfix_dirs hard-codes them too.
mail_owner = postfix
setgid_group = postdrop

myhostname = mx.intake.test
mydomain = intake.test
myorigin = \$myhostname
# Nothing is delivered "locally"; the test domains are virtual mailbox domains (below).
mydestination =
local_recipient_maps =
local_transport = error:no local delivery in tests
alias_maps =
alias_database =

# Loopback only, IPv4 only; outgoing (LMTP) connections bind to loopback too.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
lmtp_bind_address = 127.0.0.1
smtp_bind_address = 127.0.0.1

# Test clients on loopback may send anywhere (a relay attempt is then bounced below); nobody
# else can connect anyway.
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
# Never look up the client's name in DNS (no network in test sandboxes; deterministic logs).
smtpd_peername_lookup = no
# Treat test clients like remote senders: by default (permit_inet_interfaces) a client on
# 127.0.0.1 counts as "local", and Postfix would add missing Date:/Message-ID:/From: headers
# and qualify bare addresses in headers, changing the messages the tests craft.  Postfix
# still prepends its Received: header; Dovecot's LMTP adds Return-Path:, Delivered-To: and
# another Received: header.
local_header_rewrite_clients =
always_add_missing_headers = no

# The test domains go to the private Dovecot over LMTP.  The test users are listed in a
# texthash map (plain text, read at start, no postmap needed), so smtpd refuses unknown users
# at RCPT TO ("550 5.1.1 ... User unknown in virtual mailbox table") instead of accepting and
# bouncing them to the sender later.
virtual_mailbox_domains = $DOMAINS
virtual_mailbox_maps = texthash:$pf/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
# Everything else goes to the error transport, so mail never leaves 127.0.0.1; smtpd even
# refuses such recipients at RCPT TO ("550 5.1.1 <x@example.com>: Recipient address rejected:
# no external delivery in tests"), because it knows they would bounce.
default_transport = error:no external delivery in tests
relay_transport = error:no external delivery in tests
relay_domains =
relayhost =

# STARTTLS offered (not required) with the leaf signed by the private CA.
smtpd_tls_security_level = may
smtpd_tls_chain_files = $d/leaf.key, $d/leaf.pem
smtpd_tls_loglevel = 0
lmtp_tls_security_level = none

# Dovecot 2.3's LMTP does not offer SMTPUTF8; with it enabled, mail flagged SMTPUTF8 would
# bounce at the LMTP hop.
smtputf8_enable = no
biff = no
disable_vrfy_command = yes
smtpd_banner = \$myhostname ESMTP

# Tests send 30 MiB attachments (base64 makes that ~41 MB on the wire).  The two *_limit
# parameters must not be smaller than message_size_limit or local/virtual refuse to run.
message_size_limit = 104857600
mailbox_size_limit = 0
virtual_mailbox_limit = 0

# A deferred message (e.g. Dovecot briefly down) is retried within about 2-3 s.
# minimal_backoff_time must stay above 1s: the queue manager picks up deferred files whose
# retry time is at most "now + 1 s", so with 1s it can rescan the message at once, while the
# LMTP client still holds the queue file's lock; it then logs "skipped, still being
# delivered" and parks the message for a fixed 60 s (measured).
queue_run_delay = 1s
minimal_backoff_time = 2s
maximal_backoff_time = 3s
# Never throttle fast senders (tests submit bursts of messages).
in_flow_delay = 0
EOF

    # master.cf: the services of Debian's master.cf, with every chroot column "n" (a chroot
    # would need copies of /etc files in the queue dir) and the system "smtp inet" (port 25)
    # line replaced by listeners on the private loopback ports.
    cat >"$pf/master.cf" <<EOF
# service       type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$SMTP_PORT  inet  n  -  n  -  -  smtpd
127.0.0.1:$SMTPS_PORT inet  n  -  n  -  -  smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup     unix  n  -  n  60    1  pickup
cleanup    unix  n  -  n  -     0  cleanup
qmgr       unix  n  -  n  300   1  qmgr
tlsmgr     unix  -  -  n  1000? 1  tlsmgr
rewrite    unix  -  -  n  -     -  trivial-rewrite
bounce     unix  -  -  n  -     0  bounce
defer      unix  -  -  n  -     0  bounce
trace      unix  -  -  n  -     0  bounce
verify     unix  -  -  n  -     1  verify
flush      unix  n  -  n  1000? 0  flush
proxymap   unix  -  -  n  -     -  proxymap
proxywrite unix  -  -  n  -     1  proxymap
smtp       unix  -  -  n  -     -  smtp
relay      unix  -  -  n  -     -  smtp
  -o syslog_name=postfix/\$service_name
showq      unix  n  -  n  -     -  showq
error      unix  -  -  n  -     -  error
retry      unix  -  -  n  -     -  error
discard    unix  -  -  n  -     -  discard
local      unix  -  n  n  -     -  local
virtual    unix  -  n  n  -     -  virtual
lmtp       unix  -  -  n  -     -  lmtp
anvil      unix  -  -  n  -     1  anvil
scache     unix  -  -  n  -     1  scache
postlog    unix-dgram n  -  n  -  1  postlogd
EOF
    # Every Postfix program refuses to read a main.cf whose mtime is less than ~1 s old (it
    # "lets the file cool down", retrying every 0.3 s, so a freshly written main.cf costs up to
    # 2 s per postconf/postfix call).  Backdating the files avoids that.
    touch -d '1 minute ago' "$pf/main.cf" "$pf/master.cf" "$pf/vmailbox"
}

# Create queue_directory's subdirectories and data_directory with the owners and modes that
# Postfix's own installation manifest ($meta_directory/postfix-files) prescribes, then ask the
# next "postfix start" to skip its integrity checks (queue_directory/quick-start).  A full
# "postfix start" runs "post-install create-missing" plus "check-warn", shell loops over the
# whole manifest that cost about 2 s on a loaded 2-core machine; this takes milliseconds.
# Note: create-missing would NOT fix the owner of an existing data_directory (it must be
# mail_owner, or the master cannot create master.lock there: "Permission denied").
make_postfix_dirs() {
    local d=$1 meta path type owner group mode rest
    meta=$(postconf -c "$d/postfix" -h meta_directory)
    [[ -r $meta/postfix-files ]] || return 0  # unknown layout: let "postfix start" do it all
    while IFS=: read -r path type owner group mode rest; do
        [[ $type == d ]] || continue
        case $path in
            '$queue_directory'*) path=$d/postfix-queue${path#'$queue_directory'} ;;
            '$data_directory'*)  path=$d/postfix-data${path#'$data_directory'} ;;
            *) continue ;;
        esac
        owner=${owner/'$mail_owner'/postfix}
        group=${group/'$setgid_group'/postdrop}
        [[ $group == - ]] && group=""
        mkdir -p "$path"
        chown "$owner${group:+:$group}" "$path"
        chmod "$mode" "$path"
    done < <(cat "$meta/postfix-files" "$meta"/postfix-files.d/*.files 2>/dev/null)
    touch "$d/postfix-queue/quick-start"
}

start_postfix() {
    local d=$1
    mkdir -p "$d/postfix" "$d/postfix-queue" "$d/postfix-data"
    chmod 755 "$d/postfix" "$d/postfix-queue"
    write_postfix_conf "$d"
    make_postfix_dirs "$d"
    # master -w (run by "postfix start") returns once the master has bound its listeners.
    # Start-up errors are printed to the terminal only, hence the capture file.
    postfix -c "$d/postfix" start </dev/null >"$d/postfix.start.log" 2>&1
}

# ---------------------------------------------------------------------------------------------
# Stop
# ---------------------------------------------------------------------------------------------

# True if PID exists and is not a zombie.  Both masters daemonize, so their parent is PID 1,
# and an init that reaps orphans only now and then (as in some containers/microVMs, where
# zombies were seen to linger ~2 s) would otherwise make a dead master look alive.
is_alive() {
    local stat
    # "read <file" is a builtin: no fork per check (stop polls many PIDs every 20 ms).
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }          # field 3 (state) follows the ")" that closes the comm field
    [[ ${stat%% *} != Z ]]
}

# PID from a pid file, if that process is alive and has the expected command name.
live_pid() {
    local file=$1 comm=$2 pid
    [[ -r $file ]] || return 1
    pid=$(tr -dc '0-9' <"$file" | head -c 10)
    [[ -n $pid ]] || return 1
    local c=""
    { read -r c <"/proc/$pid/comm"; } 2>/dev/null
    [[ $c == "$comm" ]] || return 1
    is_alive "$pid" || return 1
    printf '%s\n' "$pid"
}

# Stop both daemons of DIR and wait (max 10 s) until they and their children are gone.
# SIGTERM to the master PID is exactly what "postfix stop" and "doveadm stop" do; sending it
# ourselves and polling every 20 ms avoids "postfix stop"'s 1 s sleep steps.
# Dovecot's master, on SIGTERM, kills its children, keeps its "log" child to the last and then
# sleep()s a whole second if any child is still alive at that moment (seen with strace), so a
# plain SIGTERM usually costs ~1.1 s.  Sending SIGTERM to the master and all its children at
# once avoids that (~0.1 s); the price is shutdown noise in dovecot.log: "Warning: Killed
# with signal 15", "Shutting down logging for ...", and sometimes "auth: Error:
# read(anvil-auth-penalty) failed: EOF" (anvil went first).  Tests that scan dovecot.log for
# errors should only look at lines logged before "stop".
do_stop() {
    local d=$1 pids=() pid deadline alive
    if pid=$(live_pid "$d/run/master.pid" dovecot); then
        pids+=("$pid" $(pgrep -P "$pid" || true))
        kill -TERM "${pids[@]}" 2>/dev/null || true
    fi
    if pid=$(live_pid "$d/postfix-queue/pid/master.pid" master); then
        pids+=("$pid" $(pgrep -P "$pid" || true))
        kill -TERM "$pid" 2>/dev/null || true  # the master terminates its process group
    fi
    (( ${#pids[@]} )) || return 0
    deadline=$(( ${EPOCHREALTIME/./} + 10000000 ))  # microseconds
    while :; do
        alive=()
        for pid in "${pids[@]}"; do
            is_alive "$pid" && alive+=("$pid")
        done
        (( ${#alive[@]} )) || break
        if (( ${EPOCHREALTIME/./} > deadline )); then
            echo "$PROG: processes still alive after 10 s, killing: ${alive[*]}" >&2
            kill -KILL "${alive[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.02
    done
    return 0
}

# ---------------------------------------------------------------------------------------------
# Start
# ---------------------------------------------------------------------------------------------

write_env() {
    local d=$1
    cat >"$d/env.tmp" <<EOF
MAILSTACK_DIR=$d
IMAP_PORT=$IMAP_PORT
IMAPS_PORT=$IMAPS_PORT
SMTP_PORT=$SMTP_PORT
SMTPS_PORT=$SMTPS_PORT
LMTP_PORT=$LMTP_PORT
CA_FILE=$d/ca.pem
PASSWORD_FILE=$d/password
DOVECOT_CONF=$d/dovecot/dovecot.conf
POSTFIX_DIR=$d/postfix
EOF
    mv "$d/env.tmp" "$d/env"  # readers never see a half-written file
    cat "$d/env"
}

cmd_start() {
    local d=$1 p attempt
    if live_pid "$d/run/master.pid" dovecot >/dev/null ||
        live_pid "$d/postfix-queue/pid/master.pid" master >/dev/null; then
        die "a mail stack is already running in $d (run: $PROG stop $d)"
    fi
    mkdir -p "$d"
    # Dovecot's unprivileged processes (dovecot, dovenull) must traverse every directory down
    # to DIR/run and DIR/mail.  DIR itself gets 755; ancestors only get o+x added where it is
    # missing -- a plain "chmod 755" would e.g. strip the sticky bit from /tmp.
    chmod 755 "$d"
    p=$(dirname "$d")
    while [[ $p != / ]]; do
        [[ $(stat -c %A "$p") == ?????????[xt] ]] || chmod a+x "$p"
        p=$(dirname "$p")
    done
    rm -f "$d/env"
    umask 022
    printf '%s' "$PASSWORD" >"$d/password"
    chmod 600 "$d/password"
    make_certs "$d"

    local dlog plog errs
    for attempt in 1 2 3 4 5; do
        read -r IMAP_PORT IMAPS_PORT SMTP_PORT SMTPS_PORT LMTP_PORT <<<"$(free_ports 5)"
        # The daemons append to their logs: remember where this attempt's lines begin.
        dlog=$(stat -c %s "$d/dovecot.log" 2>/dev/null || echo 0)
        plog=$(stat -c %s "$d/postfix.log" 2>/dev/null || echo 0)
        rm -f "$d/dovecot.start.log" "$d/postfix.start.log"
        if start_dovecot "$d" && start_postfix "$d" &&
            wait_ports 15 "$IMAP_PORT" "$LMTP_PORT" "$SMTP_PORT"; then
            write_env "$d"
            return 0
        fi
        do_stop "$d"
        # Retry with new ports only if a port was taken between the probe and the daemon's
        # bind(); any other failure is final.
        # (Collected into a variable: a missing file must not fail a pipeline under pipefail.)
        errs=$({ cat "$d/dovecot.start.log" "$d/postfix.start.log"
                 tail -c +$((dlog + 1)) "$d/dovecot.log"
                 tail -c +$((plog + 1)) "$d/postfix.log"; } 2>/dev/null || true)
        if [[ $errs == *"Address already in use"* ]]; then
            echo "$PROG: port clash, retrying with new ports (attempt $attempt)" >&2
            continue
        fi
        break
    done
    {
        echo "$PROG: failed to start the mail stack in $d"
        for f in dovecot.start.log dovecot.log postfix.start.log postfix.log; do
            [[ -s $d/$f ]] && { echo "----- $d/$f (tail)"; tail -n 40 "$d/$f"; }
        done
        if [[ -f $d/postfix/main.cf ]]; then
            echo "----- postfix -c $d/postfix check"
            postfix -c "$d/postfix" check 2>&1 || true
        fi
    } >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Client helpers
# ---------------------------------------------------------------------------------------------

# doveadm against the private instance.  It looks users up through DIR/run/auth-userdb and
# accesses the mail files itself (as the dovecot user), so Dovecot must be running.
dadm() { doveadm -c "$(env_get DOVECOT_CONF)" "$@"; }

cmd_send() {
    local from=$2 to=$3 file=$4
    [[ -r $file ]] || die "cannot read $file"
    py - "$(env_get SMTP_PORT)" "$from" "$to" "$file" <<'EOF'
import smtplib, sys
port, sender, rcpts, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
rcpts = [r.strip() for r in rcpts.split(",") if r.strip()]
data = open(path, "rb").read()
# SMTP requires CRLF line ends; smtplib sends bytes unchanged (it only dot-stuffs), and
# Postfix stores LF internally anyway, so normalise bare LF to CRLF here.
data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=120) as s:
    s.ehlo()
    opts = ["BODY=8BITMIME"] if any(b > 127 for b in data) and s.has_extn("8bitmime") else []
    try:
        refused = s.sendmail(sender, rcpts, data, mail_options=opts)
    except smtplib.SMTPException as e:
        sys.exit(f"send failed: {e}")
    if refused:
        sys.exit(f"recipients refused: {refused}")
EOF
}

cmd_count() {
    local user=$2 mbox=$3 out rc=0
    # The tab formatter prints a title line and then "MAILBOX<TAB>N".
    out=$(dadm -f tab mailbox status -u "$user" messages "$mbox" 2>&1) || rc=$?
    if (( rc == 0 )); then
        out=${out##*$'\t'}
        [[ $out =~ ^[0-9]+$ ]] || die "unexpected doveadm mailbox status output: $out"
        printf '%s\n' "$out"
    elif (( rc == 68 )) && [[ $out == *"doesn't exist"* ]]; then
        echo 0  # 68 = DOVEADM_EX_NOTFOUND: the mailbox does not exist (yet)
    else
        printf '%s\n' "$out" >&2
        return 1
    fi
}

cmd_fetch() {
    local user=$2 mbox=$3 outdir=$4 out uids uid n=0 rc=0
    mkdir -p "$outdir"
    # "search" prints "<mailbox-guid> <uid>" per message, in UID order.
    out=$(dadm search -u "$user" mailbox "$mbox" all 2>&1) || rc=$?
    if (( rc == 68 )) && [[ $out == *"doesn't exist"* ]]; then
        echo 0; return 0  # like count: a missing mailbox holds no messages
    elif (( rc != 0 )); then
        printf '%s\n' "$out" >&2; return 1
    fi
    uids=$(awk '{print $2}' <<<"$out")
    for uid in $uids; do
        n=$((n + 1))
        # With the pager formatter, one message is printed as "text:\n" followed by the raw
        # stored bytes (LF line ends, see dovecot.conf; NUL bytes kept, whereas IMAP FETCH
        # sends them as 0x80) and nothing else (a "\f\n" line would only separate several messages,
        # which is why messages are fetched one UID at a time).  Strip exactly those 6 bytes.
        dadm -f pager fetch -u "$user" text mailbox "$mbox" uid "$uid" >"$outdir/$n.eml.tmp"
        cmp -s -n 6 "$outdir/$n.eml.tmp" <(printf 'text:\n') ||
            die "unexpected doveadm fetch output in $outdir/$n.eml.tmp"
        tail -c +7 "$outdir/$n.eml.tmp" >"$outdir/$n.eml"
        rm -f "$outdir/$n.eml.tmp"
    done
    echo "$n"
}

cmd_wait() {
    local user=$2 mbox=$3 want=$4 timeout=${5:-30} deadline have
    [[ $want =~ ^[0-9]+$ && $timeout =~ ^[0-9]+$ ]] || die "N and TIMEOUT_S must be integers"
    deadline=$(( ${EPOCHREALTIME/./} + timeout * 1000000 ))  # microseconds
    while :; do
        have=$(cmd_count "$@")
        (( have >= want )) && return 0
        if (( ${EPOCHREALTIME/./} > deadline )); then
            {
                echo "$PROG: $user/$mbox holds $have message(s), wanted $want, after ${timeout} s"
                echo "----- $DIR/postfix.log (tail)"
                tail -n 30 "$DIR/postfix.log" 2>/dev/null || true
            } >&2
            return 1
        fi
        sleep 0.1
    done
}

cmd_deliver() {
    local user=$2 file=$3
    [[ -r $file ]] || die "cannot read $file"
    # No Return-Path/Received/Delivered-To headers are added, so the stored message equals FILE
    # except that sdbox normalises line ends to LF (IMAP clients then see CRLF throughout).
    dadm save -u "$user" -m INBOX <"$file"
}

# ---------------------------------------------------------------------------------------------

(( $# >= 2 )) || usage
CMD=$1
DIR=$(absdir "$2")
case $CMD in
    start)   (( $# == 2 )) || usage; [[ $EUID == 0 ]] || die "must run as root"; cmd_start "$DIR" ;;
    stop)    (( $# == 2 )) || usage; do_stop "$DIR" ;;
    send)    (( $# == 5 )) || usage; cmd_send "$DIR" "$3" "$4" "$5" ;;
    count)   (( $# == 4 )) || usage; cmd_count "$DIR" "$3" "$4" ;;
    fetch)   (( $# == 5 )) || usage; cmd_fetch "$DIR" "$3" "$4" "$5" ;;
    wait)    (( $# == 5 || $# == 6 )) || usage; cmd_wait "$DIR" "${@:3}" ;;
    deliver) (( $# == 4 )) || usage; cmd_deliver "$DIR" "$3" "$4" ;;
    *)       usage ;;
esac
