//! The triage desk through the real pipeline (issue 20), with the clock injected:
//! completeness against `[policy] required` and the one request in the ack, a reply
//! from the reporter that completes (or reopens) a case and one from a third party that
//! does not, the auto-close that fires and the one a reply prevents, claimed against
//! assessed CVSS in exports, the EU CRA clocks over a simulated week, the pause, and the
//! flags on realistic reports (scanner dumps, several issues in one mail, exploited).

mod support;

use chrono::{DateTime, Duration, Utc};
use secintake::case::change::Change;
use secintake::case::{Case, Status};
use secintake::config::Config;
use secintake::pipeline::Pipeline;
use secintake::store::{Batch, MailKind};
use secintake::triage::{Field, Flag};

/// A pipeline on a fresh store with `policy_extra` added to `[policy]`.
fn pipeline(dir: &std::path::Path, policy_extra: &str) -> Pipeline {
    support::offline_pipeline(dir, "Desk", policy_extra, "")
}

fn t0() -> DateTime<Utc> {
    // After the test keys were made: signatures need a key valid at that time.
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

fn mail(from: &str, subject: &str, msgid: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: security@intake.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n{extra_headers}\r\n{}",
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

fn case(p: &Pipeline, id: &str) -> Case {
    p.store.case(id).unwrap().unwrap()
}

fn missing(c: &Case) -> Vec<Field> {
    c.completeness.as_ref().expect("new cases carry completeness").missing.clone()
}

fn out_of_kind(p: &Pipeline, kind: MailKind) -> Vec<secintake::store::OutMail> {
    p.store.outbox().unwrap().into_iter().filter(|o| o.kind == kind).collect()
}

fn raw_of(p: &Pipeline, o: &secintake::store::OutMail) -> String {
    String::from_utf8_lossy(&p.store.out_raw(&o.id).unwrap().unwrap()).into_owned()
}

const COMPLETE: &str = "## Summary\n\
The `name` parameter of /api/search is copied into the SQL query without escaping.\n\n\
## Affected versions\n\
secintake-demo 2.3.0 up to and including 2.3.4 (tested on 2.3.4).\n\n\
## Steps to reproduce\n\
1. Start the server with the default configuration.\n\
2. Send: curl 'http://localhost:8080/api/search?name=x%27%20OR%201=1--'\n\
3. Every user record is returned instead of none.\n\n\
## Impact\n\
An unauthenticated attacker can read the whole users table.\n";

const ONE_LINER: &str = "Hi, I found XSS on your site. Please fix.\n";

#[test]
fn a_complete_report_is_not_asked_for_anything_and_gets_no_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "");
    let t = t0();
    let id = p.ingest(&mail("alice@reporter.test", "SQLi in search", "c-1@r.test", "", COMPLETE), None, t, t).unwrap();
    let c = case(&p, &id.case_id.unwrap());
    assert_eq!(missing(&c), Vec::<Field>::new(), "{:?}", c.completeness);
    assert!(c.flags.is_empty(), "a complete, well-formed report got flags: {:?}", c.flag_evidence);
    assert_eq!(c.completeness.as_ref().unwrap().asked_at, None, "nothing to ask");
    let ack = &out_of_kind(&p, MailKind::Ack)[0];
    assert!(!raw_of(&p, ack).contains("does not yet include"));
}

#[test]
fn a_one_liner_is_asked_once_in_its_ack_for_steps_and_versions_by_name_only() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "");
    let t = t0();
    let id = p.ingest(&mail("bob@reporter.test", "XSS", "o-1@r.test", "", ONE_LINER), None, t, t).unwrap();
    let c = case(&p, id.case_id.as_ref().unwrap());
    assert_eq!(missing(&c), vec![Field::Steps, Field::Versions]);
    assert_eq!(c.completeness.as_ref().unwrap().asked_at, Some(t), "the ack is the request");
    assert_eq!(c.completeness.as_ref().unwrap().closes_at, None, "close_incomplete_after is absent by default");
    assert!(c.flags.contains(&Flag::NoPoc), "{:?}", c.flag_evidence);
    // The unencrypted ack names the missing fields in plain words and carries no content.
    let ack = &out_of_kind(&p, MailKind::Ack)[0];
    assert!(!ack.encrypted);
    let raw = raw_of(&p, ack);
    assert!(raw.contains("steps to reproduce") && raw.contains("affected versions"), "{raw}");
    assert!(!raw.contains("XSS on your site"), "content in an unencrypted ack");
    // One request per case: the clock never sends a second one.
    for days in [1, 8, 30] {
        p.queue_reminders(t + Duration::days(days)).unwrap();
    }
    assert!(out_of_kind(&p, MailKind::NeedsInfo).is_empty());
    // The team sees what is missing first in its summary (encrypted).
    assert!(out_of_kind(&p, MailKind::Summary)[0].encrypted);
}

#[test]
fn the_reporter_completes_by_reply_and_a_third_party_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "");
    let t = t0();
    let id =
        p.ingest(&mail("bob@reporter.test", "XSS", "r-1@r.test", "", ONE_LINER), None, t, t).unwrap().case_id.unwrap();
    // A third party names the case and supplies the fields: nothing changes.
    let third = "Steps to reproduce:\n1. open /search?q=<script>alert(1)</script>\n2. see the alert\n\nAffected versions: 4.1.0 to 4.1.3\n";
    let o = p
        .ingest(&mail("mallory@else.test", &format!("Re: [{id}] XSS"), "r-2@else.test", "", third), None, t, t)
        .unwrap();
    assert_eq!(o.disposition.as_str(), "follow-up");
    assert_eq!(missing(&case(&p, &id)), vec![Field::Steps, Field::Versions], "a third party completed the report");
    assert!(out_of_kind(&p, MailKind::Completed).is_empty());
    // The reporter sends the same: complete, and the team is told once (encrypted).
    let later = t + Duration::hours(3);
    p.ingest(
        &mail("bob@reporter.test", &format!("Re: [{id}] Report received"), "r-3@r.test", "", third),
        None,
        later,
        later,
    )
    .unwrap();
    let c = case(&p, &id);
    assert_eq!(missing(&c), Vec::<Field>::new(), "{:?}", c.completeness);
    assert!(!c.flags.contains(&Flag::NoPoc), "steps arrived: no-poc no longer holds");
    let done = out_of_kind(&p, MailKind::Completed);
    assert_eq!(done.len(), 1);
    assert!(done[0].encrypted && done[0].to == vec!["team@team.test".to_string()]);
    assert!(raw_of(&p, &done[0]).contains(&format!("Subject: [{id}] Report completed\r\n")));
}

#[test]
fn an_unanswered_request_closes_the_case_and_a_reply_reopens_it() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "close_incomplete_after = \"14d\"");
    let t = t0();
    let id =
        p.ingest(&mail("bob@reporter.test", "XSS", "a-1@r.test", "", ONE_LINER), None, t, t).unwrap().case_id.unwrap();
    assert_eq!(case(&p, &id).completeness.unwrap().closes_at, Some(t + Duration::days(14)));
    p.queue_reminders(t + Duration::days(13)).unwrap();
    assert_eq!(case(&p, &id).status, Status::New, "not before its time");
    p.queue_reminders(t + Duration::days(14)).unwrap();
    let c = case(&p, &id);
    assert_eq!((c.status, c.reject_reason.as_deref()), (Status::Rejected, Some("incomplete")));
    assert!(p.store.log(&id).unwrap().iter().any(|e| e.detail.contains("reason=incomplete")));
    let notices = out_of_kind(&p, MailKind::ClosedIncomplete);
    assert_eq!(notices.len(), 1, "one notice");
    let raw = raw_of(&p, &notices[0]);
    assert!(raw.contains("reopen"), "the notice says how to reopen");
    p.queue_reminders(t + Duration::days(20)).unwrap();
    assert_eq!(out_of_kind(&p, MailKind::ClosedIncomplete).len(), 1, "never a second notice");
    // The reporter replies with the missing fields: reopened to triaged.
    let reply = "Steps to reproduce:\n1. open /search?q=<script>alert(1)</script>\n2. the alert fires\n\nAffected versions: 4.1.0 to 4.1.3\n";
    let at = t + Duration::days(21);
    p.ingest(
        &mail("bob@reporter.test", &format!("Re: [{id}] Report closed as incomplete"), "a-2@r.test", "", reply),
        None,
        at,
        at,
    )
    .unwrap();
    let c = case(&p, &id);
    assert_eq!((c.status, c.reject_reason.as_deref()), (Status::Triaged, None));
    assert!(missing(&c).is_empty());
}

#[test]
fn a_reply_without_the_fields_still_prevents_the_auto_close() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "close_incomplete_after = \"14d\"");
    let t = t0();
    let id =
        p.ingest(&mail("bob@reporter.test", "XSS", "b-1@r.test", "", ONE_LINER), None, t, t).unwrap().case_id.unwrap();
    let at = t + Duration::days(2);
    p.ingest(
        &mail(
            "bob@reporter.test",
            &format!("Re: [{id}] Report received"),
            "b-2@r.test",
            "",
            "I will send the steps next week.\n",
        ),
        None,
        at,
        at,
    )
    .unwrap();
    let c = case(&p, &id);
    assert_eq!(c.completeness.as_ref().unwrap().closes_at, None);
    p.queue_reminders(t + Duration::days(30)).unwrap();
    assert_ne!(case(&p, &id).status, Status::Rejected);
    assert!(out_of_kind(&p, MailKind::ClosedIncomplete).is_empty());
}

#[test]
fn case_ask_sends_one_threaded_request_and_restarts_the_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "close_incomplete_after = \"7d\"");
    let t = t0();
    let id = p
        .ingest(&mail("alice@reporter.test", "SQLi", "k-1@r.test", "", COMPLETE), None, t, t)
        .unwrap()
        .case_id
        .unwrap();
    let at = t + Duration::days(1);
    let mid = p.ask(&id, &[Field::Poc], Some("Could you attach the script you used?"), "carol", at).unwrap();
    let c = case(&p, &id);
    assert_eq!(missing(&c), vec![Field::Poc], "the team's field joins what is asked for");
    assert_eq!(c.completeness.as_ref().unwrap().asked_at, Some(at));
    assert_eq!(c.completeness.as_ref().unwrap().closes_at, Some(at + Duration::days(7)));
    let o = p.store.out(&mid).unwrap().unwrap();
    assert_eq!(o.kind, MailKind::NeedsInfo);
    let raw = raw_of(&p, &o);
    assert!(raw.contains("In-Reply-To: <k-1@r.test>"), "threaded: {raw}");
    assert!(raw.contains("a proof of concept") || raw.contains("proof of concept"), "{raw}");
    assert!(p.store.log(&id).unwrap().iter().any(|e| e.action == "ask" && e.who == "carol"));
    assert!(p.ask(&id, &[], None, "carol", at).is_ok(), "poc is still missing, so a bare ask has something to ask");
}

#[test]
fn claimed_cvss_stays_the_reporters_and_exports_ask_for_an_assessment() {
    use secintake::case::export::{Format, render};
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "");
    let t = t0();
    let body = format!("{COMPLETE}\nCVSS: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n");
    let id =
        p.ingest(&mail("alice@reporter.test", "SQLi", "v-1@r.test", "", &body), None, t, t).unwrap().case_id.unwrap();
    let mut c = case(&p, &id);
    let claimed = c.cvss_claimed.clone().expect("claim extracted");
    assert_eq!(claimed.score, 9.8);
    assert_eq!(c.cvss, Some(claimed.clone()), "cvss is the claim until assessed");
    assert!(c.cvss_assessed.is_none());
    let osv = render(Format::Osv, &c, "Desk", t).to_text();
    assert!(osv.contains("[TO FILL: assess CVSS]") && !osv.contains("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), "{osv}");
    let ch = Change::Cvss(secintake::case::change::cvss("CVSS:3.1/AV:N/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N").unwrap());
    ch.apply(&mut c, t).unwrap();
    assert_eq!(c.cvss_claimed, Some(claimed), "the claim never changes");
    assert_eq!(c.cvss, c.cvss_assessed);
    let osv = render(Format::Osv, &c, "Desk", t).to_text();
    assert!(osv.contains("AV:N/AC:H/PR:L") && !osv.contains("assess CVSS"), "{osv}");
    let summary = secintake::notify::summary_triage(&c);
    assert!(summary.contains("CVSS claimed") && summary.contains("CVSS assessed"), "{summary}");
}

/// The CRA clocks over a simulated week, through the one deadline rule and the SLA
/// clock's `now`.
#[test]
fn cra_clocks_run_from_awareness_and_each_filing_stops_its_own() {
    use secintake::case::cra::StageName;
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "");
    let t = t0();
    let body = format!("{COMPLETE}\nThis is being exploited in the wild: we saw it in our honeypot logs yesterday.\n");
    let id =
        p.ingest(&mail("alice@reporter.test", "SQLi", "x-1@r.test", "", &body), None, t, t).unwrap().case_id.unwrap();
    let c = case(&p, &id);
    assert!(c.flags.contains(&Flag::Exploited), "{:?}", c.flag_evidence);
    assert!(!c.cra.exploited, "a flag informs; the team confirms");
    assert!(
        raw_of(&p, &out_of_kind(&p, MailKind::Summary)[0]).contains(&format!("Subject: [{id}] URGENT: New report\r\n"))
    );
    let apply = |ch: Change, at: DateTime<Utc>| {
        let mut c = case(&p, &id);
        ch.apply(&mut c, at).unwrap();
        let mut b = Batch::default();
        b.put_case(&c);
        p.store.write(|tx| tx.commit(b)).unwrap();
    };
    // Confirmed two hours in; awareness defaults to the report's arrival (the reporter said so).
    apply(Change::Exploited { exploited: true, aware_at: None }, t + Duration::hours(2));
    let c = case(&p, &id);
    assert_eq!(c.cra.aware_at, Some(t));
    let clocks: Vec<&str> = c.deadlines().into_iter().map(|(k, _)| k).collect();
    assert!(clocks.contains(&"cra-early-warning") && clocks.contains(&"cra-notification"), "{clocks:?}");
    let reminded = |at: DateTime<Utc>| {
        p.queue_reminders(at).unwrap();
        p.store.reminders(&id).unwrap()
    };
    assert!(!reminded(t + Duration::hours(17)).iter().any(|k| k.starts_with("cra-")));
    assert!(reminded(t + Duration::hours(18)).contains(&"cra-early-warning-soon".to_string()));
    assert!(reminded(t + Duration::hours(24)).contains(&"cra-early-warning-overdue".to_string()));
    apply(Change::CraStage { stage: StageName::EarlyWarning, reference: "ENISA-EW-1".into() }, t + Duration::hours(25));
    let c = case(&p, &id);
    assert!(!c.deadlines().iter().any(|(k, _)| *k == "cra-early-warning"), "filed: no longer owed");
    apply(Change::CraStage { stage: StageName::Notification, reference: "ENISA-VN-1".into() }, t + Duration::hours(60));
    assert!(!reminded(t + Duration::hours(72)).contains(&"cra-notification-overdue".to_string()));
    // The fix on day 5 starts the final report's 14 days; none is owed before.
    assert_eq!(case(&p, &id).cra.final_report.due, None);
    apply(Change::Fixed(vec!["2.3.5".into()]), t + Duration::days(5));
    let c = case(&p, &id);
    assert_eq!(c.cra.final_report.due, Some(t + Duration::days(19)));
    assert!(reminded(t + Duration::days(7)).iter().all(|k| !k.starts_with("cra-final")));
    let text = render_cra(&c, t + Duration::days(7));
    assert!(
        text.contains("ENISA-EW-1") && text.contains("Fixed in Desk 2.3.5") && !text.contains("honeypot"),
        "{text}"
    );
}

fn render_cra(c: &Case, now: DateTime<Utc>) -> String {
    secintake::case::export::render(secintake::case::export::Format::Cra, c, "Desk", now).to_text()
}

#[test]
fn a_paused_program_still_acknowledges_says_so_and_counts_from_the_end_of_the_pause() {
    let tmp = tempfile::tempdir().unwrap();
    let t = t0();
    let until = (t + Duration::days(10)).date_naive();
    let p = pipeline(
        tmp.path(),
        &format!("paused_until = \"{until}\"\npause_reason = \"the maintainers are at a conference\""),
    );
    let id = p
        .ingest(&mail("alice@reporter.test", "SQLi", "p-1@r.test", "", COMPLETE), None, t, t)
        .unwrap()
        .case_id
        .unwrap();
    let c = case(&p, &id);
    let resume = until.and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert_eq!(c.due.update, resume + Duration::days(7));
    assert_eq!(c.due.disclosure, resume + Duration::days(90));
    assert_eq!(c.due.ack, t + Duration::days(1), "the ack is not paused");
    let raw = raw_of(&p, &out_of_kind(&p, MailKind::Ack)[0]);
    assert!(raw.contains("paused until") && raw.contains("conference"), "{raw}");
}

#[test]
fn config_names_an_unknown_required_field_and_the_allowed_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "[intake]\naddress = \"security@intake.test\"\n[policy]\nrequired = [\"description\", \"stpes\"]\n";
    let e = Config::parse(text, &tmp.path().join("x.toml")).unwrap_err().to_string();
    assert!(e.contains("policy.required") && e.contains("stpes") && e.contains("ai_use"), "{e}");
}

/// The flags through the pipeline on the labelled corpus's shapes: a nuclei and a ZAP
/// dump, a multi-issue report, a declared and an undeclared AI use under a policy that
/// requires the declaration, a dependency's flaw; none of them rejected or delayed.
#[test]
fn flags_on_scanner_dumps_several_issues_and_ai_declarations_reach_the_case() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "required = [\"description\", \"steps\", \"versions\", \"ai_use\"]");
    let t = t0();
    let fixture = |name: &str| std::fs::read_to_string(support::repo().join("fixtures/triage").join(name)).unwrap();
    let multi = "## Finding 1: Stored XSS in comments\nThe body is not escaped.\n\n\
        ## Finding 2: SQL injection in /api/export\nThe sort parameter reaches ORDER BY.\n\n\
        ## Finding 3: IDOR in /api/invoices/{id}\nAny user reads any invoice.\n";
    let dep = "The crash is in the bundled libyaml library (0.2.2), not in your parser code: \
        the upstream bug is CVE-2024-0000.\nSteps to reproduce:\n1. Run app --load crash.yaml\n2. Observe the abort\n";
    let cases = [
        (
            "60-nuclei-dump-intro.txt".to_string(),
            fixture("60-nuclei-dump-intro.txt"),
            vec![Flag::ScannerOutput, Flag::NoPoc, Flag::MultipleIssues, Flag::AiUndeclared],
        ),
        (
            "61-zap-alerts-text.txt".into(),
            fixture("61-zap-alerts-text.txt"),
            vec![Flag::ScannerOutput, Flag::NoPoc, Flag::MultipleIssues, Flag::AiUndeclared],
        ),
        ("multi".into(), multi.to_string(), vec![Flag::NoPoc, Flag::MultipleIssues, Flag::AiUndeclared]),
        ("17-akrites-ai-block-deser-cache.txt".into(), fixture("17-akrites-ai-block-deser-cache.txt"), vec![]),
        (
            "21-chatgpt-integration-token-leak.txt".into(),
            fixture("21-chatgpt-integration-token-leak.txt"),
            vec![Flag::AiUndeclared],
        ),
        ("dependency".into(), dep.to_string(), vec![Flag::ThirdParty, Flag::AiUndeclared]),
    ];
    for (i, (name, body, want)) in cases.iter().enumerate() {
        let id = p
            .ingest(
                &mail(&format!("eve{i}@reporter{i}.test"), "Report", &format!("f-{i}@r.test"), "", body),
                None,
                t,
                t,
            )
            .unwrap()
            .case_id
            .unwrap();
        let c = case(&p, &id);
        assert_eq!(&c.flags, want, "{name}: {:?}", c.flag_evidence);
        assert!(c.flags.iter().all(|f| c.flag_evidence.contains_key(f)), "{name}: a flag without evidence");
        assert_eq!(c.status, Status::New, "{name}: a flag never rejects");
        assert!(!out_of_kind(&p, MailKind::Ack).iter().all(|a| a.case_id.as_deref() != Some(&id)), "{name}: no ack");
    }
    let declared = p.store.cases().unwrap().into_iter().find(|c| c.flags.is_empty()).unwrap();
    let ai = declared.ai_use.unwrap();
    assert_eq!(ai.declared, Some(secintake::triage::AiDeclared::Used));
    assert!(ai.statement.unwrap().contains('\n'), "the two-line block is kept verbatim");
}
