//! Commands by signed mail and read-in (issue 21) through the real pipeline: every
//! command, every refusal, with mail that GnuPG makes at test time (team members,
//! a reporter, a forger), the clock injected; what GnuPG, RNP (Thunderbird's engine) and
//! OpenPGP.js 5 and 6 made (`fixtures/commands/`, `fixtures/make-commands.sh`). The
//! mail stack end to end is in `real_stack.rs`.

mod support;

use chrono::{DateTime, Duration, Utc};
use secintake::pipeline::Pipeline;
use secintake::store::{MailKind, OutMail};
use support::{
    Gpg, command_pipeline as pipeline, crlf, encrypted_payload, intake_party as party, pgp_mime_report, pgp_mime_wrap,
    repo,
};

const INTAKE_FPR: &str = "8484835FB379779620228A4E017260AB8668879C";

/// The test's clock: two minutes ahead, so that every signature the test makes (after
/// this is read) lies in its past, as it does for a daemon reading mail that arrived.
/// (A signature made after the time it is judged at does not verify.)
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() + 120, 0).unwrap()
}

/// A time after every cert a test made so far (and not before `t`): a cert made
/// after the world's `t` is not valid at `t` ("no binding signature at time T").
fn after(t: DateTime<Utc>) -> DateTime<Utc> {
    t.max(now())
}

/// The inner entity of a command mail: the text, and a cert attached when given.
fn inner(subject: Option<&str>, body: &str, attach: Option<&[u8]>) -> String {
    let protected = subject.map(|s| format!("Subject: {s}\r\n")).unwrap_or_default();
    let text = crlf(body.as_bytes());
    let text = String::from_utf8(text).unwrap();
    match attach {
        None => format!(
            "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n{protected}Content-Transfer-Encoding: 8bit\r\n\r\n{text}"
        ),
        Some(k) => format!(
            "Content-Type: multipart/mixed; boundary=\"IN\"; protected-headers=\"v1\"\r\n{protected}\r\n--IN\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--IN\r\n\
             Content-Type: application/pgp-keys; name=\"fixer.asc\"\r\nContent-Disposition: attachment; filename=\"fixer.asc\"\r\n\r\n{}\r\n--IN--\r\n",
            String::from_utf8(crlf(k)).unwrap()
        ),
    }
}

fn head(from: &str, subject: &str, msgid: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: security@intake.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n{extra}Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
}

/// A command mail as Thunderbird sends it: PGP/MIME, signed and encrypted in one pass.
fn encrypted(signer: &Gpg, from: &str, subject: &str, msgid: &str, body: &str) -> Vec<u8> {
    encrypted_with(signer, from, subject, msgid, "", body, None)
}

fn encrypted_with(
    signer: &Gpg,
    from: &str,
    subject: &str,
    msgid: &str,
    extra: &str,
    body: &str,
    attach: Option<&[u8]>,
) -> Vec<u8> {
    let ct = signer.encrypt_sign(inner(Some(subject), body, attach).as_bytes(), INTAKE_FPR);
    pgp_mime_wrap(&head(from, "...", msgid, extra), &ct)
}

/// A command mail signed only (RFC 3156 multipart/signed), the Subject also inside the
/// signed part (protected headers, as Thunderbird signs).
fn signed_only(signer: &Gpg, from: &str, subject: &str, msgid: &str, body: &str) -> Vec<u8> {
    let part = inner(Some(subject), body, None);
    let sig = signer.detach_sign(part.as_bytes());
    let mut m = head(from, subject, msgid, "");
    m.push_str("Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"SIG\"\r\n\r\n");
    m.push_str(&format!(
        "--SIG\r\n{part}\r\n--SIG\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n{}\r\n--SIG--\r\n",
        String::from_utf8(crlf(&sig)).unwrap()
    ));
    m.into_bytes()
}

fn plain(from: &str, subject: &str, msgid: &str, body: &str) -> Vec<u8> {
    let mut m = head(from, subject, msgid, "");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    m.push_str(&String::from_utf8(crlf(body.as_bytes())).unwrap());
    m.into_bytes()
}

fn out_of(p: &Pipeline, kind: MailKind) -> Vec<OutMail> {
    p.store.outbox().unwrap().into_iter().filter(|o| o.kind == kind).collect()
}

/// The plaintext of an encrypted outgoing mail, as `reader` decrypts it.
fn decrypt(p: &Pipeline, o: &OutMail, reader: &Gpg) -> String {
    let raw = p.store.out_raw(&o.id).unwrap().unwrap();
    String::from_utf8_lossy(&reader.decrypt(&encrypted_payload(&raw)).0).into_owned()
}

/// The list's reader: the team list key (and the intake's, to check signatures).
fn list_reader() -> Gpg {
    let team = party("x <x@x.test>");
    team.import(&repo().join("keys/team.key.asc"));
    team
}

/// A world: the pipeline, two team members, a reporter and their encrypted case.
struct World {
    _dir: tempfile::TempDir,
    p: Pipeline,
    alice: Gpg,
    bob: Gpg,
    rita: Gpg,
    case: String,
    t: DateTime<Utc>,
}

fn world(extra: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let alice = party("Alice Team <alice@team.test>");
    let bob = party("Bob Team <bob@team.test>");
    let rita = party("Rita Reporter <rita@reporter.test>");
    let p = pipeline(dir.path(), &[&alice, &bob], extra);
    let t = now();
    let report = pgp_mime_report(
        &rita,
        "rita@reporter.test",
        INTAKE_FPR,
        "SQL injection in search",
        "## Summary\nThe name parameter of /api/search reaches SQL unescaped.\n\n## Affected versions\n2.3.0 to 2.3.4\n\n\
         ## Steps to reproduce\n1. curl '/api/search?name=x%27%20OR%201=1--'\n2. every row comes back\n",
        "report-1@reporter.test",
        true,
    );
    let o = p.ingest(&report, None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "case");
    World { _dir: dir, case: o.case_id.unwrap(), p, alice, bob, rita, t }
}

fn rejected(w: &World, raw: &[u8], at: DateTime<Utc>, why: &str) {
    let o = w.p.ingest(raw, None, at, at).unwrap();
    assert_eq!(o.disposition.as_str(), "command-rejected", "{o:?}");
    let reason = o.reason.clone().unwrap();
    assert!(reason.contains(why), "reason {reason:?} lacks {why:?}");
}

#[test]
fn every_change_command_applies_with_its_signer_in_the_audit_log_and_a_threaded_confirmation() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let body = "/status triaged\n/cvss CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n/cwe CWE-89\n/tlp amber\n\
        /affected 2.3.0 2.3.4\n/fixed 2.3.5\n/assign Alice Team\n/cve CVE-2026-12345\n/disclosure 2027-01-15\n\
        /credit Rita R.\n/waiting yes\n/exploited no\n/note Reproduced on 2.3.4 in a VM.\n\n\
        On 07/12/2026 10:00, Cmd Security wrote:\n> [SEC-2026-0001] New report\n> /status closed\n";
    let raw =
        encrypted(&w.alice, "Alice Team <alice@team.test>", &format!("Re: [{id}] New report"), "cmd-1@team.test", body);
    let o = p.ingest(&raw, None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    assert_eq!(o.case_id.as_deref(), Some(id.as_str()));
    let c = p.store.case(id).unwrap().unwrap();
    assert_eq!(c.status.as_str(), "triaged");
    assert_eq!(c.cvss_assessed.as_ref().unwrap().score, 9.8);
    assert_eq!(c.cwe, vec!["CWE-89"]);
    assert_eq!(c.tlp.as_deref(), Some("AMBER"));
    assert_eq!(c.affected_versions, vec!["2.3.0", "2.3.4"]);
    assert_eq!(c.fixed_versions, vec!["2.3.5"]);
    assert_eq!(c.assignee.as_deref(), Some("Alice Team"));
    assert_eq!(c.cve.as_deref(), Some("CVE-2026-12345"));
    assert_eq!(secintake::case::rfc3339(&c.due.disclosure), "2027-01-15T00:00:00Z");
    assert_eq!(c.credit.name.as_deref(), Some("Rita R."));
    assert!(c.waiting_on_reporter);
    assert!(!c.cra.exploited);
    // The audit log names the signer, their cert and the mail.
    let log = p.store.log(id).unwrap();
    let by_mail: Vec<_> = log.iter().filter(|e| e.via.as_deref() == Some("cmd-1@team.test")).collect();
    assert!(by_mail.len() >= 13, "{log:#?}");
    for e in &by_mail {
        assert_eq!(e.by.as_deref(), Some("alice@team.test"));
        assert_eq!(e.by_fingerprint.as_deref(), Some(w.alice.fpr.as_str()));
    }
    assert!(by_mail.iter().any(|e| e.action == "note" && e.detail.contains("Reproduced on 2.3.4")));
    let json = serde_json::to_value(&log).unwrap();
    assert!(json.as_array().unwrap().iter().any(|e| e["by_fingerprint"] == w.alice.fpr.as_str()));
    // One confirmation on the list, encrypted, threaded under the command mail.
    let conf = out_of(p, MailKind::Confirmation);
    assert_eq!(conf.len(), 1);
    assert_eq!(conf[0].to, vec!["team@team.test"]);
    assert!(conf[0].encrypted);
    let raw = String::from_utf8_lossy(&p.store.out_raw(&conf[0].id).unwrap().unwrap()).into_owned();
    assert!(raw.contains("In-Reply-To: <cmd-1@team.test>"), "{raw}");
    assert!(raw.contains("Reply-To: <team@team.test>"));
    let team = list_reader();
    let text = decrypt(p, &conf[0], &team);
    assert!(text.contains(&format!("[{id}] Changed by alice@team.test")), "{text}");
    assert!(text.contains("status: acknowledged -> triaged") || text.contains("status: new -> triaged"), "{text}");
    assert!(text.contains("tlp: none -> AMBER"), "{text}");
    // The quoted /status closed was not applied; the mail list says "command".
    assert!(
        p.store
            .mails()
            .unwrap()
            .iter()
            .any(|m| m.message_id == "cmd-1@team.test" && m.disposition.as_str() == "command")
    );
}

#[test]
fn anonymous_ask_and_reject_duplicate_apply_and_the_subject_may_be_protected_only() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    // The case named only by In-Reply-To (our summary), the Subject "..." outside.
    let summary = out_of(p, MailKind::Summary)[0].id.clone();
    let raw = encrypted_with(
        &w.bob,
        "bob@team.test",
        "Re: your report",
        "cmd-2@team.test",
        &format!("In-Reply-To: <{summary}>\r\nReferences: <{summary}>\r\n"),
        "/anonymous\n/ask poc impact\n/exploited yes\n",
        None,
    );
    assert_eq!(p.ingest(&raw, None, t, t).unwrap().disposition.as_str(), "command");
    let c = p.store.case_meta(id).unwrap().unwrap();
    assert!(c.credit.anonymous);
    assert!(c.cra.exploited, "/exploited yes starts the CRA clocks");
    let asks = out_of(p, MailKind::NeedsInfo);
    assert_eq!(asks.len(), 1);
    assert!(asks[0].encrypted, "the reporter's key is known");
    assert!(decrypt(p, &asks[0], &w.rita).contains("proof of concept"));
    // A second report, rejected as a duplicate of the first by mail.
    let o = p
        .ingest(&plain("eve@else.test", "SQLi again", "report-2@else.test", "Same SQLi in /api/search.\n"), None, t, t)
        .unwrap();
    let id2 = o.case_id.unwrap();
    let raw = encrypted(
        &w.alice,
        "alice@team.test",
        &format!("[{id2}]"),
        "cmd-3@team.test",
        &format!("/reject duplicate {id}\n"),
    );
    assert_eq!(p.ingest(&raw, None, t, t).unwrap().disposition.as_str(), "command");
    let c2 = p.store.case_meta(&id2).unwrap().unwrap();
    assert_eq!(c2.status.as_str(), "rejected");
    assert_eq!(c2.reject_reason.as_deref(), Some(format!("duplicate:{id}").as_str()));
}

#[test]
fn reply_by_mail_reaches_the_reporter_encrypted_and_a_template_fills_in_the_case() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let raw = encrypted(
        &w.alice,
        "alice@team.test",
        &format!("Re: [{id}] New report"),
        "cmd-r1@team.test",
        "/status triaged\n/reply\nThanks, we reproduced it and are preparing a fix.\n\n-- \nAlice\n",
    );
    let o = p.ingest(&raw, None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    let replies = out_of(p, MailKind::Reply);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].to, vec!["rita@reporter.test"]);
    assert!(replies[0].encrypted);
    let text = decrypt(p, &replies[0], &w.rita);
    assert!(text.contains("we reproduced it and are preparing a fix"), "{text}");
    assert!(!text.contains("Alice\r\n") || !text.contains("-- "), "the signature stays out: {text}");
    // /reply NAME: the shipped template with the case's fields.
    let raw = encrypted(&w.alice, "alice@team.test", &format!("[{id}]"), "cmd-r2@team.test", "/reply needs-info\n");
    assert_eq!(p.ingest(&raw, None, t, t).unwrap().disposition.as_str(), "command");
    let replies = out_of(p, MailKind::Reply);
    assert_eq!(replies.len(), 2);
    let texts: Vec<String> = replies.iter().map(|r| decrypt(p, r, &w.rita)).collect();
    assert!(
        texts.iter().any(|t| t.contains(&format!("your report {id}")) && t.contains("Cmd security team")),
        "{texts:?}"
    );
    // `case reply --template` is the same template through the CLI's path.
    p.reply_template(id, "fixed", "cli-user", t).unwrap();
    assert_eq!(out_of(p, MailKind::Reply).len(), 3);
    assert!(p.reply_template(id, "nope", "cli-user", t).is_err());
}

#[test]
fn one_bad_line_applies_nothing_and_says_which() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let before = p.store.case_meta(id).unwrap().unwrap();
    let raw = encrypted(
        &w.alice,
        "alice@team.test",
        &format!("[{id}]"),
        "cmd-b1@team.test",
        "/tlp red\n/status triaged\n/cvss banana\n",
    );
    rejected(&w, &raw, t, "line 3: bad /cvss line");
    // The record says the line and a fixed reason, never the line's text; the list's
    // encrypted notice quotes it.
    let rec = p.store.mails().unwrap().into_iter().find(|m| m.disposition.as_str() == "command-rejected").unwrap();
    assert!(!format!("{rec:?}").contains("banana"), "{rec:?}");
    assert!(out_of(p, MailKind::CommandRejected).iter().any(|n| decrypt(p, n, &list_reader()).contains("banana")));
    assert_eq!(p.store.case_meta(id).unwrap().unwrap(), before, "nothing applied");
    for (n, body, why) in [
        (2, "/status triaged\n/frobnicate now\n", "line 2: unknown command"),
        (3, "/status triaged\nthanks all\n", "line 2: not a command"),
        (4, "/status closed\n", "line 1: /status not applied"),
        (5, "/reject duplicate SEC-2026-0099\n", "line 1: bad /reject line"),
        (6, "/reply no-such-template\n", "line 1: bad /reply line"),
        (7, "/readin add fixer\n", "line 1: /readin not applied"),
    ] {
        let raw = encrypted(&w.alice, "alice@team.test", &format!("[{id}]"), &format!("cmd-b{n}@team.test"), body);
        rejected(&w, &raw, t, why);
    }
    assert_eq!(p.store.case_meta(id).unwrap().unwrap(), before);
    // The list is told, encrypted, once a refused mail, at most five an hour a case (a
    // flood of forgeries is recorded, not mailed on); the sender is told nothing.
    let notices = out_of(p, MailKind::CommandRejected);
    assert_eq!(notices.len(), 5);
    let recs = p.store.mails().unwrap();
    assert_eq!(recs.iter().filter(|m| m.disposition.as_str() == "command-rejected").count(), 7);
    let team = list_reader();
    assert!(notices.iter().any(|n| decrypt(p, n, &team).contains("further ones this hour are recorded")));
    assert!(notices.iter().all(|n| n.encrypted && n.to == vec!["team@team.test"]));
    assert!(out_of(p, MailKind::Reply).is_empty());
    // Seen again (the same message): nothing new, the list is not told twice.
    let o = p.ingest(&raw, None, t, t).unwrap();
    assert!(o.seen_before);
    assert_eq!(out_of(p, MailKind::CommandRejected).len(), 5);
    // The next hour the list hears again.
    let raw = encrypted(&w.alice, "alice@team.test", &format!("[{id}]"), "cmd-b8@team.test", "/status closed\n");
    rejected(&w, &raw, t + Duration::hours(1), "/status not applied");
    assert_eq!(out_of(p, MailKind::CommandRejected).len(), 6);
}

#[test]
fn refusals_unsigned_forged_stale_replayed_other_signer_and_unencrypted_text() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let subject = format!("Re: [{id}] New report");
    // Unsigned, from a team address.
    rejected(&w, &plain("alice@team.test", &subject, "u-1@team.test", "/status triaged\n"), t, "not signed");
    // Signed by a cert that is not a team cert, from an address that is not the
    // team's (the reporter's): their words, a follow-up, never a command.
    let o = p.ingest(&encrypted(&w.rita, "rita@reporter.test", &subject, "u-2@r.test", "/status fixing\n"), None, t, t);
    let o = o.unwrap();
    assert!(matches!(o.disposition.as_str(), "case" | "follow-up"), "{o:?}");
    // A stranger's cert naming a team address: refused.
    let mallory = party("Mallory <alice@team.test>");
    rejected(
        &w,
        &encrypted(&mallory, "alice@team.test", &subject, "u-3@m.test", "/status fixing\n"),
        t,
        "not a team cert",
    );
    // One member signing as another.
    rejected(
        &w,
        &encrypted(&w.bob, "alice@team.test", &subject, "u-4@team.test", "/status fixing\n"),
        t,
        "one member signing as another",
    );
    // Older than commands.max_age (72h) at arrival.
    let stale = encrypted(&w.alice, "alice@team.test", &subject, "u-5@team.test", "/status fixing\n");
    let later = t + Duration::hours(73);
    rejected(&w, &stale, later, "commands.max_age");
    // Signed only: fine for a status, refused for words to the reporter or the log.
    rejected(
        &w,
        &signed_only(&w.alice, "alice@team.test", &subject, "u-6@team.test", "/reply\nhello\n"),
        t,
        "not encrypted",
    );
    rejected(
        &w,
        &signed_only(&w.alice, "alice@team.test", &subject, "u-7@team.test", "/note private\n"),
        t,
        "not encrypted",
    );
    let o = p
        .ingest(&signed_only(&w.alice, "alice@team.test", &subject, "u-8@team.test", "/status triaged\n"), None, t, t)
        .unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    // A replay: the same signed body under a new Message-ID applies nothing.
    let first = encrypted(&w.alice, "alice@team.test", &subject, "u-9@team.test", "/tlp green\n");
    assert_eq!(p.ingest(&first, None, t, t).unwrap().disposition.as_str(), "command");
    let replay = String::from_utf8_lossy(&first).replace("u-9@team.test", "u-10@evil.test").into_bytes();
    rejected(&w, &replay, t + Duration::minutes(5), "replay");
    // Nothing of these changed the case but the two applied ones.
    let c = p.store.case_meta(id).unwrap().unwrap();
    assert_eq!(c.status.as_str(), "triaged");
    assert_eq!(c.tlp.as_deref(), Some("GREEN"));
    let recs = p.store.mails().unwrap();
    assert_eq!(recs.iter().filter(|m| m.disposition.as_str() == "command-rejected").count(), 7);
}

#[test]
fn expired_and_revoked_team_certs_apply_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A member whose cert expired: made and used after the intake key, valid for a day.
    let old = Gpg::new_at("Olga Team <olga@team.test>", "20261124T120000", "1d");
    old.import(&repo().join("keys/test-intake.pub.asc"));
    // A member whose cert was revoked after signing.
    let rev = party("Rolf Team <rolf@team.test>");
    let rita = party("Rita Reporter <rita@reporter.test>");
    let t = now();
    let signed_old = {
        let inner = inner(Some("[SEC-2026-0001]"), "/status triaged\n", None);
        let ct = old.encrypt_sign_at(inner.as_bytes(), INTAKE_FPR, "20261124T130000");
        pgp_mime_wrap(&head("olga@team.test", "[SEC-2026-0001]", "o-1@team.test", ""), &ct)
    };
    let signed_rev = encrypted(&rev, "rolf@team.test", "[SEC-2026-0001]", "r-1@team.test", "/status triaged\n");
    rev.revoke();
    let p = pipeline(dir.path(), &[&old, &rev], "");
    let report = pgp_mime_report(
        &rita,
        "rita@reporter.test",
        INTAKE_FPR,
        "XSS",
        "XSS in the wiki.\n",
        "rep@reporter.test",
        true,
    );
    assert_eq!(p.ingest(&report, None, t, t).unwrap().case_id.as_deref(), Some("SEC-2026-0001"));
    // Arrived (for the age rule) an hour after it was signed; judged now.
    let arrived = DateTime::parse_from_rfc3339("2026-11-24T14:00:00Z").unwrap().with_timezone(&Utc);
    let o = p.ingest(&signed_old, None, arrived, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command-rejected");
    assert!(o.reason.as_deref().unwrap().contains("expired or revoked"), "{o:?}");
    let o = p.ingest(&signed_rev, None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command-rejected");
    assert!(o.reason.as_deref().unwrap().contains("expired or revoked"), "{o:?}");
    assert_eq!(p.store.case_meta("SEC-2026-0001").unwrap().unwrap().status.as_str(), "new");
}

#[test]
fn without_commands_or_command_lines_a_team_member_mail_is_a_report() {
    let w = world("[commands]\nenabled = false\n");
    let raw = signed_only(&w.alice, "alice@team.test", &format!("[{}]", w.case), "d-1@team.test", "/status triaged\n");
    let o = w.p.ingest(&raw, None, w.t, w.t).unwrap();
    assert_eq!(o.disposition.as_str(), "follow-up");
    assert_eq!(w.p.store.case_meta(&w.case).unwrap().unwrap().status.as_str(), "new");
    let w = world("");
    let raw = encrypted(
        &w.alice,
        "alice@team.test",
        "Found one myself",
        "d-2@team.test",
        "/etc/shadow is world readable in 2.3.4.\n",
    );
    assert_eq!(w.p.ingest(&raw, None, w.t, w.t).unwrap().disposition.as_str(), "case");
    // A reporter's plain text that happens to start with a command word is theirs.
    let raw = plain("rita@reporter.test", &format!("Re: [{}]", w.case), "d-3@r.test", "/status please?\n");
    assert_eq!(w.p.ingest(&raw, None, w.t, w.t).unwrap().disposition.as_str(), "follow-up");
}

#[test]
fn summaries_say_how_to_act_by_reply_and_reply_to_the_list() {
    let w = world("");
    let s = &out_of(&w.p, MailKind::Summary)[0];
    let raw = String::from_utf8_lossy(&w.p.store.out_raw(&s.id).unwrap().unwrap()).into_owned();
    assert!(raw.contains("Reply-To: <team@team.test>"), "{raw}");
    let team = list_reader();
    let text = decrypt(&w.p, s, &team);
    assert!(text.contains("Act by signed reply to security@intake.test"), "{text}");
    assert!(text.contains("/status triaged"));
}

#[test]
fn a_fixer_read_in_by_mail_decrypts_the_next_follow_up_and_none_after_expiry() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let fixer = party("Fiona Fixer <fiona@maint.test>");
    let t = after(t);
    let expires = (t + Duration::days(10)).format("%Y-%m-%d").to_string();
    let raw = encrypted_with(
        &w.alice,
        "alice@team.test",
        &format!("[{id}]"),
        "ri-1@team.test",
        "",
        &format!("/readin add fixer {expires}\n"),
        Some(&fixer.export()),
    );
    let o = p.ingest(&raw, None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    let entries = p.store.readins(id).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entry.fingerprint, fixer.fpr);
    assert_eq!(entries[0].entry.by, "alice@team.test");
    // The summary so far, once, to the fixer alone, encrypted to them.
    let welcome = out_of(p, MailKind::ReadIn);
    assert_eq!(welcome.len(), 1);
    assert_eq!(welcome[0].to, vec!["fiona@maint.test"]);
    assert!(decrypt(p, &welcome[0], &fixer).contains("reaches SQL unescaped"));
    // The reporter's next follow-up reaches the fixer, who decrypts it.
    let fu = plain("rita@reporter.test", &format!("Re: [{id}]"), "fu-1@reporter.test", "Also affects 2.2.9.\n");
    assert_eq!(
        p.ingest(&fu, None, t + Duration::days(1), t + Duration::days(1)).unwrap().disposition.as_str(),
        "follow-up"
    );
    let to_fixer: Vec<_> =
        out_of(p, MailKind::Followup).into_iter().filter(|o| o.to == vec!["fiona@maint.test"]).collect();
    assert_eq!(to_fixer.len(), 1);
    assert!(decrypt(p, &to_fixer[0], &fixer).contains("Also affects 2.2.9"));
    // The entry expires: the clock says so in the audit log (once), and the follow-up
    // after that goes to the list only.
    let after = t + Duration::days(11);
    p.queue_reminders(after).unwrap();
    p.queue_reminders(after + Duration::hours(1)).unwrap();
    let log = p.store.log(id).unwrap();
    assert_eq!(log.iter().filter(|e| e.action == "readin-expired").count(), 1, "{log:#?}");
    let fu2 = plain("rita@reporter.test", &format!("Re: [{id}]"), "fu-2@reporter.test", "And 2.2.8.\n");
    assert_eq!(p.ingest(&fu2, None, after, after).unwrap().disposition.as_str(), "follow-up");
    let to_fixer = out_of(p, MailKind::Followup).into_iter().filter(|o| o.to == vec!["fiona@maint.test"]).count();
    assert_eq!(to_fixer, 1, "nothing after expiry");
    assert_eq!(out_of(p, MailKind::Followup).iter().filter(|o| o.to == vec!["team@team.test"]).count(), 2);
}

#[test]
fn readin_by_cli_guards_tlp_red_and_is_removed() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let obs = party("Oscar Observer <oscar@maint.test>");
    let t = after(t);
    let raw = encrypted(&w.alice, "alice@team.test", &format!("[{id}]"), "red-1@team.test", "/tlp red\n");
    let o = p.ingest(&raw, None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    let role = secintake::case::readin::Role::Observer;
    let e = p.readin_add(id, &obs.export(), role, None, None, "carol", t).unwrap_err();
    assert!(format!("{e:#}").contains("TLP:RED"), "{e:#}");
    let fpr = p.readin_add(id, &obs.export(), role, None, Some("agreed on the list"), "carol", t).unwrap();
    assert_eq!(fpr, obs.fpr);
    let log = p.store.log(id).unwrap();
    assert!(log.iter().any(|e| e.action == "readin-add" && e.detail.contains("forced: agreed on the list")));
    // A reminder reaches the observer too; after removal, nothing does.
    let n = out_of(p, MailKind::Reminder).len();
    p.queue_reminders(t + Duration::days(30)).unwrap();
    let reminders = out_of(p, MailKind::Reminder);
    assert!(reminders.iter().any(|o| o.to == vec!["oscar@maint.test"]), "{reminders:?}");
    assert!(reminders.len() > n);
    // Removed by mail.
    let raw =
        encrypted(&w.bob, "bob@team.test", &format!("[{id}]"), "red-2@team.test", &format!("/readin remove {fpr}\n"));
    assert_eq!(p.ingest(&raw, None, t, t).unwrap().disposition.as_str(), "command");
    assert!(p.store.readins(id).unwrap().is_empty());
    // A cert that cannot be encrypted to, or two certs, are refused.
    assert!(p.readin_add(id, b"not a cert", role, None, None, "carol", t).is_err());
}

/// The command fixtures: GnuPG, RNP and OpenPGP.js 5 and 6 made the OpenPGP layer of a
/// Thunderbird-shaped reply by Carol (keys/team-carol); each applies, the quoted
/// summary's lines do not, and each replayed under another Message-ID or seen too late
/// applies nothing.
#[test]
fn command_mail_made_by_gpg_rnp_and_openpgp_js_applies_and_its_replay_does_not() {
    let carol = std::fs::read(repo().join("keys/team-carol.pub.asc")).unwrap();
    for name in ["gpg", "rnp", "openpgpjs5", "openpgpjs6"] {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path(), &[], "");
        std::fs::write(dir.path().join("team/carol.asc"), &carol).unwrap();
        let p = Pipeline::load(p.cfg.clone(), p.store.clone()).unwrap();
        let t = now();
        let report = plain("rita@reporter.test", "SQLi", "rep-1@reporter.test", "SQL injection in /api/search.\n");
        assert_eq!(p.ingest(&report, None, t, t).unwrap().case_id.as_deref(), Some("SEC-2026-0001"));
        let raw = std::fs::read(repo().join(format!("fixtures/commands/{name}-status.eml"))).unwrap();
        // It arrived when it was signed (its Date); it is judged now.
        let date = support::header(&raw, "Date").unwrap();
        let arrived = DateTime::parse_from_rfc2822(&date).unwrap().with_timezone(&Utc);
        let o = p.ingest(&raw, None, arrived, t).unwrap();
        assert_eq!(o.disposition.as_str(), "command", "{name}: {o:?}");
        let c = p.store.case_meta("SEC-2026-0001").unwrap().unwrap();
        assert_eq!(c.status.as_str(), "triaged", "{name}");
        assert_eq!(c.tlp.as_deref(), Some("AMBER"), "{name}");
        let log = p.store.log("SEC-2026-0001").unwrap();
        let note = log.iter().find(|e| e.action == "note").unwrap_or_else(|| panic!("{name}: {log:#?}"));
        assert!(note.detail.starts_with("Reproduced with"), "{name}: {}", note.detail);
        assert_eq!(note.by.as_deref(), Some("carol@team.test"));
        assert_eq!(note.by_fingerprint.as_deref(), Some("F60FF4D8DA7576F7A0071E591CC600560965BF3C"));
        assert_eq!(note.via.as_deref(), Some(format!("fixture-command-{name}@team.test").as_str()));
        assert_eq!(out_of(&p, MailKind::Confirmation).len(), 1, "{name}");
        // The same signed body under another Message-ID: a replay.
        let replay = String::from_utf8_lossy(&raw)
            .replace(&format!("<fixture-command-{name}@team.test>"), "<replayed@evil.test>")
            .into_bytes();
        let o = p.ingest(&replay, None, arrived + Duration::minutes(1), t).unwrap();
        assert_eq!(o.disposition.as_str(), "command-rejected", "{name}");
        assert!(o.reason.as_deref().unwrap().contains("replay"), "{name}: {o:?}");
        // Kept back and sent after commands.max_age: too old.
        let late = String::from_utf8_lossy(&raw)
            .replace(&format!("<fixture-command-{name}@team.test>"), "<late@team.test>")
            .into_bytes();
        let dir2 = tempfile::tempdir().unwrap();
        let q = pipeline(dir2.path(), &[], "");
        std::fs::write(dir2.path().join("team/carol.asc"), &carol).unwrap();
        let q = Pipeline::load(q.cfg.clone(), q.store.clone()).unwrap();
        q.ingest(&report, None, t, t).unwrap();
        let o = q.ingest(&late, None, arrived + Duration::hours(73), t).unwrap();
        assert!(o.reason.as_deref().unwrap_or("").contains("commands.max_age"), "{name}: {o:?}");
    }
}

/// The CLI's side: `case reply --template`, `case readin add|list|remove`, case JSON
/// `readin`, and `check` refusing a reply template with an unknown field.
#[test]
fn cli_readin_reply_template_and_check_of_templates() {
    let d = support::tempdir("cmdcli");
    let cfg = support::write_config(d.path(), "");
    let run = |args: &[&str]| {
        std::process::Command::new(support::bin()).arg("--config").arg(&cfg).args(args).output().unwrap()
    };
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let msg = d.path().join("m.eml");
    std::fs::write(&msg, plain("bob@reporter.test", "Open redirect", "r-1@reporter.test", "Redirects anywhere.\n"))
        .unwrap();
    let id = ok(&["ingest", msg.to_str().unwrap()]).split_whitespace().nth(1).unwrap().to_owned();

    // No replies/ yet: the template is unknown, said with where it was looked for.
    let o = run(&["case", "reply", &id, "--template", "duplicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no reply template \"duplicate\""));
    std::fs::create_dir_all(d.path().join("replies")).unwrap();
    for n in ["duplicate", "fixed"] {
        std::fs::copy(repo().join(format!("config/replies/{n}.txt")), d.path().join(format!("replies/{n}.txt")))
            .unwrap();
    }
    assert!(ok(&["case", "reply", &id, "--template", "duplicate"]).contains("reply queued"));
    let out = ok(&["check"]);
    assert!(out.contains("reply templates in") && out.contains("duplicate, fixed"), "{out}");
    assert!(out.contains("commands by signed mail: 1 team cert(s) may sign (team@team.test)"), "{out}");
    // An unknown field is a check error naming the file and the field.
    std::fs::write(d.path().join("replies/typo.txt"), "Dear $REPORTR, about $CASE\n").unwrap();
    let o = run(&["check"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("typo.txt") && err.contains("$REPORTR"), "{err}");
    std::fs::remove_file(d.path().join("replies/typo.txt")).unwrap();

    // Read-in by the CLI.
    let fixer = party("Fiona Fixer <fiona@maint.test>");
    let cert = d.path().join("fixer.asc");
    std::fs::write(&cert, fixer.export()).unwrap();
    let out = ok(&[
        "case",
        "readin",
        "add",
        &id,
        "--cert",
        cert.to_str().unwrap(),
        "--role",
        "fixer",
        "--expires",
        "2099-01-01",
        "--as",
        "carol",
    ]);
    assert!(out.contains(&fixer.fpr), "{out}");
    let list: serde_json::Value = serde_json::from_str(&ok(&["case", "readin", "list", &id, "--json"])).unwrap();
    assert_eq!(list[0]["fingerprint"], fixer.fpr.as_str());
    assert_eq!(list[0]["role"], "fixer");
    assert_eq!(list[0]["by"], "carol");
    assert_eq!(list[0]["uids"][0], "Fiona Fixer <fiona@maint.test>");
    assert_eq!(list[0]["expires"], "2099-01-01T00:00:00Z");
    let shown: serde_json::Value = serde_json::from_str(&ok(&["case", "show", &id, "--json"])).unwrap();
    assert_eq!(shown["readin"][0]["fingerprint"], fixer.fpr.as_str());
    assert!(ok(&["case", "show", &id]).contains("Read in:    fixer Fiona Fixer <fiona@maint.test>"));
    let log: serde_json::Value = serde_json::from_str(&ok(&["case", "log", &id, "--json"])).unwrap();
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "readin-add" && e["who"] == "carol"));
    ok(&["case", "readin", "remove", &id, &fixer.fpr]);
    let list: serde_json::Value = serde_json::from_str(&ok(&["case", "readin", "list", &id, "--json"])).unwrap();
    assert_eq!(list, serde_json::json!([]));
    assert_eq!(run(&["case", "readin", "remove", &id, &fixer.fpr]).status.code(), Some(2));
}

/// Thunderbird with "Encrypt" off: RNP's detached signature (RFC 3156). A status change
/// applies signed only; a note (the team's own words) does not travel unencrypted; the
/// same mail altered, or sent under another member's From, applies nothing.
#[test]
fn rnp_signed_only_command_mail_applies_a_status_and_refuses_a_note() {
    let carol = std::fs::read(repo().join("keys/team-carol.pub.asc")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bob = party("Bob Team <bob@team.test>");
    let p = pipeline(dir.path(), &[&bob], "");
    std::fs::write(dir.path().join("team/carol.asc"), &carol).unwrap();
    let p = Pipeline::load(p.cfg.clone(), p.store.clone()).unwrap();
    let t = now();
    let report = plain("rita@reporter.test", "SQLi", "rep-1@reporter.test", "SQL injection in /api/search.\n");
    p.ingest(&report, None, t, t).unwrap();
    let fixture = |n: &str| {
        let raw = std::fs::read(repo().join(format!("fixtures/commands/{n}.eml"))).unwrap();
        let date = support::header(&raw, "Date").unwrap();
        (raw, DateTime::parse_from_rfc2822(&date).unwrap().with_timezone(&Utc))
    };
    let (raw, at) = fixture("rnp-signed-status");
    // Forged: the signed text altered (a bad signature).
    let forged = String::from_utf8_lossy(&raw)
        .replace("/status triaged", "/status fixing")
        .replace("fixture-command-rnp-signed-status@", "forged@")
        .into_bytes();
    let o = p.ingest(&forged, None, at, t).unwrap();
    assert!(o.reason.as_deref().unwrap_or("").contains("does not verify"), "{o:?}");
    // Carol's signed body under Bob's From (Bob is on the team too): one member as another.
    let as_bob = String::from_utf8_lossy(&raw)
        .replace("From: Carol Team <carol@team.test>", "From: Bob Team <bob@team.test>")
        .replace("fixture-command-rnp-signed-status@", "as-bob@")
        .into_bytes();
    let o = p.ingest(&as_bob, None, at, t).unwrap();
    assert!(o.reason.as_deref().unwrap_or("").contains("one member signing as another"), "{o:?}");
    assert_eq!(p.store.case_meta("SEC-2026-0001").unwrap().unwrap().status.as_str(), "new");
    let o = p.ingest(&raw, None, at, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    let c = p.store.case_meta("SEC-2026-0001").unwrap().unwrap();
    assert_eq!(c.status.as_str(), "triaged");
    assert_eq!(c.cvss_assessed.unwrap().score, 9.8);
    let (raw, at) = fixture("rnp-signed-note");
    let o = p.ingest(&raw, None, at, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command-rejected");
    assert!(o.reason.as_deref().unwrap().contains("not encrypted"), "{o:?}");
    assert!(!p.store.log("SEC-2026-0001").unwrap().iter().any(|e| e.action == "note"));
}

/// Thunderbird wraps a long line of `format=flowed` text with a trailing space: the
/// `/note` reads whole, through the real MIME path.
#[test]
fn a_flowed_note_wrapped_by_the_mail_client_reads_whole() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let body = "/note Reproduced on 2.3.4 with the default configuration; the fix is in the \r\n\
                branch sec-42, please review it before Friday.\r\n/tlp amber\r\n";
    let inner = format!(
        "Content-Type: text/plain; charset=UTF-8; format=flowed; protected-headers=\"v1\"\r\nSubject: [{id}]\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n{body}"
    );
    let ct = w.alice.encrypt_sign(inner.as_bytes(), INTAKE_FPR);
    let raw = pgp_mime_wrap(&head("alice@team.test", "...", "flow-1@team.test", ""), &ct);
    let o = p.ingest(&raw, None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    let log = p.store.log(id).unwrap();
    let note = log.iter().find(|e| e.action == "note").unwrap();
    assert_eq!(
        note.detail,
        "Reproduced on 2.3.4 with the default configuration; the fix is in the branch sec-42, please review it before Friday."
    );
}

/// What checking signatures against the team's certs costs every message (`[commands]
/// enabled` adds `keys.team_certs` to the certs a signature is checked against): 200
/// signed, encrypted reports with 20 team certs, commands on and off.
/// `cargo test --test commands -- --ignored --nocapture cost_of`
#[test]
#[ignore]
fn cost_of_team_signers_per_message() {
    let team: Vec<Gpg> = (0..20).map(|i| Gpg::new(&format!("M{i} <m{i}@team.test>"))).collect();
    let team: Vec<&Gpg> = team.iter().collect();
    let rita = party("Rita Reporter <rita@reporter.test>");
    let report = pgp_mime_report(&rita, "rita@reporter.test", INTAKE_FPR, "XSS", "XSS in the wiki.\n", "X", true);
    let text = String::from_utf8_lossy(&report).into_owned();
    for extra in ["[commands]\nenabled = false\n", ""] {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path(), &team, extra);
        let t = now();
        let start = std::time::Instant::now();
        for i in 0..200 {
            let raw = text.replace("Message-ID: <X>", &format!("Message-ID: <r{i}@reporter.test>"));
            p.ingest(raw.as_bytes(), None, t, t).unwrap();
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / 200.0;
        println!("commands {}: {ms:.2} ms a message", if extra.is_empty() { "on " } else { "off" });
    }
}

/// `/reject duplicate` by mail follows the CLI's credit rule: the chain's root is the
/// original and lists every later reporter; a case received first is not made the
/// duplicate of a later one by mail.
#[test]
fn reject_duplicate_by_mail_credits_the_first_reporter_of_the_chain() {
    let w = world("");
    let (p, first, t) = (&w.p, w.case.clone(), w.t);
    let report = |who: &Gpg, addr: &str, n: u32, at: DateTime<Utc>| {
        let raw = pgp_mime_report(
            who,
            addr,
            INTAKE_FPR,
            "SQL injection in search (again)",
            "## Summary\nThe name parameter of /api/search reaches SQL.\n\n## Affected versions\n2.3.4\n\n\
             ## Steps to reproduce\n1. curl '/api/search?name=x%27--'\n2. rows come back\n",
            &format!("dup-{n}@reporter.test"),
            true,
        );
        p.ingest(&raw, None, at, at).unwrap().case_id.unwrap()
    };
    let sam = party("Sam Second <sam@second.test>");
    let tia = party("Tia Third <tia@third.test>");
    let second = report(&sam, "sam@second.test", 2, t + chrono::Duration::hours(1));
    let third = report(&tia, "tia@third.test", 3, t + chrono::Duration::hours(2));
    let at = t + chrono::Duration::hours(3);
    let cmd = |case: &str, n: u32, body: &str| {
        encrypted(&w.alice, "alice@team.test", &format!("[{case}]"), &format!("cmd-dup{n}@team.test"), body)
    };
    let o = p.ingest(&cmd(&second, 1, &format!("/reject duplicate {first}\n")), None, at, at).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    // The third names the second: the link goes to the chain's root, the first.
    let o = p.ingest(&cmd(&third, 2, &format!("/reject duplicate {second}\n")), None, at, at).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    let c3 = p.store.case_meta(&third).unwrap().unwrap();
    assert_eq!(secintake::case::credit::duplicate_of(&c3), Some(first.as_str()));
    let c1 = p.store.case_meta(&first).unwrap().unwrap();
    let who: Vec<&str> = c1.also_reported_by.iter().map(|a| a.reporter.as_str()).collect();
    assert_eq!(who, ["sam@second.test", "tia@third.test"], "in order of receipt");
    let log = p.store.log(&first).unwrap();
    assert!(log.iter().any(|e| e.detail.contains("tia@third.test") && e.by.as_deref() == Some("alice@team.test")));
    // A later, unrelated-so-far case: making the first its duplicate by mail is refused
    // (the first was received before it), and nothing is applied.
    let uma = party("Uma Fourth <uma@fourth.test>");
    let fourth = report(&uma, "uma@fourth.test", 4, t + chrono::Duration::hours(2));
    let before = p.store.case_meta(&first).unwrap().unwrap();
    rejected(&w, &cmd(&first, 3, &format!("/reject duplicate {fourth}\n")), at, "/reject not applied");
    assert_eq!(p.store.case_meta(&first).unwrap().unwrap(), before);
}
