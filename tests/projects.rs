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
use secintake::store::{MailKind, OutMail};
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

/// The three projects' config, written to `secintake.toml` in a new directory, with
/// the gpg homes of the shared team and of each project's maintainer.
fn setup() -> (tempfile::TempDir, std::path::PathBuf, Gpg, Gpg, Gpg) {
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
    let path = d.join("secintake.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path, num, plot, team)
}

fn desk() -> Desk {
    let (dir, path, num, plot, team) = setup();
    let cfg = Arc::new(Config::load(&path).unwrap());
    let store = secintake::atrest::open(&cfg).unwrap();
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

/// Postfix's `virtual_alias_maps` delivering a project's address into the one mailbox:
/// Dovecot's `Delivered-To` is the mailbox (the intake address), Postfix's
/// `X-Original-To` the project's address, which decides.
#[test]
fn an_aliased_project_address_routes_by_x_original_to() {
    let Desk { _dir, p, .. } = desk();
    let t = t0();
    let msg = [
        b"Delivered-To: security@intake.test\r\nX-Original-To: security@numlib.test\r\n".as_slice(),
        &report("security@numlib.test", "x-1@r.test", "Bug"),
    ]
    .concat();
    assert!(p.ingest(&msg, None, t, t).unwrap().case_id.unwrap().starts_with("NUM-"));
    // Sent to the intake address itself: the default project, whatever the mailbox.
    let msg =
        [b"Delivered-To: security@intake.test\r\n".as_slice(), &report("security@intake.test", "x-2@r.test", "Bug")]
            .concat();
    assert!(p.ingest(&msg, None, t, t).unwrap().case_id.unwrap().starts_with("SEC-"));
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
    // The case says so, for the team to move it if it is numlib's.
    let log = p.store.log(&id).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "note" && e.detail.contains("encrypted to numlib's intake key but sent to plotlib")),
        "{log:?}"
    );
    // A report to numlib opened by numlib's own key gets no such note.
    let ct = alice.encrypt_sign(body, "713530A5369CEA099A919673B1AE1BBD4D3EE0FC");
    let msg = pgp_mime_wrap(
        "From: Alice <alice@reporter.test>\r\nTo: security@numlib.test\r\nSubject: ...\r\nMessage-ID: <e-2@r.test>\r\n",
        &ct,
    );
    let own = p.ingest(&msg, None, t, t).unwrap().case_id.unwrap();
    assert!(own.starts_with("NUM-"), "{own}");
    assert!(!p.store.log(&own).unwrap().iter().any(|e| e.action == "note"));
}

/// What `g` decrypts of the team mail `o` (gpg fails on the signature by a key it does
/// not hold, after writing the plaintext).
fn plaintext(g: &Gpg, p: &Pipeline, o: &OutMail) -> String {
    let f = g.home.path().join(format!("ct-{}", rand_tag()));
    std::fs::write(&f, encrypted_payload(&raw(p, o))).unwrap();
    let out = g.cmd().args(["--decrypt"]).arg(&f).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every team mail in the store read by each maintainer: one reads a case's mail only
/// when the case concerns their project (sent to it, or also affecting it).
fn assert_no_leak(p: &Pipeline, num: &Gpg, plot: &Gpg) -> usize {
    let mut read = 0;
    for o in p.store.outbox().unwrap() {
        if o.to.iter().any(|a| a == "alice@reporter.test") {
            continue;
        }
        let case = p.store.case_meta(o.case_id.as_deref().unwrap()).unwrap().unwrap();
        for (g, name) in [(num, "numlib"), (plot, "plotlib")] {
            if can_read(g, p, &o) {
                assert!(case.concerns(name, "Demo"), "{name}'s maintainer read {} ({:?}) of {}", o.id, o.kind, case.id);
                read += 1;
            }
        }
    }
    read
}

#[test]
fn also_affects_tells_the_other_projects_team_and_nobody_else() {
    let Desk { _dir, p, num, plot, team } = desk();
    let t = t0();
    let sec = p.ingest(&report("security@intake.test", "a-1@r.test", "Overflow"), None, t, t).unwrap().case_id.unwrap();
    let before: Vec<String> = mails_of(&p, &sec, MailKind::Summary).into_iter().map(|o| o.id).collect();
    let said = p.also_affects(&sec, &["numlib".into(), "Demo".into()], "ann", t).unwrap();
    assert_eq!(said, "projects_affected += numlib");
    let c = p.store.case_meta(&sec).unwrap().unwrap();
    assert_eq!(c.projects_affected, ["numlib"]);
    assert!(c.concerns("numlib", "Demo") && !c.concerns("plotlib", "Demo"));
    let log = p.store.log(&sec).unwrap();
    assert!(log.iter().any(|e| e.action == "also-affects" && e.who == "ann"), "{log:?}");
    // numlib's team got the summary, with the report's text, on its own list.
    let summaries = mails_of(&p, &sec, MailKind::Summary);
    let new: Vec<&OutMail> = summaries.iter().filter(|o| !before.contains(&o.id)).collect();
    let to_num: Vec<&&OutMail> = new.iter().filter(|o| o.to == ["numlib-team@numlib.test"]).collect();
    assert_eq!(to_num.len(), 1, "{new:?}");
    assert!(can_read(&num, &p, to_num[0]) && !can_read(&plot, &p, to_num[0]));
    assert!(plaintext(&num, &p, to_num[0]).contains("the parser overflows"));
    // Naming it again, or an unknown project, changes nothing.
    assert!(p.also_affects(&sec, &["numlib".into()], "ann", t).is_err());
    assert!(p.also_affects(&sec, &["nosuch".into()], "ann", t).unwrap_err().to_string().contains("no project"));
    // A follow-up goes to both projects' teams, never to plotlib's maintainer.
    p.ingest(&report("security@intake.test", "a-2@r.test", &format!("Re: [{sec}] more")), None, t, t).unwrap();
    let follow: Vec<OutMail> = mails_of(&p, &sec, MailKind::Followup);
    assert!(follow.iter().any(|o| o.to == ["numlib-team@numlib.test"] && can_read(&num, &p, o)), "{follow:?}");
    assert!(follow.iter().any(|o| o.to == ["team@team.test"] && can_read(&team, &p, o)));
    // And across the store: a plotlib case also affecting the default project, a numlib one.
    let plt = p.ingest(&report("security@plotlib.test", "a-3@r.test", "Bug"), None, t, t).unwrap().case_id.unwrap();
    p.also_affects(&plt, &["Demo".into()], "ann", t).unwrap();
    p.ingest(&report("security@numlib.test", "a-4@r.test", "Other"), None, t, t).unwrap();
    assert!(assert_no_leak(&p, &num, &plot) >= 4);
}

#[test]
fn a_case_moved_to_another_project_tells_its_team_and_not_the_reporter() {
    let Desk { _dir, p, num, plot, .. } = desk();
    let t = t0();
    let sec =
        p.ingest(&report("security@intake.test", "m-1@r.test", "Numlib bug"), None, t, t).unwrap().case_id.unwrap();
    let to_reporter = |p: &Pipeline| {
        p.store.outbox().unwrap().iter().filter(|o| o.to.iter().any(|a| a == "alice@reporter.test")).count()
    };
    let mails: Vec<String> = p.store.outbox().unwrap().into_iter().map(|o| o.id).collect();
    let reporter_mails = to_reporter(&p);
    assert_eq!(p.move_case(&sec, "numlib", "ann", t).unwrap(), "project Demo -> numlib");
    let c = p.store.case_meta(&sec).unwrap().unwrap();
    assert_eq!((c.id.as_str(), c.project.as_deref()), (sec.as_str(), Some("numlib")), "the id stays");
    let e = p.store.log(&sec).unwrap().pop().unwrap();
    assert_eq!((e.action.as_str(), e.who.as_str(), e.detail.as_str()), ("moved", "ann", "project Demo -> numlib"));
    assert_eq!(to_reporter(&p), reporter_mails, "the reporter is told nothing new");
    let new: Vec<OutMail> = p.store.outbox().unwrap().into_iter().filter(|o| !mails.contains(&o.id)).collect();
    assert!(new.iter().any(|o| o.to == ["numlib-team@numlib.test"] && can_read(&num, &p, o)), "{new:?}");
    assert!(p.move_case(&sec, "numlib", "ann", t).is_err(), "already numlib's");
    // From now on its team mail is numlib's.
    p.ingest(&report("security@intake.test", "m-2@r.test", &format!("Re: [{sec}] more")), None, t, t).unwrap();
    assert!(mails_of(&p, &sec, MailKind::Followup).iter().any(|o| o.to == ["numlib-team@numlib.test"]));
    assert_no_leak(&p, &num, &plot);
}

/// The commands, through the built binary: `case set --also-affects`, `case list
/// --project`, `case move`, the case JSON and the audit log.
#[test]
fn the_commands_record_and_list_across_projects() {
    let (dir, cfg, ..) = setup();
    let run = |args: &[&str]| std::process::Command::new(bin()).arg("--config").arg(&cfg).args(args).output().unwrap();
    let msg = dir.path().join("r.eml");
    std::fs::write(&msg, report("security@plotlib.test", "c-1@r.test", "Bug")).unwrap();
    let out = run(&["ingest", msg.to_str().unwrap()]);
    let id = String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_owned();
    assert!(id.starts_with("PLT-"), "{id}");
    let list = |project: &str| -> Vec<String> {
        let out = run(&["case", "list", "--project", project, "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(list("numlib"), Vec::<String>::new());
    let out = run(&["case", "set", &id, "--also-affects", "numlib", "--tlp", "AMBER", "--as", "ann"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(list("numlib"), vec![id.clone()]);
    assert_eq!(list("plotlib"), vec![id.clone()]);
    assert_eq!(list("Demo"), Vec::<String>::new());
    let show: serde_json::Value = serde_json::from_slice(&run(&["case", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(
        (show["project"].clone(), show["projects_affected"].clone()),
        ("plotlib".into(), serde_json::json!(["numlib"]))
    );
    assert_eq!(show["tlp"], "AMBER");
    assert_eq!(run(&["case", "set", &id, "--also-affects", "nosuch"]).status.code(), Some(2));
    let out = run(&["case", "move", &id, "--project", "numlib", "--as", "bob"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{id}: project plotlib -> numlib"));
    assert_eq!(list("plotlib"), Vec::<String>::new());
    let show: serde_json::Value = serde_json::from_slice(&run(&["case", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!((show["project"].clone(), show["projects_affected"].clone()), ("numlib".into(), serde_json::json!([])));
    let log: serde_json::Value = serde_json::from_slice(&run(&["case", "log", &id, "--json"]).stdout).unwrap();
    let actions: Vec<(&str, &str)> =
        log.as_array().unwrap().iter().map(|e| (e["action"].as_str().unwrap(), e["who"].as_str().unwrap())).collect();
    assert!(actions.contains(&("also-affects", "ann")) && actions.contains(&("moved", "bob")), "{actions:?}");
    assert_eq!(run(&["case", "move", &id, "--project", "nosuch"]).status.code(), Some(2));
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

/// `stats` over three projects' cases: counts per project and in total, times from the
/// audit log and the ack, SLA misses, `--project` and `--since`, through the binary.
#[test]
fn stats_count_per_project_and_in_total() {
    let Desk { _dir: dir, p, .. } = desk();
    let now = t0();
    let days = |n| now - Duration::days(n);
    let num = p.ingest(&report("security@numlib.test", "s-1@r.test", "A"), None, days(10), days(10)).unwrap();
    let num = num.case_id.unwrap();
    let plt = p.ingest(&report("security@plotlib.test", "s-2@r.test", "B"), None, days(80), days(80)).unwrap();
    let plt = plt.case_id.unwrap();
    let sec = p.ingest(&report("security@intake.test", "s-3@r.test", "C"), None, days(2), days(2)).unwrap();
    let sec = sec.case_id.unwrap();
    let auto = b"From: Bob <bob@else.test>\r\nTo: security@intake.test\r\nSubject: Out of office\r\n\
        Auto-Submitted: auto-replied\r\nMessage-ID: <s-4@r.test>\r\n\r\nAway.\r\n";
    assert_eq!(p.ingest(auto, None, days(1), days(1)).unwrap().disposition.as_str(), "non-report");
    // The outbox's record of numlib's ack, two hours after the report.
    let mut c = p.store.case_meta(&num).unwrap().unwrap();
    c.ack = Some(secintake::case::Ack {
        sent_at: days(10) + Duration::hours(2),
        message_id: "ack@x".into(),
        encrypted: false,
        undelivered: false,
    });
    p.store
        .write(|tx| {
            let mut b = secintake::store::Batch::default();
            b.put_case(&c);
            tx.commit(b)
        })
        .unwrap();
    let cfg = dir.path().join("secintake.toml");
    drop(p);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin()).arg("--config").arg(&cfg).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    run(&["case", "set", &num, "--status", "triaged", "--as", "ann"]);
    run(&["case", "set", &num, "--fixed", "1.2.5"]);
    // plt was received first (backdated above): --force keeps num the original.
    run(&["case", "set", &plt, "--status", "rejected", "--reason", "duplicate", "--duplicate-of", &num, "--force"]);
    let v: serde_json::Value = serde_json::from_slice(&run(&["stats", "--json"])).unwrap();
    let total = &v["total"];
    assert_eq!(total["received"], 3);
    assert_eq!(total["messages_by_disposition"], serde_json::json!({"case": 3, "non-report": 1}));
    assert_eq!(total["by_rejection"], serde_json::json!({"duplicate": 1}));
    let n = &v["projects"]["numlib"];
    assert_eq!((n["received"].as_u64(), n["by_status"]["triaged"].as_u64()), (Some(1), Some(1)));
    assert_eq!(n["time_to"]["ack"], serde_json::json!({"count": 1, "median_s": 7200, "p90_s": 7200}));
    assert_eq!((n["time_to"]["triage"]["count"].as_u64(), n["time_to"]["fix"]["count"].as_u64()), (Some(1), Some(1)));
    assert!(n["time_to"]["triage"]["median_s"].as_i64().unwrap() >= 10 * 86_400 - 60);
    assert_eq!(n["sla_misses_total"], 0, "{n}");
    // The default project's report waits for its ack past the 24 hours.
    assert_eq!(v["projects"]["Demo"]["sla_misses"], serde_json::json!({"ack": 1}));
    assert_eq!(v["projects"]["plotlib"]["received"], 1);
    assert_eq!(v["months"].as_object().unwrap().values().map(|m| m["received"].as_u64().unwrap()).sum::<u64>(), 3);
    // One project; and only the reports since a day.
    let v: serde_json::Value = serde_json::from_slice(&run(&["stats", "--project", "numlib", "--json"])).unwrap();
    assert_eq!(v["projects"].as_object().unwrap().keys().collect::<Vec<_>>(), ["numlib"]);
    assert_eq!(
        (v["total"]["received"].as_u64(), v["total"]["messages_by_disposition"]["case"].as_u64()),
        (Some(1), Some(1))
    );
    let since = days(30).format("%Y-%m-%d").to_string();
    let v: serde_json::Value = serde_json::from_slice(&run(&["stats", "--since", &since, "--json"])).unwrap();
    assert_eq!((v["total"]["received"].as_u64(), v["projects"]["plotlib"]["received"].as_u64()), (Some(2), Some(0)));
    let text = String::from_utf8(run(&["stats"])).unwrap();
    assert!(text.contains("numlib") && text.contains("2h 0m / 2h 0m") && text.contains("total"), "{text}");
    let _ = sec;
}
