//! Security review of issue 21 (commands by signed mail, read-in): reproductions of the
//! findings, each through the real pipeline. Every test asserts the secure behaviour;
//! each was `#[ignore]`d with its finding's name while the finding stood, and runs since
//! its fix (branch cmdfix).

mod support;

use chrono::{DateTime, Utc};
use secintake::pipeline::Pipeline;
use secintake::store::{MailKind, OutMail};
use support::{Gpg, command_pipeline as pipeline, crlf, intake_party as party, pgp_mime_report, pgp_mime_wrap, repo};

const INTAKE_FPR: &str = "8484835FB379779620228A4E017260AB8668879C";

/// Two minutes ahead, so that every cert a test makes (real clock) is valid at it.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() + 120, 0).unwrap()
}

fn head(from: &str, subject: &str, msgid: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: security@intake.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n{extra}Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
}

fn text_part(subject: Option<&str>, body: &str) -> String {
    let protected = subject.map(|s| format!("Subject: {s}\r\n")).unwrap_or_default();
    format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n{protected}Content-Transfer-Encoding: 8bit\r\n\r\n{}",
        String::from_utf8(crlf(body.as_bytes())).unwrap()
    )
}

/// A command mail as Thunderbird sends it: PGP/MIME, signed and encrypted in one pass.
fn encrypted(signer: &Gpg, from: &str, outer_subject: &str, protected: &str, msgid: &str, body: &str) -> Vec<u8> {
    let ct = signer.encrypt_sign(text_part(Some(protected), body).as_bytes(), INTAKE_FPR);
    pgp_mime_wrap(&head(from, outer_subject, msgid, ""), &ct)
}

fn out_of(p: &Pipeline, kind: MailKind) -> Vec<OutMail> {
    p.store.outbox().unwrap().into_iter().filter(|o| o.kind == kind).collect()
}

/// `gpg --sign --armor` (signed, NOT encrypted) of `data`.
fn sign_only_armored(g: &Gpg, data: &[u8]) -> Vec<u8> {
    let f = g.home.path().join("so-in");
    std::fs::write(&f, data).unwrap();
    let out = g.cmd().args(["--armor", "--sign", "--local-user", &g.fpr, "--output", "-"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Any detached signature by a team member over any public bytes (here: a git commit
/// object, as `git commit -S` signs it) turned into an OpenPGP signed message
/// (one-pass signature, literal data, signature): no secret needed.
fn signed_message_from_detached(data: &[u8], detached: &[u8]) -> Vec<u8> {
    use openpgp::packet::{Literal, Packet, one_pass_sig::OnePassSig3};
    use openpgp::parse::Parse;
    use openpgp::serialize::Serialize;
    use sequoia_openpgp as openpgp;
    let pile = openpgp::PacketPile::from_bytes(detached).unwrap();
    let sig = match pile.into_children().next().unwrap() {
        Packet::Signature(s) => s,
        p => panic!("{p:?}"),
    };
    let mut ops = OnePassSig3::try_from(&sig).unwrap();
    ops.set_last(true);
    let mut lit = Literal::new(openpgp::types::DataFormat::Binary);
    lit.set_body(data.to_vec());
    let mut out = Vec::new();
    Packet::from(ops).serialize(&mut out).unwrap();
    Packet::Literal(lit).serialize(&mut out).unwrap();
    Packet::Signature(sig).serialize(&mut out).unwrap();
    out
}

/// A multipart/mixed mail: a text body holding `armored` (inline PGP), and `attachment`
/// as a binary `.gpg` file.
fn inline_with_attachment(from: &str, subject: &str, msgid: &str, armored: &[u8], attachment: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(attachment);
    let folded: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let mut m = head(from, subject, msgid, "");
    m.push_str("Content-Type: multipart/mixed; boundary=\"MIX\"\r\n\r\n--MIX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    m.push_str(&String::from_utf8(crlf(armored)).unwrap());
    m.push_str("\r\n--MIX\r\nContent-Type: application/octet-stream; name=\"commit.gpg\"\r\n");
    m.push_str("Content-Disposition: attachment; filename=\"commit.gpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    m.push_str(&folded.join("\r\n"));
    m.push_str("\r\n--MIX--\r\n");
    m.into_bytes()
}

struct World {
    _dir: tempfile::TempDir,
    p: Pipeline,
    alice: Gpg,
    rita: Gpg,
    case: String,
    t: DateTime<Utc>,
}

fn world(extra: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let alice = party("Alice Team <alice@team.test>");
    let rita = party("Rita Reporter <rita@reporter.test>");
    let p = pipeline(dir.path(), &[&alice], extra);
    let t = now();
    let report = pgp_mime_report(
        &rita,
        "rita@reporter.test",
        INTAKE_FPR,
        "SQL injection in search",
        "## Summary\nThe name parameter of /api/search reaches SQL unescaped.\n\n## Affected versions\n2.3.0 to 2.3.4\n",
        "report-1@reporter.test",
        true,
    );
    let o = p.ingest(&report, None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "case");
    World { _dir: dir, case: o.case_id.unwrap(), p, alice, rita, t }
}

/// Alice's public, recent detached signature (a signed git commit pushed today), made
/// into a signed OpenPGP message: what F1 attaches.
fn alices_public_signature(alice: &Gpg) -> Vec<u8> {
    let commit =
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor Alice Team <alice@team.test> 1765100000 +0000\n\
                   committer Alice Team <alice@team.test> 1765100000 +0000\n\nFix typo in README\n";
    signed_message_from_detached(commit, &alice.detach_sign(commit))
}

/// F1 (critical): a command mail whose text is signed by an unknown key (the attacker's,
/// not attached: `unknown-key`, which authenticate ignores) and which carries, as a
/// `.gpg` attachment, any good signature by a team cert over anything else. The text
/// counts as "signed" (some signature covers it) and the team's good signature is the
/// credential: the commands apply as Alice's.
#[test]
fn f1_a_team_signature_over_other_data_does_not_authenticate_the_text() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let mallory = party("Mallory <mallory@evil.test>");
    let body = text_part(None, "/tlp clear\n/status triaged\n/assign Mallory\n");
    let armored = mallory.encrypt_sign(body.as_bytes(), INTAKE_FPR);
    let raw = inline_with_attachment(
        "Alice Team <alice@team.test>",
        &format!("[{id}]"),
        "forged-1@evil.test",
        &armored,
        &alices_public_signature(&w.alice),
    );
    let o = p.ingest(&raw, None, t, t).unwrap();
    let c = p.store.case_meta(id).unwrap().unwrap();
    assert_ne!(o.disposition.as_str(), "command", "forged command applied: {o:?}; tlp now {:?}", c.tlp);
    assert_ne!(c.tlp.as_deref(), Some("CLEAR"));
}

/// F1, its worst use: the forged mail reads the attacker in (a cert of theirs inside
/// the attacker-signed text) and the daemon mails them the whole case, encrypted to them.
#[test]
fn f1_a_forged_readin_sends_the_case_to_the_attacker() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let mallory = party("Mallory <mallory@evil.test>");
    let eve = party("Eve Fixer <eve@evil.test>");
    let inner = format!(
        "Content-Type: multipart/mixed; boundary=\"IN\"\r\n\r\n--IN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         /readin add fixer\r\n--IN\r\nContent-Type: application/pgp-keys; name=\"fixer.asc\"\r\n\r\n{}\r\n--IN--\r\n",
        String::from_utf8(crlf(&eve.export())).unwrap()
    );
    let armored = mallory.encrypt_sign(inner.as_bytes(), INTAKE_FPR);
    let raw = inline_with_attachment(
        "alice@team.test",
        &format!("[{id}]"),
        "forged-2@evil.test",
        &armored,
        &alices_public_signature(&w.alice),
    );
    let o = p.ingest(&raw, None, t, t).unwrap();
    let to_eve: Vec<_> = out_of(p, MailKind::ReadIn).into_iter().filter(|m| m.to == vec!["eve@evil.test"]).collect();
    assert!(to_eve.is_empty(), "the case's summary is queued to the attacker: {o:?}");
    assert_ne!(o.disposition.as_str(), "command");
}

/// F2: an inline `gpg --sign --armor` message (signed, not encrypted: it crossed the
/// network in clear) passes the "must be encrypted" rule for /note and /reply, because
/// open_encrypted marks everything it opens as encrypted.
#[test]
fn f2_a_signed_only_inline_message_is_not_encrypted() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let armored = sign_only_armored(&w.alice, b"/note the exploit needs admin rights\n/reply\nThanks, confirmed.\n");
    let mut m = head("alice@team.test", &format!("[{id}]"), "so-1@team.test", "");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    m.push_str(&String::from_utf8(crlf(&armored)).unwrap());
    let o = p.ingest(m.as_bytes(), None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command-rejected", "{o:?}");
    assert!(o.reason.as_deref().unwrap_or("").contains("not encrypted"), "{o:?}");
}

/// F3: the case is taken from the outer (unprotected, unsigned) Subject before the
/// protected one: whoever relays Alice's encrypted mail re-targets it to another case by
/// editing one header; her /reply (words about case 1) goes to case 2's reporter.
#[test]
fn f3_the_signed_protected_subject_wins_over_the_outer_one() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    // The attacker's own case: they are its reporter.
    let evil = party("Eve <eve@evil.test>");
    let report =
        pgp_mime_report(&evil, "eve@evil.test", INTAKE_FPR, "XSS", "XSS in the wiki.\n", "r-e@evil.test", true);
    let id2 = p.ingest(&report, None, t, t).unwrap().case_id.unwrap();
    let raw = encrypted(
        &w.alice,
        "alice@team.test",
        &format!("Re: [{id2}]"),
        &format!("Re: [{id}] SQL injection in search"),
        "rt-1@team.test",
        "/reply\nRita, the SQLi in /api/search is confirmed; fix lands in 2.3.5.\n",
    );
    let o = p.ingest(&raw, None, t, t).unwrap();
    assert_ne!(o.case_id.as_deref(), Some(id2.as_str()), "applied to the case the outer Subject names: {o:?}");
    let to_eve = out_of(p, MailKind::Reply).into_iter().filter(|m| m.to == vec!["eve@evil.test"]).count();
    assert_eq!(to_eve, 0, "Alice's reply about {id} went to {id2}'s reporter");
}

/// F4: a reporter's signed report whose first line happens to be a command word (an
/// endpoint called /status) is taken for a command mail and refused: no case, no ack.
#[test]
fn f4_a_signed_report_from_a_stranger_is_a_report() {
    let w = world("");
    let sam = party("Sam <sam@reporter.test>");
    let raw = pgp_mime_report(
        &sam,
        "sam@reporter.test",
        INTAKE_FPR,
        "Info leak",
        "/status returns the database password to anyone.\ncurl https://app/status\n",
        "r-s@reporter.test",
        true,
    );
    let o = w.p.ingest(&raw, None, w.t, w.t).unwrap();
    assert_eq!(o.disposition.as_str(), "case", "{o:?}");
}

/// F5: a refused encrypted command mail's reason quotes the decrypted line; that reason
/// is logged (`tracing::warn!(reason = ...)` in record_command) and stored in the mail
/// record that `mail list` shows.
#[test]
fn f5_a_refusal_reason_does_not_quote_decrypted_text() {
    let w = world("");
    let raw = encrypted(
        &w.alice,
        "alice@team.test",
        &format!("[{}]", w.case),
        &format!("[{}]", w.case),
        "lg-1@team.test",
        "/status triaged\nThe admin password is hunter2, see the PoC.\n",
    );
    let o = w.p.ingest(&raw, None, w.t, w.t).unwrap();
    assert_eq!(o.disposition.as_str(), "command-rejected");
    assert!(!o.reason.as_deref().unwrap_or("").contains("hunter2"), "{o:?}");
}

/// What holds: an attacker-signed text with no team signature anywhere, a team member's
/// signed mail with a forged text beside it, and the same with an unsigned text before
/// the signed block, apply nothing.
#[test]
fn holds_unsigned_text_beside_a_team_signature_applies_nothing() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    // multipart/mixed: the attacker's commands, then Alice's genuine signed mail.
    let part = text_part(None, "Thanks for the report, looking at it.\n");
    let sig = w.alice.detach_sign(part.as_bytes());
    let mut m = head("alice@team.test", &format!("[{id}]"), "mix-1@evil.test", "");
    m.push_str("Content-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n--OUT\r\nContent-Type: text/plain\r\n\r\n/tlp clear\r\n--OUT\r\n");
    m.push_str("Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"SIG\"\r\n\r\n");
    m.push_str(&format!(
        "--SIG\r\n{part}\r\n--SIG\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n{}\r\n--SIG--\r\n--OUT--\r\n",
        String::from_utf8(crlf(&sig)).unwrap()
    ));
    let o = p.ingest(m.as_bytes(), None, t, t).unwrap();
    assert_ne!(o.disposition.as_str(), "command", "{o:?}");
    // Cleartext-signed by Alice with an unsigned command line before the block.
    let f = w.alice.home.path().join("cs");
    std::fs::write(&f, "Looks good.\n").unwrap();
    let cs = w.alice.cmd().args(["--clearsign", "--output", "-"]).arg(&f).output().unwrap().stdout;
    let mut m = head("alice@team.test", &format!("[{id}]"), "cs-1@evil.test", "");
    m.push_str("Content-Type: text/plain\r\n\r\n/tlp clear\r\n\r\n");
    m.push_str(&String::from_utf8(crlf(&cs)).unwrap());
    let o = p.ingest(m.as_bytes(), None, t, t).unwrap();
    assert_ne!(o.disposition.as_str(), "command", "{o:?}");
    assert_ne!(p.store.case_meta(id).unwrap().unwrap().tlp.as_deref(), Some("CLEAR"));
}

/// F6: /reply takes every line up to a quote marker `>`, an attribution followed by `>`
/// lines or `-- `. Outlook (GpgOL) quotes with no `>`: its text part puts the original
/// under a `____` rule and a `From:`/`Sent:` block. A team member answering the summary
/// from Outlook sends the reporter the team's whole summary (triage, team notes, who is
/// read in), up to the `-- ` of the act-by-reply lines.
#[test]
fn f6_reply_text_stops_at_an_outlook_quote() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let team = party("x <x@x.test>");
    team.import(&repo().join("keys/team.key.asc"));
    let s = &out_of(p, MailKind::Summary)[0];
    let raw = p.store.out_raw(&s.id).unwrap().unwrap();
    let summary = String::from_utf8_lossy(&team.decrypt(&support::encrypted_payload(&raw)).0).into_owned();
    let summary_text = summary.split("\r\n\r\n").skip(1).collect::<Vec<_>>().join("\n\n").replace("\r\n", "\n");
    let body = format!(
        "/reply\nThanks, we are looking into it.\n\n________________________________\nFrom: Cmd Security <security@intake.test>\n\
         Sent: Monday, December 7, 2026 10:00\nTo: team@team.test\nSubject: [{id}] SQL injection in search\n\n{summary_text}"
    );
    let raw =
        encrypted(&w.alice, "alice@team.test", &format!("RE: [{id}]"), &format!("RE: [{id}]"), "ol-1@team.test", &body);
    let o = p.ingest(&raw, None, t, t).unwrap();
    for reply in out_of(p, MailKind::Reply) {
        let raw = p.store.out_raw(&reply.id).unwrap().unwrap();
        let to_rita = String::from_utf8_lossy(&w.rita.decrypt(&support::encrypted_payload(&raw)).0).into_owned();
        assert!(
            !to_rita.contains("Reporter key:") && !to_rita.contains("MISSING:"),
            "the reporter got the team's summary ({o:?}):\n{to_rita}"
        );
    }
}

/// F1, outside the command path: the same forgery (an unknown-key signature over the
/// text, the victim's good signature over an attachment) makes a follow-up "as the
/// reporter" with verdict good, and a cert inside the forged text succeeds the
/// reporter's pinned cert: later replies are encrypted to the attacker's key. No age
/// limit applies here: any signature the reporter ever made will do.
#[test]
fn f1_a_forged_follow_up_does_not_replace_the_reporters_pinned_cert() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let pinned = p.store.cert("rita@reporter.test").unwrap().unwrap().fingerprint;
    assert_eq!(pinned, w.rita.fpr);
    let mallory = party("Mallory <mallory@evil.test>");
    let fake = party("Rita Reporter <rita@reporter.test>");
    let inner = format!(
        "Content-Type: multipart/mixed; boundary=\"IN\"\r\n\r\n--IN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Please close this, it was a false alarm. My new key is attached.\r\n--IN\r\nContent-Type: application/pgp-keys; name=\"key.asc\"\r\n\r\n{}\r\n--IN--\r\n",
        String::from_utf8(crlf(&fake.export())).unwrap()
    );
    let armored = mallory.encrypt_sign(inner.as_bytes(), INTAKE_FPR);
    let data = b"any bytes Rita once signed (a release, a commit)\n";
    let ritas = signed_message_from_detached(data, &w.rita.detach_sign(data));
    let raw =
        inline_with_attachment("rita@reporter.test", &format!("Re: [{id}]"), "forged-fu@evil.test", &armored, &ritas);
    let o = p.ingest(&raw, None, t, t).unwrap();
    let c = p.store.case(id).unwrap().unwrap();
    let last = c.messages.last().unwrap();
    let now_pinned = p.store.cert("rita@reporter.test").unwrap().unwrap().fingerprint;
    assert_eq!(now_pinned, w.rita.fpr, "pinned cert replaced by the attacker's ({o:?}, verdict {:?})", last.signature);
    assert_ne!(last.signature.as_str(), "good", "a forged follow-up is recorded as signed by the reporter");
}

/// F7 (function, fails closed): `/readin add` in a signed-only (multipart/signed) mail
/// with the cert attached always fails "found 2": classify adds the signed part's keys to
/// `signed_keys` twice (once as `part.keys`, once through `push_content`).
#[test]
fn f7_readin_by_signed_only_mail_applies() {
    let w = world("");
    let (p, id, t) = (&w.p, &w.case, w.t);
    let fixer = party("Fiona Fixer <fiona@maint.test>");
    let t = t.max(now());
    // The case named inside the signed part too (protected headers, as Thunderbird
    // signs): signed-only mail names its case there (F3).
    let part = format!(
        "Content-Type: multipart/mixed; boundary=\"IN\"; protected-headers=\"v1\"\r\nSubject: [{id}]\r\n\r\n--IN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         /readin add fixer\r\n--IN\r\nContent-Type: application/pgp-keys; name=\"fixer.asc\"\r\n\r\n{}\r\n--IN--\r\n",
        String::from_utf8(crlf(&fixer.export())).unwrap()
    );
    let sig = w.alice.detach_sign(part.as_bytes());
    let mut m = head("alice@team.test", &format!("[{id}]"), "ri-so@team.test", "");
    m.push_str("Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"SIG\"\r\n\r\n");
    m.push_str(&format!(
        "--SIG\r\n{part}\r\n--SIG\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n{}\r\n--SIG--\r\n",
        String::from_utf8(crlf(&sig)).unwrap()
    ));
    let o = p.ingest(m.as_bytes(), None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
}

/// Issue 23 with issue 21: a project's maintainers (its `team_certs`) act by signed mail
/// on that project's cases, and on no other case.
#[test]
fn a_project_maintainer_commands_only_the_projects_cases() {
    let dir = tempfile::tempdir().unwrap();
    let alice = party("Alice Team <alice@team.test>");
    let rita = party("Rita Reporter <rita@reporter.test>");
    let nina = party("Nina Numlib <nina@numlib.test>");
    std::fs::create_dir_all(dir.path().join("numlib-team")).unwrap();
    std::fs::write(dir.path().join("numlib-team/nina.asc"), nina.export()).unwrap();
    let p = pipeline(
        dir.path(),
        &[&alice],
        "[[projects]]\nname = \"numlib\"\naddresses = [\"security@numlib.test\"]\ncase_prefix = \"NUM\"\n\
         list_address = \"numlib-team@numlib.test\"\nteam_certs = \"numlib-team\"\n",
    );
    let t = now();
    let report = pgp_mime_report(
        &rita,
        "rita@reporter.test",
        INTAKE_FPR,
        "SQL injection in search",
        "The name parameter of /api/search reaches SQL unescaped.\n",
        "rep-sec@reporter.test",
        true,
    );
    let sec = p.ingest(&report, None, t, t).unwrap().case_id.unwrap();
    let num_report = "From: Rita <rita@reporter.test>\r\nTo: security@numlib.test\r\nSubject: Overflow in matmul\r\n\
                      Message-ID: <rep-num@reporter.test>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\n\
                      matmul overflows its buffer for n > 2^16.\r\n";
    let num = p.ingest(num_report.as_bytes(), None, t, t).unwrap().case_id.unwrap();
    assert!(num.starts_with("NUM-"), "{num}");
    let cmd = |case: &str, msgid: &str| {
        encrypted(&nina, "nina@numlib.test", &format!("[{case}]"), &format!("[{case}]"), msgid, "/status triaged\n")
    };
    let o = p.ingest(&cmd(&num, "n-1@numlib.test"), None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command", "{o:?}");
    assert_eq!(p.store.case_meta(&num).unwrap().unwrap().status.as_str(), "triaged");
    let o = p.ingest(&cmd(&sec, "n-2@numlib.test"), None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "command-rejected", "{o:?}");
    assert!(o.reason.as_deref().unwrap().contains("maintainer cert of project numlib"), "{o:?}");
    assert_ne!(p.store.case_meta(&sec).unwrap().unwrap().status.as_str(), "triaged");
}

/// L1, L2: the act-by-reply lines reach the list only with `[commands] enabled`; the
/// confirmation's outer Subject does not name the signer.
#[test]
fn the_hint_follows_commands_enabled_and_the_confirmation_subject_names_no_one() {
    let team = party("x <x@x.test>");
    team.import(&repo().join("keys/team.key.asc"));
    let w = world("[commands]\nenabled = false\n");
    let s = &out_of(&w.p, MailKind::Summary)[0];
    let raw = w.p.store.out_raw(&s.id).unwrap().unwrap();
    let text = String::from_utf8_lossy(&team.decrypt(&support::encrypted_payload(&raw)).0).into_owned();
    assert!(!text.contains("Act by signed reply"), "{text}");
    let w = world("");
    let raw = encrypted(
        &w.alice,
        "alice@team.test",
        &format!("[{}]", w.case),
        &format!("[{}]", w.case),
        "c-1@team.test",
        "/status triaged\n",
    );
    assert_eq!(w.p.ingest(&raw, None, w.t, w.t).unwrap().disposition.as_str(), "command");
    let conf = &out_of(&w.p, MailKind::Confirmation)[0];
    let raw = String::from_utf8_lossy(&w.p.store.out_raw(&conf.id).unwrap().unwrap()).into_owned();
    let outer = support::header(raw.as_bytes(), "Subject").unwrap();
    assert_eq!(outer, format!("[{}] Changed", w.case));
}

/// L4: the list's shared key (in `keys.team_certs` so the list gets mail, its secret held
/// by everyone who reads the list) never signs a command.
#[test]
fn the_lists_shared_key_does_not_command() {
    let w = world("");
    let mut list = party("x <x@x.test>");
    list.import(&repo().join("keys/team.key.asc"));
    // keys/team.pub.asc: "Team <team@team.test>".
    list.fpr = "7EC76F81FF4D32F343F5BD961DAD0DD148E3FAB9".into();
    let raw = encrypted(
        &list,
        "team@team.test",
        &format!("[{}]", w.case),
        &format!("[{}]", w.case),
        "l-1@team.test",
        "/tlp clear\n",
    );
    let o = w.p.ingest(&raw, None, w.t, w.t).unwrap();
    assert!(!matches!(o.disposition.as_str(), "command"), "{o:?}");
    assert_ne!(w.p.store.case_meta(&w.case).unwrap().unwrap().tlp.as_deref(), Some("CLEAR"));
}

/// F2, for reports: an armored `gpg --sign` report (signed, not encrypted) is recorded
/// unencrypted, its verdict good.
#[test]
fn a_signed_only_inline_report_is_recorded_unencrypted() {
    let w = world("");
    let sam = party("Sam <sam@reporter.test>");
    let t = w.t.max(now());
    let armored = String::from_utf8(crlf(&sign_only_armored(&sam, b"XSS in the wiki editor, 4.1.0.\n"))).unwrap();
    // Sam's key travels beside it, so the signature can be checked.
    let key = String::from_utf8(crlf(&sam.export())).unwrap();
    let mut raw = head("sam@reporter.test", "XSS", "so-r@reporter.test", "");
    raw.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"K\"\r\n\r\n--K\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {armored}\r\n--K\r\nContent-Type: application/pgp-keys; name=\"sam.asc\"\r\n\r\n{key}\r\n--K--\r\n"
    ));
    let o = w.p.ingest(raw.as_bytes(), None, t, t).unwrap();
    assert_eq!(o.disposition.as_str(), "case", "{o:?}");
    let c = w.p.store.case(o.case_id.as_deref().unwrap()).unwrap().unwrap();
    let first = &c.messages[0];
    assert!(!first.encrypted, "recorded as encrypted: {first:?}");
    assert!(c.text.contains("XSS in the wiki editor"));
}
