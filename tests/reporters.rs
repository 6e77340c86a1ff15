//! Reporters and blocks through the real pipeline with the clock injected (issue 22 part
//! 3): a blocked address's reports across a block period are recorded (rejected,
//! `blocked`, flag `blocked-reporter`), never acknowledged or summarised, get one signed
//! notice per period with the policy URL, and one line each in the next daily digest;
//! after the period, reports are cases as before; a second block is a second period;
//! `[triage] block_notice = false` sends no notice; blocks go to the audit log; the team
//! can take a blocked report after all.

mod support;

use chrono::{DateTime, Duration, Utc};
use secintake::case::Status;
use secintake::case::change::Change;
use secintake::pipeline::{Pipeline, reporters};
use secintake::store::{Batch, MailKind};
use secintake::triage::Flag;

fn pipeline(dir: &std::path::Path, extra: &str) -> Pipeline {
    support::offline_pipeline(dir, "Rep", "url = \"https://example.org/security-policy\"", extra)
}

fn mail(from: &str, n: usize) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: security@intake.test\r\nSubject: Critical bug {n}\r\nMessage-ID: <m{n}@x.test>\r\n\r\nThe parser at /api/p{n} crashes on long input number {n}.\r\n"
    )
    .into_bytes()
}

fn kinds(p: &Pipeline, case: &str) -> Vec<MailKind> {
    p.store.outbox().unwrap().into_iter().filter(|o| o.case_id.as_deref() == Some(case)).map(|o| o.kind).collect()
}

fn count(p: &Pipeline, kind: MailKind) -> usize {
    p.store.outbox().unwrap().into_iter().filter(|o| o.kind == kind).count()
}

#[test]
fn a_blocked_reporter_across_block_periods() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "");
    let t0 = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let spam = "slop@spam.test";
    reporters::block(&p.store, spam, "twelve invalid AI reports", Some(t0 + Duration::days(10)), "alice", t0).unwrap();

    // In the period: recorded, rejected as blocked, flagged; one notice, no ack, no summary.
    let mut blocked = Vec::new();
    for n in 1..=3 {
        let t = t0 + Duration::hours(n as i64);
        let id = p.ingest(&mail(spam, n), None, t, t).unwrap().case_id.expect("a case, nothing lost");
        let c = p.store.case(&id).unwrap().unwrap();
        assert_eq!(c.status, Status::Rejected);
        assert_eq!(c.reject_reason.as_deref(), Some("blocked"));
        assert!(c.flags.contains(&Flag::BlockedReporter), "{:?}", c.flags);
        assert!(c.flag_evidence[&Flag::BlockedReporter].contains("twelve invalid AI reports"));
        assert!(c.ack.is_none());
        let k = kinds(&p, &id);
        assert!(!k.contains(&MailKind::Summary) && !k.contains(&MailKind::Ack), "{k:?}");
        blocked.push(id);
    }
    assert_eq!(count(&p, MailKind::BlockNotice), 1, "one notice per block period");
    let notice = p.store.outbox().unwrap().into_iter().find(|o| o.kind == MailKind::BlockNotice).unwrap();
    assert_eq!(notice.to, vec![spam.to_owned()]);
    assert!(!notice.encrypted);
    let raw = String::from_utf8_lossy(&p.store.out_raw(&notice.id).unwrap().unwrap()).into_owned();
    assert!(raw.contains("https://example.org/security-policy"), "{raw}");
    assert!(raw.contains("multipart/signed"), "signed: {raw}");
    assert!(!raw.contains("Critical bug"), "nothing of the report in the clear notice");
    // Every message is in the mail records (`mail list`).
    for n in 1..=3 {
        assert!(p.store.mail(&format!("m{n}@x.test")).unwrap().is_some());
    }

    // The digest: once the day is over, one team mail for the day, once.
    assert_eq!(count(&p, MailKind::Digest), 0);
    p.queue_reminders(t0 + Duration::hours(4)).unwrap();
    let next_day = (t0 + Duration::days(1)).date_naive().and_hms_opt(0, 30, 0).unwrap().and_utc();
    p.queue_reminders(next_day).unwrap();
    p.queue_reminders(next_day + Duration::hours(1)).unwrap();
    let digests: Vec<_> = p.store.outbox().unwrap().into_iter().filter(|o| o.kind == MailKind::Digest).collect();
    let days: std::collections::BTreeSet<_> = (1..=3).map(|n| (t0 + Duration::hours(n)).date_naive()).collect();
    assert_eq!(digests.len(), days.len(), "one digest a day with blocked reports");
    assert!(digests.iter().all(|d| d.encrypted && d.to == vec!["team@team.test".to_owned()]));

    // After the period: a case as any other.
    let t = t0 + Duration::days(11);
    let id = p.ingest(&mail(spam, 4), None, t, t).unwrap().case_id.unwrap();
    let c = p.store.case(&id).unwrap().unwrap();
    assert_eq!(c.status, Status::New);
    assert!(!c.flags.contains(&Flag::BlockedReporter));
    assert!(kinds(&p, &id).contains(&MailKind::Summary));

    // A second block is a second period: one more notice.
    let t = t0 + Duration::days(12);
    reporters::block(&p.store, spam, "again", None, "bob", t).unwrap();
    for n in 5..=6 {
        let at = t + Duration::hours(n as i64);
        let id = p.ingest(&mail(spam, n), None, at, at).unwrap().case_id.unwrap();
        assert_eq!(p.store.case(&id).unwrap().unwrap().reject_reason.as_deref(), Some("blocked"));
    }
    assert_eq!(count(&p, MailKind::BlockNotice), 2);

    // Others are not affected.
    let id = p.ingest(&mail("good@researcher.test", 7), None, t, t).unwrap().case_id.unwrap();
    assert_eq!(p.store.case(&id).unwrap().unwrap().status, Status::New);

    // The audit log and unblocking.
    assert!(reporters::unblock(&p.store, spam, "appeal", "carol", t + Duration::days(1)).unwrap());
    assert!(!reporters::unblock(&p.store, spam, "twice", "carol", t + Duration::days(1)).unwrap());
    let log = p.store.block_log().unwrap();
    let actions: Vec<(&str, &str)> = log.iter().map(|e| (e.action.as_str(), e.who.as_str())).collect();
    assert_eq!(actions, vec![("block", "alice"), ("block", "bob"), ("unblock", "carol")]);

    // The history counts them; the team takes one after all.
    let h = reporters::histories(&p.store, t).unwrap().into_iter().find(|h| h.address == spam).unwrap();
    assert_eq!(h.counts.get("blocked"), Some(&5));
    assert_eq!(h.rejected, 5);
    let mut c = p.store.case_meta(&blocked[0]).unwrap().unwrap();
    Change::Status { to: Status::Triaged, reason: None }.apply(&mut c, t).unwrap();
    let mut b = Batch::default();
    b.put_case(&c);
    p.store.write(|tx| tx.commit(b)).unwrap();
    assert_eq!(p.store.case_meta(&blocked[0]).unwrap().unwrap().status, Status::Triaged);
}

#[test]
fn block_notice_false_sends_none() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "[triage]\nblock_notice = false\nduplicate_threshold = 0.7\n");
    assert_eq!(p.cfg.triage.duplicate_threshold, 0.7);
    let t0 = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    reporters::block(&p.store, "x@spam.test", "spam", None, "alice", t0).unwrap();
    let t = t0 + Duration::minutes(1);
    let id = p.ingest(&mail("x@spam.test", 1), None, t, t).unwrap().case_id.unwrap();
    assert_eq!(p.store.case(&id).unwrap().unwrap().reject_reason.as_deref(), Some("blocked"));
    assert_eq!(count(&p, MailKind::BlockNotice), 0);
    assert!(p.store.outbox().unwrap().is_empty(), "nothing at all goes out at once");
}
