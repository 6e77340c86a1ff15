//! Credit by receipt time through the built binary (issue 22 part 2): three reporters of
//! one vulnerability, linked by the team in the wrong order; the first one to write gets
//! the credit, the others are "also reported by" unless they asked for anonymity, in
//! `case credits`, the announcement, CSAF `acknowledgments` and CVE `credits`.

mod support;

use std::process::Command;

use support::*;

#[test]
fn a_chain_of_three_reporters_linked_in_the_wrong_order_credits_the_first() {
    let d = tempdir("credit");
    let cfg = write_config(d.path(), "");
    let run = |args: &[&str]| Command::new(bin()).arg("--config").arg(&cfg).args(args).output().unwrap();
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let body = |credit: &str| {
        format!(
            "The upload handler at /api/upload writes the file name unchecked. CWE-22\nAffected versions: 2.0\n{credit}\n"
        )
    };
    let mut ids = Vec::new();
    for (who, credit) in
        [("alice", "Credit: Alice Archer"), ("bob", "Credit: Bob Baker"), ("carol", "Credit: anonymous")]
    {
        let f = d.path().join(format!("{who}.eml"));
        let msg = plain_report(
            &format!("{who}@reporter.test"),
            "Path traversal in upload",
            &body(credit),
            &format!("{who}@r.test"),
        );
        std::fs::write(&f, msg).unwrap();
        let out = ok(&["ingest", f.to_str().unwrap()]);
        ids.push(
            out.split_whitespace()
                .find(|w| w.starts_with("SEC-"))
                .unwrap()
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_owned(),
        );
        // Receipt times are kept to the second: one apart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let show = |id: &str| -> serde_json::Value {
        serde_json::from_slice(&run(&["case", "show", id, "--json"]).stdout).unwrap()
    };

    // The team first takes Carol's for the original: Alice's came first, the CLI says so.
    let out = run(&["case", "set", a, "--status", "rejected", "--reason", "duplicate", "--duplicate-of", c]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("before") && err.contains("--swap") && err.contains("--force"), "{err}");
    assert_eq!(show(a)["status"], "new", "nothing changed");

    // --swap: Carol's becomes the duplicate of Alice's.
    ok(&["case", "set", a, "--status", "rejected", "--reason", "duplicate", "--duplicate-of", c, "--swap"]);
    assert_eq!(show(c)["status"], "rejected");
    assert_eq!(show(c)["reject_reason"], format!("duplicate:{a}"));
    assert_eq!(show(a)["status"], "new");
    // Bob's is marked a duplicate of Carol's, itself a duplicate: the chain's root, Alice's.
    ok(&["case", "set", b, "--status", "rejected", "--reason", "duplicate", "--duplicate-of", c]);
    assert_eq!(show(b)["reject_reason"], format!("duplicate:{a}"));
    let also = show(a)["also_reported_by"].clone();
    let order: Vec<&str> = also.as_array().unwrap().iter().map(|x| x["case"].as_str().unwrap()).collect();
    assert_eq!(order, vec![b.as_str(), c.as_str()], "in order of receipt: {also:#}");
    assert_eq!(also[0]["reporter"], "bob@reporter.test");
    assert!(also[0]["received_at"].as_str().unwrap() < also[1]["received_at"].as_str().unwrap());
    // A loop is refused.
    let out = run(&["case", "set", a, "--status", "rejected", "--reason", "duplicate", "--duplicate-of", b, "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));

    // Disclosed: credit to Alice, also Bob, never the anonymous Carol.
    for s in ["triaged", "accepted", "disclosed"] {
        ok(&["case", "set", a, "--status", s]);
    }
    ok(&["case", "set", a, "--cve", "CVE-2026-12345"]);
    let credits: Vec<String> = serde_json::from_str(&ok(&["case", "credits", "--json"])).unwrap();
    assert_eq!(credits.len(), 1, "{credits:?}");
    assert!(credits[0].starts_with("Thanks to Alice Archer for reporting"), "{credits:?}");
    assert!(credits[0].ends_with("Also reported by Bob Baker."), "{credits:?}");
    assert!(!credits[0].contains("carol") && !credits[0].contains("anonymous"), "{credits:?}");
    let announce = ok(&["case", "announce", a]);
    assert!(
        announce.contains("Thanks to Alice Archer for reporting this issue. Also reported by Bob Baker."),
        "{announce}"
    );
    let csaf: serde_json::Value = serde_json::from_str(&ok(&["case", "export", a, "--format", "csaf"])).unwrap();
    let acks = &csaf["vulnerabilities"][0]["acknowledgments"];
    assert_eq!(acks[0]["names"][0], "Alice Archer", "{acks:#}");
    assert_eq!(acks[1]["names"], serde_json::json!(["Bob Baker"]), "{acks:#}");
    let cve: serde_json::Value = serde_json::from_str(&ok(&["case", "export", a, "--format", "cve5"])).unwrap();
    let cr = &cve["containers"]["cna"]["credits"];
    assert_eq!(cr.as_array().unwrap().len(), 2, "{cr:#}");
    assert_eq!(cr[0]["value"], "Alice Archer");
    assert_eq!(cr[1]["value"], "Bob Baker");
    assert_eq!(cr[1]["type"], "reporter");

    // Reopening Bob's case takes him off Alice's list.
    ok(&["case", "set", b, "--status", "triaged"]);
    let also = show(a)["also_reported_by"].clone();
    assert_eq!(also.as_array().unwrap().len(), 1, "{also:#}");
    assert_eq!(also[0]["case"], c.as_str());
}
