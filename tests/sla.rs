//! SLA reminders with the time injected: each reminder is queued once, at its time,
//! encrypted to the team; a reply restarts the update clock.

mod support;

use chrono::{DateTime, Duration, Utc};
use secintake::pipeline::Pipeline;
use secintake::store::MailKind;

fn pipeline(dir: &std::path::Path) -> Pipeline {
    support::offline_pipeline(dir, "SLA", "", "")
}

fn reminders(p: &Pipeline) -> Vec<String> {
    p.store.outbox().unwrap().into_iter().filter(|o| o.kind == MailKind::Reminder).map(|o| o.id).collect()
}

#[test]
fn reminders_are_queued_once_at_the_right_times() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path());
    // After the test keys were made: signatures need a key valid at that time.
    let t0: DateTime<Utc> = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let raw = b"From: bob@reporter.test\r\nTo: security@intake.test\r\nSubject: Bug\r\nMessage-ID: <sla-1@reporter.test>\r\n\r\nA bug.\r\n";
    let out = p.ingest(raw, None, t0, t0).unwrap();
    let id = out.case_id.unwrap();

    assert_eq!(p.queue_reminders(t0 + Duration::hours(1)).unwrap(), 0);
    // One hour before the ack is due (no ack was delivered: SMTP never ran).
    assert_eq!(p.queue_reminders(t0 + Duration::hours(23)).unwrap(), 1);
    assert_eq!(p.queue_reminders(t0 + Duration::hours(23)).unwrap(), 0, "sent once");
    assert_eq!(p.queue_reminders(t0 + Duration::hours(23) + Duration::minutes(59)).unwrap(), 0);
    assert_eq!(p.queue_reminders(t0 + Duration::hours(24)).unwrap(), 1, "overdue");
    assert_eq!(reminders(&p).len(), 2);
    assert_eq!(p.store.reminders(&id).unwrap().len(), 2);

    // A reply restarts the update clock: its reminders come relative to the reply.
    let reply_at = t0 + Duration::days(2);
    p.reply(&id, "We reproduced it.", "alice", reply_at).unwrap();
    let c = p.store.case(&id).unwrap().unwrap();
    assert_eq!(c.due.update, reply_at + Duration::days(7));
    assert_eq!(p.queue_reminders(t0 + Duration::days(6)).unwrap(), 0, "old update date no longer counts");
    assert_eq!(p.queue_reminders(reply_at + Duration::days(6)).unwrap(), 1);
    assert!(p.store.reminders(&id).unwrap().contains(&"update-1d".to_string()));

    // A daemon down for weeks sends one mail for what piled up, not one per step.
    let before = reminders(&p).len();
    assert_eq!(p.queue_reminders(t0 + Duration::days(89)).unwrap(), 1);
    assert_eq!(reminders(&p).len(), before + 1);
    let sent = p.store.reminders(&id).unwrap();
    for k in ["disclosure-14d", "disclosure-7d", "disclosure-1d", "update-overdue"] {
        assert!(sent.contains(&k.to_string()), "{k} missing from {sent:?}");
    }
    assert_eq!(p.queue_reminders(t0 + Duration::days(90)).unwrap(), 1, "disclosure date itself");
    assert_eq!(p.queue_reminders(t0 + Duration::days(91)).unwrap(), 0);

    // Reminder mail is encrypted to the team, outer subject without the title.
    let o = p.store.outbox().unwrap().into_iter().find(|o| o.kind == MailKind::Reminder).unwrap();
    assert!(o.encrypted);
    assert_eq!(o.to, vec!["team@team.test".to_string()]);
    let raw = String::from_utf8(p.store.out_raw(&o.id).unwrap().unwrap()).unwrap();
    assert!(raw.contains(&format!("Subject: [{id}] SLA reminder\r\n")));
    assert!(!raw.contains("Bug"));
}

#[test]
fn tlp_amber_reply_refuses_to_go_unencrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path());
    let now = Utc::now();
    let raw = b"From: bob@reporter.test\r\nTo: security@intake.test\r\nSubject: Bug\r\nMessage-ID: <sla-2@reporter.test>\r\n\r\nTLP:AMBER\r\nA bug.\r\n";
    let id = p.ingest(raw, None, now, now).unwrap().case_id.unwrap();
    let e = p.reply(&id, "hello", "alice", now).unwrap_err();
    assert!(e.to_string().contains("unencrypted"), "{e}");
    assert!(p.store.outbox().unwrap().iter().all(|o| o.kind != MailKind::Reply));
}

#[test]
fn acks_are_rate_limited_per_address_and_what_is_held_back_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path());
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..7 {
        let raw = format!(
            "From: flood@reporter.test\r\nTo: security@intake.test\r\nSubject: Flood {i}\r\nMessage-ID: <flood-{i}@reporter.test>\r\n\r\nReport {i}.\r\n"
        );
        ids.push(p.ingest(raw.as_bytes(), None, now, now).unwrap().case_id.unwrap());
    }
    let acks = p.store.outbox().unwrap().into_iter().filter(|o| o.kind == MailKind::Ack).count();
    assert_eq!(acks, 5, "limits.acks_per_address_per_hour defaults to 5");
    let log = p.store.log(&ids[6]).unwrap();
    assert!(
        log.iter().any(|e| e.action == "ack-withheld" && e.detail.contains("acks_per_address_per_hour")),
        "{log:?}"
    );
    // Every report still became a case and briefed the team.
    assert_eq!(p.store.cases().unwrap().len(), 7);
    assert_eq!(p.store.outbox().unwrap().into_iter().filter(|o| o.kind == MailKind::Summary).count(), 7);
    // Held, not dropped: within the hour nothing changes; once the window opens, the
    // held acks go out (within the limit), each once.
    p.queue_reminders(now + chrono::Duration::minutes(30)).unwrap();
    assert_eq!(p.store.outbox().unwrap().into_iter().filter(|o| o.kind == MailKind::Ack).count(), 5);
    let later = now + chrono::Duration::minutes(61);
    p.queue_reminders(later).unwrap();
    p.queue_reminders(later).unwrap();
    let acks: Vec<_> = p.store.outbox().unwrap().into_iter().filter(|o| o.kind == MailKind::Ack).collect();
    assert_eq!(acks.len(), 7, "the two held acks are released once");
    assert!(acks.iter().any(|o| o.case_id.as_deref() == Some(ids[6].as_str())));
    assert!(p.store.log(&ids[6]).unwrap().iter().any(|e| e.action == "ack-released"));
}

/// A held ack whose window never opens before the ack falls due is recorded as given
/// up, once.
#[test]
fn held_ack_is_given_up_when_due() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path());
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..6 {
        let raw = format!(
            "From: flood@reporter.test\r\nTo: security@intake.test\r\nSubject: Flood {i}\r\nMessage-ID: <gu-{i}@reporter.test>\r\n\r\nReport {i}.\r\n"
        );
        ids.push(p.ingest(raw.as_bytes(), None, now, now).unwrap().case_id.unwrap());
    }
    let past_due = now + chrono::Duration::hours(25);
    p.queue_reminders(past_due).unwrap();
    p.queue_reminders(past_due).unwrap();
    let log = p.store.log(&ids[5]).unwrap();
    assert_eq!(log.iter().filter(|e| e.action == "ack-given-up").count(), 1, "{log:?}");
    assert_eq!(p.store.outbox().unwrap().into_iter().filter(|o| o.kind == MailKind::Ack).count(), 5);
}

#[test]
fn permanent_failures_are_reported_to_the_team_once() {
    use secintake::store::{Batch, OutStatus};
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path());
    let now = Utc::now();
    let raw = b"From: bob@reporter.test\r\nTo: security@intake.test\r\nSubject: Bug\r\nMessage-ID: <fail-1@reporter.test>\r\n\r\nA bug.\r\n";
    let id = p.ingest(raw, None, now, now).unwrap().case_id.unwrap();
    let mut ack = p.store.outbox().unwrap().into_iter().find(|o| o.kind == MailKind::Ack).unwrap();
    ack.status = OutStatus::Failed;
    ack.last_error = Some("550 5.1.1 user unknown".into());
    let mut b = Batch::default();
    b.put_out(&ack, None);
    p.store.write(|tx| tx.commit(b)).unwrap();
    assert_eq!(p.report_failures(now).unwrap(), 1);
    assert_eq!(p.report_failures(now).unwrap(), 0, "once");
    let reports: Vec<_> = p.store.outbox().unwrap().into_iter().filter(|o| o.kind == MailKind::Failure).collect();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].encrypted && reports[0].to == vec!["team@team.test".to_string()]);
    let raw = String::from_utf8(p.store.out_raw(&reports[0].id).unwrap().unwrap()).unwrap();
    assert!(raw.contains(&format!("Subject: [{id}] Mail delivery failed\r\n")));
}
