//! `case export`, `case announce` and `case credits` through the built binary, against a
//! temporary state. Every export is checked by a maintained validator that a package
//! registry serves, installed by tests/lib/install-deps.sh (never a schema copied here):
//! CSAF by BSI's `@secvisogram/csaf-validator-lib` (npm: the strict schema and every
//! mandatory test), CVE records by `cvelib` (PyPI), OSV by the OSV project's schema as the
//! `osv` package (PyPI) ships it. Each validator is shown to reject broken exports, so a
//! pass is never vacuous. Without the validators these tests fail; they never skip.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;
use support::*;

/// Where tests/lib/install-deps.sh installs the validators.
fn validators() -> PathBuf {
    repo().join("tests/validators")
}

/// Runs the validator on `doc`: its exit code (0 valid, 1 invalid, 2 cannot validate) and
/// everything it printed.
fn validate(format: &str, doc: &[u8]) -> (i32, String) {
    if format == "csaf" {
        return validate_csaf(doc);
    }
    let dir = validators();
    let mut child = Command::new(dir.join(".venv/bin/python"))
        .arg(dir.join("validate.py"))
        .arg(format)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("running the {format} validator: {e}; run tests/lib/install-deps.sh (tests/run-all.sh does)")
        });
    child.stdin.take().unwrap().write_all(doc).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The CSAF validator answers one document per line; loading it takes seconds, so one
/// process (`node csaf.mjs --lines`) serves the whole test binary and ends with it (EOF).
fn validate_csaf(doc: &[u8]) -> (i32, String) {
    /// The process is kept (never waited for): it exits at EOF, when this binary does.
    type Server = (std::process::Child, std::process::ChildStdin, BufReader<std::process::ChildStdout>);
    static SERVER: OnceLock<Mutex<Server>> = OnceLock::new();
    let server = SERVER.get_or_init(|| {
        let mut child = Command::new("node")
            .arg(validators().join("csaf.mjs"))
            .arg("--lines")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "running node for the CSAF validator: {e}; run tests/lib/install-deps.sh (tests/run-all.sh does)"
                )
            });
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Mutex::new((child, stdin, stdout))
    });
    // One line per document: JSON re-serialised compactly; anything else sent as it is.
    let line = match serde_json::from_slice::<Value>(doc) {
        Ok(v) => serde_json::to_string(&v).unwrap(),
        Err(_) => String::from_utf8_lossy(doc).replace(['\r', '\n'], " "),
    };
    let mut guard = server.lock().unwrap_or_else(|e| e.into_inner());
    let (_, stdin, stdout) = &mut *guard;
    writeln!(stdin, "{line}").and_then(|_| stdin.flush()).expect("the CSAF validator stopped (see its stderr above)");
    let mut answer = String::new();
    stdout.read_line(&mut answer).unwrap();
    let v: Value =
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("the CSAF validator answered {answer:?}: {e}"));
    (v["code"].as_i64().unwrap_or(-1) as i32, v["text"].as_str().unwrap_or_default().to_owned())
}

fn assert_valid(format: &str, doc: &[u8]) {
    let (code, text) = validate(format, doc);
    assert_eq!(code, 0, "{format} export does not validate:\n{text}\n{}", String::from_utf8_lossy(doc));
}

/// `doc` changed by `f` must be rejected (exit 1, not 2) with `reason` in the output.
fn assert_rejected(format: &str, doc: &Value, reason: &str, f: impl FnOnce(&mut Value)) {
    let mut broken = doc.clone();
    f(&mut broken);
    let (code, text) = validate(format, &serde_json::to_vec(&broken).unwrap());
    assert_eq!(code, 1, "{format}: a broken export must be rejected:\n{text}");
    assert!(text.contains(reason), "{format}: expected {reason:?} in:\n{text}");
}

/// One temporary deployment and its binary.
struct Env {
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempdir("export");
        let cfg = write_config(dir.path(), "");
        Env { dir, cfg }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(bin()).arg("--config").arg(&self.cfg).args(args).output().unwrap()
    }

    fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Ingests a plain report from `from` (display name and address) and returns the case id.
    fn report(&self, from: &str, subject: &str, body: &str, msgid: &str) -> String {
        let msg = self.dir.path().join(format!("{msgid}.eml"));
        let raw = format!(
            "From: {from}\r\nTo: security@intake.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n\
             Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            body.replace('\n', "\r\n")
        );
        std::fs::write(&msg, raw).unwrap();
        let out = self.run_ok(&["ingest", msg.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("case SEC-"), "{stdout}");
        stdout.split_whitespace().nth(1).unwrap().to_owned()
    }

    /// `case export ID --format F`, parsed; the raw bytes too.
    fn export(&self, id: &str, format: &str) -> (Value, Vec<u8>) {
        let out = self.run_ok(&["case", "export", id, "--format", format]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{format}: {e}"));
        (v, out.stdout)
    }

    /// Exports in every format, validates each, and returns them (osv, cve5, csaf).
    fn export_all_valid(&self, id: &str) -> [(Value, Vec<u8>); 3] {
        ["osv", "cve5", "csaf"].map(|f| {
            let (v, raw) = self.export(id, f);
            assert_valid(f, &raw);
            (v, raw)
        })
    }
}

#[test]
fn validators_reject_broken_exports() {
    // Real exports, valid as they are, then broken in ways each validator must catch: a
    // missing required field (OSV, CVE), a score out of range (the CSAF schema) and a
    // product id that is never defined (CSAF mandatory test 6.1.1, beyond any schema).
    let env = Env::new();
    let id = env.report("Bob <bob@reporter.test>", "XSS in search", "Reflected.\n", "broken@reporter.test");
    env.run_ok(&[
        "case",
        "set",
        &id,
        "--cvss",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "--cwe",
        "CWE-79",
        "--affected",
        "1.0",
        "--cve",
        "CVE-2026-12345",
    ]);
    let [(osv, _), (cve, _), (csaf, _)] = env.export_all_valid(&id);

    assert_rejected("osv", &osv, "'modified' is a required property", |d| {
        d.as_object_mut().unwrap().remove("modified");
    });
    assert_rejected("cve5", &cve, "'references' is a required property", |d| {
        d["containers"]["cna"].as_object_mut().unwrap().remove("references");
    });
    assert_rejected("csaf", &csaf, "must be <= 10", |d| {
        d["vulnerabilities"][0]["scores"][0]["cvss_v3"]["baseScore"] = serde_json::json!(11.0);
    });
    assert_rejected("csaf", &csaf, "mandatoryTest_6_1_1", |d| {
        d["vulnerabilities"][0]["product_status"]["known_affected"] = serde_json::json!(["CSAFPID-UNDEFINED"]);
    });
    // Not JSON at all is "cannot validate" (2), never "valid" nor merely "invalid".
    for format in ["osv", "cve5", "csaf"] {
        let (code, text) = validate(format, b"not json");
        assert_eq!(code, 2, "{format}: {text}");
    }
}

#[test]
fn cvss31_case_exports_validate_in_all_formats() {
    let env = Env::new();
    let id = env.report(
        "Bob Reporter <bob@reporter.test>",
        "XSS in search",
        "The q parameter is reflected.\nSECRET-POC-7731\n",
        "x31@reporter.test",
    );
    env.run_ok(&[
        "case",
        "set",
        &id,
        "--cvss",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "--cwe",
        "CWE-79",
        "--affected",
        "1.0",
        "--credit",
        "Jane Doe",
        "--cve",
        "CVE-2026-12345",
        "--tlp",
        "amber+strict",
        "--fixed",
        "1.1",
    ]);
    let [(osv, osv_raw), (cve, cve_raw), (csaf, csaf_raw)] = env.export_all_valid(&id);

    assert_eq!(osv["id"], "CVE-2026-12345");
    assert_eq!(
        osv["severity"][0],
        serde_json::json!({"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"})
    );
    assert_eq!(osv["affected"][0]["versions"], serde_json::json!(["1.0"]));
    assert_eq!(osv["credits"][0]["name"], "Jane Doe");
    assert_eq!(osv["summary"], "XSS in search");

    assert_eq!(cve["cveMetadata"]["cveId"], "CVE-2026-12345");
    let cna = &cve["containers"]["cna"];
    assert_eq!(cna["metrics"][0]["cvssV3_1"]["baseScore"], 9.8);
    assert_eq!(cna["metrics"][0]["cvssV3_1"]["baseSeverity"], "CRITICAL");
    assert_eq!(cna["problemTypes"][0]["descriptions"][0]["cweId"], "CWE-79");
    assert_eq!(cna["affected"][0]["vendor"], "Demo");
    assert_eq!(cna["credits"][0]["value"], "Jane Doe");

    assert_eq!(csaf["document"]["tracking"]["status"], "draft");
    assert_eq!(csaf["document"]["tracking"]["id"], id.as_str());
    assert_eq!(csaf["document"]["distribution"]["tlp"]["label"], "AMBER");
    assert_eq!(csaf["vulnerabilities"][0]["cve"], "CVE-2026-12345");
    assert_eq!(csaf["vulnerabilities"][0]["scores"][0]["cvss_v3"]["version"], "3.1");
    assert_eq!(csaf["vulnerabilities"][0]["acknowledgments"][0]["names"][0], "Jane Doe");

    // A draft for publication: never the reporter's words, address or From name.
    for raw in [&osv_raw, &cve_raw, &csaf_raw] {
        let s = String::from_utf8_lossy(raw);
        for secret in ["SECRET-POC-7731", "reflected", "bob@reporter.test", "Bob Reporter"] {
            assert!(!s.contains(secret), "{secret} in an export:\n{s}");
        }
    }

    // --out writes the same document, owner-only.
    let file = env.dir.path().join("draft.osv.json");
    let out = env.run_ok(&["case", "export", &id, "--format", "osv", "--out", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("draft written to"));
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["id"], "CVE-2026-12345");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    // Refusals: an unknown format (clap) and an unknown case, both exit 2.
    assert_eq!(env.run(&["case", "export", &id, "--format", "cvrf"]).status.code(), Some(2));
    assert_eq!(env.run(&["case", "export", "SEC-1999-0001", "--format", "osv"]).status.code(), Some(2));
}

#[test]
fn cvss40_case_exports_validate_in_all_formats() {
    let env = Env::new();
    let id = env.report("Bob <bob@reporter.test>", "RCE in upload", "Upload a .py and it runs.\n", "x40@reporter.test");
    env.run_ok(&[
        "case",
        "set",
        &id,
        "--cvss",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "--cwe",
        "CWE-434",
        "--cwe",
        "CWE-94",
        "--affected",
        "2.0",
        "--affected",
        "2.1",
        "--credit",
        "Jane Doe",
        "--cve",
        "CVE-2026-4242",
        "--tlp",
        "clear",
    ]);
    let [(osv, _), (cve, _), (csaf, _)] = env.export_all_valid(&id);
    assert_eq!(osv["severity"][0]["type"], "CVSS_V4");
    let v4 = &cve["containers"]["cna"]["metrics"][0]["cvssV4_0"];
    assert_eq!(v4["version"], "4.0");
    assert_eq!(v4["baseSeverity"], "CRITICAL");
    // CSAF 2.0 cannot score 4.0: no score, the vector in a note instead.
    assert!(csaf["vulnerabilities"][0].get("scores").is_none());
    let notes = csaf["vulnerabilities"][0]["notes"].to_string();
    assert!(notes.contains("CVSS:4.0/AV:N"), "{notes}");
    assert_eq!(csaf["document"]["distribution"]["tlp"]["label"], "WHITE");
    assert_eq!(csaf["product_tree"]["full_product_names"].as_array().unwrap().len(), 2);
}

#[test]
fn case_without_cve_or_triage_still_validates_with_placeholders() {
    let env = Env::new();
    let id = env.report("Bob <bob@reporter.test>", "Something is wrong", "Details inside.\n", "bare@reporter.test");
    let [(osv, _), (cve, _), (csaf, _)] = env.export_all_valid(&id);
    assert_eq!(osv["id"], format!("x_secintake-{id}"));
    assert!(osv.get("severity").is_none() && osv.get("credits").is_none());
    assert_eq!(cve["cveMetadata"]["cveId"], "CVE-0000-0000");
    assert_eq!(cve["cveMetadata"]["assignerOrgId"], "00000000-0000-4000-8000-000000000000");
    assert_eq!(cve["containers"]["cna"]["references"][0]["url"], format!("https://example.invalid/security/{id}"));
    assert_eq!(cve["containers"]["cna"]["affected"][0]["defaultStatus"], "unknown");
    assert!(csaf["vulnerabilities"][0].get("cve").is_none());
    assert!(csaf["document"].get("distribution").is_none());

    // The same with a CVE but still no score: the other placeholder path.
    env.run_ok(&["case", "set", &id, "--cve", "CVE-2026-99999", "--cwe", "CWE-1333"]);
    let [(osv, _), (cve, _), (csaf, _)] = env.export_all_valid(&id);
    assert_eq!(osv["id"], "CVE-2026-99999");
    assert_eq!(cve["cveMetadata"]["cveId"], "CVE-2026-99999");
    // No name known for CWE-1333: no `cwe` (CSAF 6.1.11 wants the catalogue's name), a note.
    assert!(csaf["vulnerabilities"][0].get("cwe").is_none(), "{}", csaf["vulnerabilities"][0]);
    let notes = csaf["vulnerabilities"][0]["notes"].to_string();
    assert!(notes.contains("CWE-1333: [TO FILL:"), "{notes}");
}

#[test]
fn anonymous_reporter_is_never_named() {
    let env = Env::new();
    let id = env.report(
        "Zed Quuxley <zed.private@reporter.test>",
        "Auth bypass",
        "Full Name (for credits): Zed Quuxley\nSend an empty token.\n",
        "anon@reporter.test",
    );
    // A name given first, then anonymity asked for: the name must go too.
    env.run_ok(&[
        "case",
        "set",
        &id,
        "--credit",
        "Jane Doe",
        "--cve",
        "CVE-2026-20001",
        "--cvss",
        "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
    ]);
    env.run_ok(&["case", "set", &id, "--anonymous"]);
    let exports = env.export_all_valid(&id);
    let announce = env.run_ok(&["case", "announce", &id, "--force"]);
    let announce = String::from_utf8_lossy(&announce.stdout).into_owned();
    assert!(announce.contains("Thanks to an anonymous reporter"), "{announce}");
    env.run_ok(&["case", "set", &id, "--disclosure", "2026-01-15"]);
    for status in ["triaged", "accepted", "disclosed"] {
        env.run_ok(&["case", "set", &id, "--status", status]);
    }
    let credits = String::from_utf8_lossy(&env.run_ok(&["case", "credits"]).stdout).into_owned();
    assert!(
        credits.contains("Thanks to an anonymous reporter for reporting Auth bypass (CVE-2026-20001)."),
        "{credits}"
    );

    let mut all = announce.clone();
    all.push_str(&credits);
    for (_, raw) in &exports {
        all.push_str(&String::from_utf8_lossy(raw));
    }
    for secret in ["Zed", "Quuxley", "zed.private", "Jane"] {
        assert!(!all.contains(secret), "{secret} named:\n{all}");
    }
}

#[test]
fn announce_refuses_under_embargo_unless_forced_and_credits_follow_disclosure() {
    let env = Env::new();
    let id = env.report("Bob <bob@reporter.test>", "SQL injection in login", "' OR 1=1 --\n", "emb@reporter.test");
    env.run_ok(&[
        "case",
        "set",
        &id,
        "--cvss",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "--cwe",
        "CWE-89",
        "--affected",
        "3.0",
        "--fixed",
        "3.0.1",
        "--credit",
        "Jane Doe",
        "--cve",
        "CVE-2026-31337",
    ]);
    // Received now, so the policy's 90 days have not passed: embargoed.
    let refused = env.run(&["case", "announce", &id]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("embargo") && err.contains("--force"), "{err}");
    assert!(refused.stdout.is_empty());

    let forced = env.run_ok(&["case", "announce", &id, "--force"]);
    let text = String::from_utf8_lossy(&forced.stdout);
    for part in [
        "Security release of Demo 3.0.1",
        "CVE-2026-31337 (CVSS 3.1 score 9.8, critical): SQL injection in login",
        "**Am I vulnerable?**",
        "Affected versions: 3.0.",
        "**How do I mitigate the vulnerability?**",
        "**How do I upgrade?**",
        "CWE-89",
        "[TO FILL:",
        "Thanks to Jane Doe for reporting this issue.",
    ] {
        assert!(text.contains(part), "{part:?} missing:\n{text}");
    }
    assert!(!text.contains("OR 1=1"), "the reporter's text is never announced:\n{text}");

    // Nothing disclosed yet: no credit lines.
    assert!(env.run_ok(&["case", "credits"]).stdout.is_empty());
    // Once the disclosure date has passed, no --force is needed.
    env.run_ok(&["case", "set", &id, "--disclosure", "2026-01-15"]);
    assert!(env.run_ok(&["case", "announce", &id]).status.success());
    for status in ["triaged", "accepted", "disclosed"] {
        env.run_ok(&["case", "set", &id, "--status", status]);
    }
    let credits =
        String::from_utf8_lossy(&env.run_ok(&["case", "credits", "--since", "2026-01-01"]).stdout).into_owned();
    assert_eq!(credits, "Thanks to Jane Doe for reporting SQL injection in login (CVE-2026-31337).\n");
    assert!(env.run_ok(&["case", "credits", "--since", "2026-02-01"]).stdout.is_empty());
    assert_eq!(env.run(&["case", "credits", "--since", "January"]).status.code(), Some(2));
}

/// CVE record format 5.2.0: the case's project is vendor and product, its `purl` the
/// product's `packageURL` (without a version, as 5.2 requires), and the record passes
/// cvelib's schema; a case of a project without `purl` has none.
#[test]
fn cve_record_5_2_carries_the_projects_package_url() {
    let dir = tempdir("export-purl");
    let cfg = write_config(dir.path(), "");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        "\n[[projects]]\nname = \"numlib\"\naddresses = [\"security@numlib.test\"]\ncase_prefix = \"NUM\"\n\
         purl = \"pkg:pypi/numlib\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let env = Env { dir, cfg };
    let msg = env.dir.path().join("n.eml");
    std::fs::write(
        &msg,
        "From: Bob <bob@reporter.test>\r\nTo: security@numlib.test\r\nSubject: Overflow in numlib\r\n\
         Message-ID: <purl@reporter.test>\r\nContent-Type: text/plain\r\n\r\nAffected versions: 1.2.0\r\n",
    )
    .unwrap();
    let out = env.run_ok(&["ingest", msg.to_str().unwrap()]);
    let id = String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_owned();
    assert!(id.starts_with("NUM-"), "{id}");
    let [(osv, _), (cve, _), (csaf, _)] = env.export_all_valid(&id);
    assert_eq!(cve["dataVersion"], "5.2.0");
    let product = &cve["containers"]["cna"]["affected"][0];
    assert_eq!((product["vendor"].as_str(), product["product"].as_str()), (Some("numlib"), Some("numlib")));
    assert_eq!(product["packageURL"], "pkg:pypi/numlib");
    // The validator checks it: a version, or no package URL at all, is rejected.
    assert_rejected("cve5", &cve, "carries a version", |d| {
        d["containers"]["cna"]["affected"][0]["packageURL"] = "pkg:pypi/numlib@1.2.0".into()
    });
    assert_rejected("cve5", &cve, "not a package URL", |d| {
        d["containers"]["cna"]["affected"][0]["packageURL"] = "numlib".into()
    });
    assert_eq!(osv["affected"][0]["database_specific"]["project"], "numlib");
    assert!(csaf["product_tree"].to_string().contains("numlib"), "{}", csaf["product_tree"]);
    // The default project has no purl: no packageURL, still valid.
    let other = env.report("Bob <bob@reporter.test>", "Bug", "Details.\n", "nopurl@reporter.test");
    let [_, (cve, _), _] = env.export_all_valid(&other);
    assert!(cve["containers"]["cna"]["affected"][0].get("packageURL").is_none());
    assert_eq!(cve["containers"]["cna"]["affected"][0]["vendor"], "Demo");
}
