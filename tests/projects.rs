//! Several projects in one daemon (issue 23), through the real pipeline with gpg playing
//! the reporter and the maintainers: three projects (the default one; `numlib` with a key
//! and a list of its own; `plotlib` with its own maintainers and policy) in one store.
//! Reports to each address, to a plus-address and to an unknown one; a report encrypted to
//! another project's key; a follow-up across addresses; acks from the right address and
//! key, as the reporter's gpg verifies them; a maintainer never receiving another
//! project's content.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secintake::config::Config;
use secintake::pipeline::Pipeline;
use secintake::store::{MailKind, OutMail, Store};
use support::*;

struct Desk {
    _dir: tempfile::TempDir,
    p: Pipeline,
    num: Gpg,
    plot: Gpg,
    team: Gpg,
}

fn secret(dir: &Path, name: &str, from: &str) -> String {
    let to = dir.join(name);
    std::fs::copy(repo().join("keys").join(from), &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    name.to_owned()
}

fn desk() -> Desk {
    let dir = tempdir("projects");
    let d = dir.path();
    let default_key = secret(d, "intake.key.asc", "test-intake.key.asc");
    let num_key = secret(d, "numlib.key.asc", "other.key.asc");
    std::fs::write(d.join("pw"), "x").unwrap();
    std::fs::set_permissions(d.join("pw"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let team = Gpg::new("Team <team@team.test>");
    let num = Gpg::new("Nina Numlib <nina@numlib.test>");
    let plot = Gpg::new("Paul Plotlib <paul@plotlib.test>");
    for (sub, g) in [("team", &team), ("numlib-team", &num), ("plotlib-team", &plot)] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        std::fs::write(d.join(sub).join("cert.asc"), g.export()).unwrap();
    }
    let text = format!(
        "[intake]\naddress = \"security@intake.test\"\n[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n[keys]\nintake_secret = \"{default_key}\"\nteam_certs = \"team\"\n\
         [team]\nlist_address = \"team@team.test\"\n[policy]\nproject = \"Demo\"\n[store]\npath = \"state\"\n\n\
         [[projects]]\nname = \"numlib\"\naddresses = [\"security@numlib.test\"]\ncase_prefix = \"NUM\"\nlist_address = \"numlib-team@numlib.test\"\n\
         intake_secret = \"{num_key}\"\nteam_certs = \"numlib-team\"\n\n\
         [[projects]]\nname = \"plotlib\"\naddresses = [\"security@plotlib.test\"]\ncase_prefix = \"PLT\"\nteam_certs = \"plotlib-team\"\n\
         disclosure_after = \"30d\"\n"
    );
    let cfg = Arc::new(Config::parse(&text, &d.join("secintake.toml")).unwrap());
    let store = Store::open(&cfg.store_path).unwrap();
    let p = Pipeline::load(cfg, store).unwrap();
    Desk { _dir: dir, p, num, plot, team }
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

fn report(to: &str, msgid: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@reporter.test>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n\r\n\
         Steps to reproduce:\r\n1. load a crafted file\r\n2. the parser overflows\r\n\r\nAffected versions: 1.2.0 to 1.2.4\r\n"
    )
    .into_bytes()
}

fn mails_of(p: &Pipeline, case: &str, kind: MailKind) -> Vec<OutMail> {
    p.store.outbox().unwrap().into_iter().filter(|o| o.kind == kind && o.case_id.as_deref() == Some(case)).collect()
}

fn raw(p: &Pipeline, o: &OutMail) -> Vec<u8> {
    p.store.out_raw(&o.id).unwrap().unwrap()
}

/// Whether `g` can decrypt the team mail `o`.
fn can_read(g: &Gpg, p: &Pipeline, o: &OutMail) -> bool {
    let ct = encrypted_payload(&raw(p, o));
    let f = g.home.path().join(format!("ct-{}", rand_tag()));
    std::fs::write(&f, ct).unwrap();
    // gpg exits non-zero for the signature by a key it does not hold: read its status.
    let out = g.cmd().args(["--status-fd", "1", "--decrypt", "--output", "/dev/null"]).arg(&f).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("[GNUPG:] DECRYPTION_OKAY")
}

#[test]
fn each_address_opens_a_case_of_its_project_answered_from_its_address_and_key() {
    let Desk { _dir, p, num, plot, team } = desk();
    let t = t0();
    let year = t.format("%Y");
    let id = p.ingest(&report("security@numlib.test", "n-1@r.test", "Overflow"), None, t, t).unwrap().case_id.unwrap();
    assert_eq!(id, format!("NUM-{year}-0001"));
    let c = p.store.case(&id).unwrap().unwrap();
    assert_eq!(c.project.as_deref(), Some("numlib"));
    // The ack: From numlib's address, signed by numlib's own key, as gpg verifies it.
    let ack = &mails_of(&p, &id, MailKind::Ack)[0];
    let bytes = raw(&p, ack);
    assert_eq!(header(&bytes, "From").unwrap(), "\"numlib Security\" <security@numlib.test>");
    assert_eq!(ack.envelope_from, "security@numlib.test", "bounces come back to the project's address");
    let reporter = Gpg::new("Alice <alice@reporter.test>");
    reporter.import(&repo().join("keys/other.pub.asc"));
    let (signed, sig) = split_signed(&bytes);
    let status = reporter.verify(&signed, &sig);
    assert!(status.contains("GOODSIG") && status.contains("713530A5369CEA099A919673B1AE1BBD4D3EE0FC"), "{status}");
    // The team mail: the shared list (team certs) and numlib's list (its maintainers).
    let summaries = mails_of(&p, &id, MailKind::Summary);
    let to: Vec<&str> = summaries.iter().map(|o| o.to[0].as_str()).collect();
    assert_eq!(to, ["team@team.test", "numlib-team@numlib.test"]);
    assert!(can_read(&team, &p, &summaries[0]) && !can_read(&num, &p, &summaries[0]));
    assert!(can_read(&num, &p, &summaries[1]) && !can_read(&team, &p, &summaries[1]));
    assert!(summaries.iter().all(|s| !can_read(&plot, &p, s)), "plotlib's maintainer read numlib's case");
}

#[test]
fn a_plus_address_routes_and_the_projects_policy_counts() {
    let Desk { _dir, p, num, plot, team } = desk();
    let t = t0();
    let id =
        p.ingest(&report("security+plotlib@intake.test", "p-1@r.test", "Bug"), None, t, t).unwrap().case_id.unwrap();
    assert!(id.starts_with("PLT-"), "{id}");
    let c = p.store.case(&id).unwrap().unwrap();
    assert_eq!(c.due.disclosure, t + Duration::days(30), "plotlib's disclosure_after");
    assert_eq!(c.due.update, t + Duration::days(7), "the default project's update_within");
    // No list of its own: the shared list, encrypted to the team and plotlib's maintainers only.
    let summaries = mails_of(&p, &id, MailKind::Summary);
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].to, ["team@team.test"]);
    assert!(can_read(&team, &p, &summaries[0]), "the shared team cannot read it");
    assert!(can_read(&plot, &p, &summaries[0]), "plotlib's maintainer cannot read it");
    assert!(!can_read(&num, &p, &summaries[0]), "numlib's maintainer read plotlib's case");
    // Signed by the default key (plotlib has none of its own), From plotlib's address.
    let ack = raw(&p, &mails_of(&p, &id, MailKind::Ack)[0]);
    assert_eq!(header(&ack, "From").unwrap(), "\"plotlib Security\" <security@plotlib.test>");
}

#[test]
fn an_unknown_address_is_the_default_project_and_follow_ups_cross_addresses() {
    let Desk { _dir, p, .. } = desk();
    let t = t0();
    let sec = p.ingest(&report("someone@else.test", "d-1@r.test", "Bug"), None, t, t).unwrap().case_id.unwrap();
    assert!(sec.starts_with("SEC-"), "{sec}");
    assert_eq!(p.store.case(&sec).unwrap().unwrap().project.as_deref(), Some("Demo"));
    let num =
        p.ingest(&report("security@numlib.test", "d-2@r.test", "Other bug"), None, t, t).unwrap().case_id.unwrap();
    // A follow-up on the numlib case, sent to the default address, joins it.
    let o = p
        .ingest(&report("security@intake.test", "d-3@r.test", &format!("Re: [{num}] Report received")), None, t, t)
        .unwrap();
    assert_eq!((o.disposition.as_str(), o.case_id.as_deref()), ("follow-up", Some(num.as_str())));
}

#[test]
fn a_report_encrypted_to_another_projects_key_goes_where_it_was_sent() {
    let Desk { _dir, p, .. } = desk();
    let t = t0();
    let alice = Gpg::new("Alice <alice@reporter.test>");
    alice.import(&repo().join("keys/other.pub.asc"));
    let body = b"Content-Type: text/plain\r\n\r\nSteps to reproduce:\r\n1. open the plot\r\n2. crash\r\n";
    let ct = alice.encrypt_sign(body, "713530A5369CEA099A919673B1AE1BBD4D3EE0FC");
    let msg = pgp_mime_wrap(
        "From: Alice <alice@reporter.test>\r\nTo: security@plotlib.test\r\nSubject: ...\r\nMessage-ID: <e-1@r.test>\r\n",
        &ct,
    );
    let id = p.ingest(&msg, None, t, t).unwrap().case_id.expect("decrypted with numlib's key, a case");
    let c = p.store.case(&id).unwrap().unwrap();
    assert!(id.starts_with("PLT-") && c.decrypted, "{id} {}", c.decrypted);
    assert!(c.text.contains("open the plot"));
}

#[test]
fn clashing_projects_are_named_both_sides() {
    let d = tempdir("projects-clash");
    let text = "[intake]\naddress = \"security@intake.test\"\ncase_prefix = \"SEC\"\n\
        [[projects]]\nname = \"a\"\naddresses = [\"security@a.test\"]\ncase_prefix = \"AAA\"\n\
        [[projects]]\nname = \"b\"\naddresses = [\"security@a.test\"]\ncase_prefix = \"AAA\"\n\
        [[projects]]\nname = \"c\"\ncase_prefix = \"SEC\"\nbogus = 1\n";
    let e = Config::parse(text, &d.path().join("x.toml")).unwrap_err().to_string();
    assert!(e.contains("projects[2].case_prefix") && e.contains("prefix of project a"), "{e}");
    assert!(e.contains("projects[2].addresses") && e.contains("also an address of project a"), "{e}");
    assert!(e.contains("projects[3].case_prefix") && e.contains("intake.case_prefix"), "{e}");
    assert!(e.contains("projects[3].bogus"), "{e}");
}
