//! No content dropped silently, in any MIME position (issue 26 §1). Message trees of every
//! structured type the reader knows (signed, encrypted, signed inside encrypted, encrypted
//! inside signed, each around a plain, mixed, alternative or related body) are generated
//! with one extra leaf in every position of every multipart in them: before the first
//! part, between parts, after the last, and text in its preamble or epilogue. Each is
//! signed and encrypted with real GnuPG and read by `secintake ingest`; `case show --json`
//! must hold every leaf's marker text (case text, `messages[].text`) or file name
//! (`attachments[].name`), and the verdict and flags must cover only what they cover:
//! `good` only when everything kept is signed, `partial` when something kept lies outside
//! the signature, `bad` when the signature is not where RFC 3156 puts it; content outside
//! the encryption has `encrypted: false` and its text is marked unencrypted.

mod support;

use std::cell::Cell;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Gpg, bin, crlf, tempdir, write_config};

/// Where a piece of content stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cover {
    encrypted: bool,
    signed: bool,
}

/// What of a leaf must reach the case.
#[derive(Clone, Debug)]
enum Mark {
    /// Text found in the case text, or (a text part that MIME files as a resource, as
    /// in multipart/related) the part kept as an attachment of exactly these bytes.
    Text(String),
    /// An attachment of this name.
    Name(String),
    /// Nothing required (the HTML alternative of a text part: the same content).
    Unchecked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mixed,
    Alternative,
    Related,
    Signed,
    Encrypted,
}

impl Kind {
    fn content_type(self) -> &'static str {
        match self {
            Kind::Mixed => "multipart/mixed",
            Kind::Alternative => "multipart/alternative",
            Kind::Related => "multipart/related; type=\"text/html\"",
            Kind::Signed => "multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"",
            Kind::Encrypted => "multipart/encrypted; protocol=\"application/pgp-encrypted\"",
        }
    }
}

#[derive(Clone, Debug)]
enum Node {
    Leaf {
        head: String,
        body: String,
        mark: Mark,
    },
    Multi {
        kind: Kind,
        pre: String,
        kids: Vec<Node>,
        epi: String,
    },
    /// The first part of a multipart/signed: what its signature covers.
    Signed(Box<Node>),
    /// The signature over the `Signed` sibling.
    Sig,
    /// The RFC 3156 control part of a multipart/encrypted.
    Control,
    /// The encrypted part: `node` encrypted, and signed inside the OpenPGP message when
    /// `sign`.
    Cipher {
        node: Box<Node>,
        sign: bool,
    },
}

fn text(mark: &str) -> Node {
    Node::Leaf {
        head: "Content-Type: text/plain; charset=utf-8".into(),
        body: format!("Report text {mark} here."),
        mark: Mark::Text(mark.into()),
    }
}

fn html(mark: Option<&str>) -> Node {
    let m = mark.unwrap_or("alternative");
    Node::Leaf {
        head: "Content-Type: text/html; charset=utf-8".into(),
        body: format!("<p>Report html {m} here.</p>"),
        mark: mark.map(|m| Mark::Text(m.into())).unwrap_or(Mark::Unchecked),
    }
}

fn attachment(name: &str) -> Node {
    Node::Leaf {
        head: format!(
            "Content-Type: application/octet-stream; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\""
        ),
        body: format!("#!/bin/sh\r\necho {name}"),
        mark: Mark::Name(name.into()),
    }
}

fn png(name: &str) -> Node {
    Node::Leaf {
        head: format!(
            "Content-Type: image/png; name=\"{name}\"\r\nContent-ID: <pixel@reporter.test>\r\nContent-Transfer-Encoding: base64"
        ),
        body: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==".into(),
        mark: Mark::Name(name.into()),
    }
}

fn multi(kind: Kind, kids: Vec<Node>) -> Node {
    Node::Multi { kind, pre: String::new(), kids, epi: String::new() }
}

/// The bodies a report comes in.
fn bodies() -> Vec<(&'static str, Node)> {
    vec![
        ("text", text("BODYTEXT")),
        ("mixed", multi(Kind::Mixed, vec![text("BODYTEXT"), attachment("poc-body.txt")])),
        ("alternative", multi(Kind::Alternative, vec![text("BODYTEXT"), html(None)])),
        ("related", multi(Kind::Related, vec![html(Some("BODYHTML")), png("pixel-body.png")])),
    ]
}

fn signed(body: Node) -> Node {
    multi(Kind::Signed, vec![Node::Signed(Box::new(body)), Node::Sig])
}

fn encrypted(body: Node, sign: bool) -> Node {
    multi(Kind::Encrypted, vec![Node::Control, Node::Cipher { node: Box::new(body), sign }])
}

/// The envelopes around a body: (name, tree).
fn envelopes(body: Node) -> Vec<(&'static str, Node)> {
    vec![
        ("plain", body.clone()),
        ("signed", signed(body.clone())),
        ("encrypted", encrypted(body.clone(), true)),
        ("signed-in-encrypted", encrypted(signed(body.clone()), false)),
        ("encrypted-in-signed", signed(encrypted(body, false))),
    ]
}

/// Every multipart of `node`: its path (kid indices, through `Signed` and `Cipher`), its
/// kind, its number of kids and the coverage of what lies directly in it.
fn multiparts(node: &Node, path: &mut Vec<usize>, cover: Cover, out: &mut Vec<(Vec<usize>, Kind, usize, Cover)>) {
    match node {
        Node::Multi { kind, kids, .. } => {
            out.push((path.clone(), *kind, kids.len(), cover));
            for (i, k) in kids.iter().enumerate() {
                path.push(i);
                multiparts(k, path, cover, out);
                path.pop();
            }
        }
        Node::Signed(n) => multiparts(n, path, Cover { signed: true, ..cover }, out),
        Node::Cipher { node, sign } => {
            multiparts(node, path, Cover { encrypted: true, signed: cover.signed || *sign }, out)
        }
        _ => {}
    }
}

fn at<'a>(node: &'a mut Node, path: &[usize]) -> &'a mut Node {
    let node = match node {
        Node::Signed(n) => n.as_mut(),
        Node::Cipher { node, .. } => node.as_mut(),
        n => n,
    };
    match path.split_first() {
        None => node,
        Some((i, rest)) => match node {
            Node::Multi { kids, .. } => at(&mut kids[*i], rest),
            _ => unreachable!("path through a leaf"),
        },
    }
}

/// Whether the tree holds a signature (a multipart/signed, or one inside the encryption).
fn has_signature(node: &Node) -> bool {
    match node {
        Node::Multi { kids, .. } => kids.iter().any(has_signature),
        Node::Sig => true,
        Node::Signed(n) => has_signature(n),
        Node::Cipher { node, sign } => *sign || has_signature(node),
        _ => false,
    }
}

fn is_encrypted(node: &Node) -> bool {
    match node {
        Node::Multi { kids, .. } => kids.iter().any(is_encrypted),
        Node::Signed(n) => is_encrypted(n),
        Node::Cipher { .. } => true,
        _ => false,
    }
}

/// Every leaf's mark and coverage.
fn marks(node: &Node, cover: Cover, out: &mut Vec<(Mark, Cover)>) {
    match node {
        Node::Leaf { mark, .. } => out.push((mark.clone(), cover)),
        Node::Multi { kids, .. } => kids.iter().for_each(|k| marks(k, cover, out)),
        Node::Signed(n) => marks(n, Cover { signed: true, ..cover }, out),
        Node::Cipher { node, sign } => marks(node, Cover { encrypted: true, signed: cover.signed || *sign }, out),
        _ => {}
    }
}

/// A reporter (GnuPG, its cert in an Autocrypt header) and a secintake deployment.
struct World {
    dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
    alice: Gpg,
    autocrypt: String,
    boundary: Cell<usize>,
}

impl World {
    fn new() -> World {
        use base64::Engine;
        let dir = tempdir("positions");
        let cfg = write_config(dir.path(), "");
        let alice = Gpg::new("Alice Reporter <alice@reporter.test>");
        alice.import(&dir.path().join("keys/intake.pub.asc"));
        let kd = base64::engine::general_purpose::STANDARD.encode(alice.export_binary());
        let folded: Vec<&str> = kd.as_bytes().chunks(72).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let autocrypt = format!("Autocrypt: addr=alice@reporter.test; keydata=\r\n {}\r\n", folded.join("\r\n "));
        World { dir, cfg, alice, autocrypt, boundary: Cell::new(0) }
    }

    /// The MIME entity of `node` (headers, empty line, body; no final line break).
    fn render(&self, node: &Node) -> String {
        match node {
            Node::Leaf { head, body, .. } => format!("{head}\r\n\r\n{body}"),
            Node::Multi { kind, pre, kids, epi } => {
                self.boundary.set(self.boundary.get() + 1);
                let b = format!("=_b{}", self.boundary.get());
                let mut s = format!("Content-Type: {}; boundary=\"{b}\"\r\n\r\n", kind.content_type());
                if !pre.is_empty() {
                    s.push_str(pre);
                    s.push_str("\r\n");
                }
                let signed = kids.iter().find_map(|k| match k {
                    Node::Signed(n) => Some(self.render(n)),
                    _ => None,
                });
                for k in kids {
                    s.push_str(&format!("--{b}\r\n"));
                    match k {
                        Node::Signed(_) => s.push_str(signed.as_ref().unwrap()),
                        Node::Sig => {
                            // Without a signed sibling (it was taken out): a signature over
                            // what was there.
                            let data = signed.as_deref().unwrap_or("a part taken out");
                            let sig = self.alice.detach_sign(data.as_bytes());
                            s.push_str("Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n");
                            s.push_str("Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n");
                            s.push_str(&String::from_utf8(crlf(&sig)).unwrap());
                        }
                        k => s.push_str(&self.render(k)),
                    }
                    s.push_str("\r\n");
                }
                s.push_str(&format!("--{b}--\r\n"));
                if !epi.is_empty() {
                    s.push_str(epi);
                    s.push_str("\r\n");
                }
                s
            }
            Node::Control => "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n".into(),
            Node::Cipher { node, sign } => {
                let plain = self.render(node);
                let ct = if *sign {
                    self.alice.encrypt_sign(plain.as_bytes(), "security@intake.test")
                } else {
                    self.alice.encrypt_only(plain.as_bytes(), "security@intake.test")
                };
                format!(
                    "Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\nContent-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n{}",
                    String::from_utf8(crlf(&ct)).unwrap()
                )
            }
            Node::Signed(_) | Node::Sig => unreachable!("only inside a multipart"),
        }
    }

    fn message(&self, n: usize, root: &Node) -> Vec<u8> {
        let mut m = format!(
            "From: Alice Reporter <alice@reporter.test>\r\nTo: security@intake.test\r\nSubject: Report {n}\r\n\
             Message-ID: <positions-{n}@reporter.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        );
        m.push_str(&self.autocrypt);
        m.push_str(&self.render(root));
        m.push_str("\r\n");
        m.into_bytes()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin()).arg("--config").arg(&self.cfg).args(args).output().unwrap()
    }

    /// `secintake ingest` of `raw`, then `case show --json` of the case it opened (or
    /// what ingest said instead).
    fn try_ingest(&self, n: usize, raw: &[u8]) -> Result<Value, String> {
        let f = self.dir.path().join(format!("m{n}.eml"));
        std::fs::write(&f, raw).unwrap();
        let out = self.run(&["ingest", f.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "ingest: {}", String::from_utf8_lossy(&out.stderr));
        if !stdout.starts_with("case ") {
            return Err(stdout.trim().to_owned());
        }
        let id = stdout.split_whitespace().nth(1).unwrap().to_owned();
        let out = self.run(&["case", "show", &id, "--json"]);
        assert!(out.status.success(), "case show: {}", String::from_utf8_lossy(&out.stderr));
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    }

    fn ingest(&self, n: usize, raw: &[u8]) -> Value {
        self.try_ingest(n, raw).unwrap_or_else(|e| panic!("message {n} opened no case: {e}"))
    }
}

/// What the case must show for one generated message.
struct Expect {
    verdict: &'static str,
    /// The extra leaf, if any: its mark and coverage.
    extra: Option<(Mark, Cover)>,
    /// Every other leaf of the tree.
    leaves: Vec<(Mark, Cover)>,
    encrypted_message: bool,
    signed_message: bool,
}

/// The note line (`[...]`) the text at `pos` stands under, if any.
fn note_before(text: &str, pos: usize) -> Option<&str> {
    text[..pos].lines().rev().find(|l| l.starts_with('[') && l.ends_with(']'))
}

fn check(name: &str, c: &Value, e: &Expect, failures: &mut Vec<String>) {
    let mut fail = |what: String| failures.push(format!("{name}: {what}"));
    let text = c["text"].as_str().unwrap_or("");
    let message_text = c["messages"][0]["text"].as_str().unwrap_or("");
    let atts = c["attachments"].as_array().cloned().unwrap_or_default();
    if c["signature"] != e.verdict {
        fail(format!("verdict {} (want {})", c["signature"], e.verdict));
    }
    let bad = e.verdict == "bad";
    // A part put where RFC 3156 wants the signed part pushes the encrypted entity out
    // of it: kept as it came (not opened outside its place), with the verdict `bad`.
    let kept_encrypted = |cover: &Cover| {
        bad && cover.encrypted && atts.iter().any(|a| a["name"] == "encrypted.asc" && a["encrypted"] == false)
    };
    let mut all = e.leaves.clone();
    all.extend(e.extra.clone());
    for (i, (mark, cover)) in all.iter().enumerate() {
        let extra = e.extra.is_some() && i == all.len() - 1;
        match mark {
            Mark::Text(m) => {
                if !message_text.contains(m.as_str()) && text.contains(m.as_str()) {
                    fail(format!("{m} in the case text but not in messages[0].text"));
                }
                let Some(pos) = text.find(m.as_str()) else {
                    // A text part MIME files as a resource (a non-root part of a
                    // multipart/related) is kept as an attachment.
                    let want = secintake::mime::sha256_hex(format!("Report text {m} here.").as_bytes());
                    let want_html = secintake::mime::sha256_hex(format!("<p>Report html {m} here.</p>").as_bytes());
                    if !atts.iter().any(|a| a["sha256"] == want.as_str() || a["sha256"] == want_html.as_str())
                        && !kept_encrypted(cover)
                    {
                        fail(format!("text {m} dropped"));
                    }
                    continue;
                };
                if bad || !extra {
                    continue;
                }
                let note = note_before(text, pos).unwrap_or("");
                let says_unencrypted = note.contains("unencrypted");
                let says_unsigned = note.contains("unsigned");
                if says_unencrypted != (e.encrypted_message && !cover.encrypted) {
                    fail(format!("text {m} under note {note:?} (coverage {cover:?})"));
                }
                if says_unsigned != (e.signed_message && !cover.signed) {
                    fail(format!("text {m} under note {note:?} (coverage {cover:?})"));
                }
            }
            Mark::Name(n) => {
                let Some(a) = atts.iter().find(|a| a["name"] == n.as_str()) else {
                    if !kept_encrypted(cover) {
                        fail(format!("attachment {n} dropped"));
                    }
                    continue;
                };
                if bad || !extra {
                    continue;
                }
                if a["encrypted"] != cover.encrypted || a["signed"] != cover.signed {
                    fail(format!(
                        "attachment {n}: encrypted {} signed {} (coverage {cover:?})",
                        a["encrypted"], a["signed"]
                    ));
                }
            }
            Mark::Unchecked => {}
        }
    }
}

/// One line of what the case shows for a shape (`POSITIONS_TABLE=1` prints them all,
/// for the issue's closing note).
fn describe(c: &Value, e: &Expect) -> String {
    let text = c["text"].as_str().unwrap_or("");
    let atts = c["attachments"].as_array().cloned().unwrap_or_default();
    let extra = match &e.extra {
        None => "no extra part".to_owned(),
        Some((Mark::Text(m), _)) => match text.find(m.as_str()) {
            Some(pos) => format!("text kept {}", note_before(text, pos).unwrap_or("in the main text")),
            None => "text kept as an attachment".to_owned(),
        },
        Some((Mark::Name(n), _)) => match atts.iter().find(|a| a["name"] == n.as_str()) {
            Some(a) => format!("attachment kept, encrypted: {}, signed: {}", a["encrypted"], a["signed"]),
            None => "attachment not shown".to_owned(),
        },
        Some((Mark::Unchecked, _)) => String::new(),
    };
    let names: Vec<&str> = atts.iter().filter_map(|a| a["name"].as_str()).collect();
    format!("signature {}; {extra}; attachments {names:?}", c["signature"])
}

/// Builds every variant of every shape; returns (name, tree, expectation).
fn variants() -> Vec<(String, Node, Expect)> {
    let mut out = Vec::new();
    let n = Cell::new(0);
    for (body_name, body) in bodies() {
        for (env_name, tree) in envelopes(body) {
            let signed_message = has_signature(&tree);
            let encrypted_message = is_encrypted(&tree);
            let mut spots = Vec::new();
            multiparts(&tree, &mut Vec::new(), Cover::default(), &mut spots);
            let mut leaves = Vec::new();
            marks(&tree, Cover::default(), &mut leaves);
            for (path, kind, kids, cover) in spots {
                let verdict_at = |disrupts: bool| {
                    if disrupts {
                        "bad"
                    } else if !signed_message {
                        "none"
                    } else if cover.signed {
                        "good"
                    } else {
                        "partial"
                    }
                };
                if matches!(kind, Kind::Signed | Kind::Encrypted) {
                    // Fewer parts, and the two in the other order.
                    // Every base tree is signed throughout, or not at all.
                    let full = if signed_message { "good" } else { "none" };
                    let mut changed = |what: String, verdict: &'static str, edit: &dyn Fn(&mut Vec<Node>)| {
                        let mut t = tree.clone();
                        if let Node::Multi { kids, .. } = at(&mut t, &path) {
                            edit(kids);
                        }
                        let mut leaves = Vec::new();
                        marks(&t, Cover::default(), &mut leaves);
                        let name = format!("{env_name}({body_name}) {kind:?}@{path:?} {what}");
                        let expect = Expect { verdict, extra: None, leaves, encrypted_message, signed_message };
                        out.push((name, t, expect));
                    };
                    for i in 0..kids {
                        // Without its signature or its signed part, a multipart/signed
                        // is read as plain content (no other signature covers it in
                        // these trees); without its encrypted part, a multipart/encrypted
                        // holds nothing, which the signature around it may cover.
                        let verdict = match (kind, i) {
                            (Kind::Signed, _) => "none",
                            (_, 0) => full,
                            _ if cover.signed => "good",
                            _ => "none",
                        };
                        changed(format!("without part {i}"), verdict, &|kids| {
                            kids.remove(i);
                        });
                    }
                    // RFC 3156 order reversed: the signature fails; the encrypted part
                    // is found.
                    let verdict = if kind == Kind::Signed { "bad" } else { full };
                    changed("parts reversed".into(), verdict, &|kids| kids.reverse());
                }
                let mut add = |what: String, extra: Mark, disrupts: bool, edit: &dyn Fn(&mut Node)| {
                    n.set(n.get() + 1);
                    let mut t = tree.clone();
                    edit(at(&mut t, &path));
                    out.push((
                        format!("{env_name}({body_name}) {kind:?}@{path:?} {what}"),
                        t,
                        Expect {
                            verdict: verdict_at(disrupts),
                            extra: Some((extra, cover)),
                            leaves: leaves.clone(),
                            encrypted_message,
                            signed_message,
                        },
                    ));
                };
                for pos in 0..=kids {
                    // RFC 3156: the signed part first, the signature second. A part put
                    // before either is where they must be: the signature fails.
                    let disrupts = kind == Kind::Signed && pos <= 1;
                    let m = format!("XTEXT{:04}X", n.get() + 1);
                    add(format!("text at {pos}"), Mark::Text(m.clone()), disrupts, &|node| {
                        if let Node::Multi { kids, .. } = node {
                            kids.insert(pos, text(&m));
                        }
                    });
                    let f = format!("xfile{:04}.sh", n.get() + 1);
                    add(format!("attachment at {pos}"), Mark::Name(f.clone()), disrupts, &|node| {
                        if let Node::Multi { kids, .. } = node {
                            kids.insert(pos, attachment(&f));
                        }
                    });
                }
                let m = format!("XPRE{:04}X", n.get() + 1);
                add("preamble".into(), Mark::Text(m.clone()), false, &|node| {
                    if let Node::Multi { pre, .. } = node {
                        *pre = format!("Report text {m} here.");
                    }
                });
                let m = format!("XEPI{:04}X", n.get() + 1);
                add("epilogue".into(), Mark::Text(m.clone()), false, &|node| {
                    if let Node::Multi { epi, .. } = node {
                        *epi = format!("Report text {m} here.");
                    }
                });
            }
        }
    }
    out
}

/// Every generated shape through `secintake ingest`; one report of every failure.
#[test]
fn every_leaf_in_every_position_reaches_the_case() {
    let w = World::new();
    let all = variants();
    let mut failures = Vec::new();
    let start = std::time::Instant::now();
    for (i, (name, tree, expect)) in all.iter().enumerate() {
        let raw = w.message(i, tree);
        let before = failures.len();
        match w.try_ingest(i, &raw) {
            Ok(c) => {
                check(name, &c, expect, &mut failures);
                if std::env::var_os("POSITIONS_TABLE").is_some() {
                    eprintln!("{name}: {}", describe(&c, expect));
                }
            }
            Err(e) => failures.push(format!("{name}: no case: {e}")),
        }
        if failures.len() > before && std::env::var_os("POSITIONS_DUMP").is_some() {
            let p = Path::new("/tmp").join(format!("positions-{i}.eml"));
            std::fs::write(&p, &raw).unwrap();
            eprintln!("{name}: {}", p.display());
        }
    }
    eprintln!("{} messages in {:.1} s", all.len(), start.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "{} of {} shapes:\n{}", failures.len(), all.len(), failures.join("\n"));
}

/// The shapes issue 26 found from outside, as regressions of their own.
#[test]
fn the_shapes_reported_in_issue_26() {
    let w = World::new();
    let evil = |body: Node| {
        let mut t = signed(body);
        if let Node::Multi { kids, .. } = &mut t {
            kids.push(text("XEVILTEXTX"));
            kids.push(attachment("evil.sh"));
        }
        t
    };
    // multipart/signed with parts after the signature, alone and inside PGP/MIME.
    for (i, tree) in [evil(text("BODYTEXT")), encrypted(evil(text("BODYTEXT")), false)].iter().enumerate() {
        let c = w.ingest(1000 + i, &w.message(1000 + i, tree));
        assert_eq!(c["signature"], "partial", "{c}");
        let t = c["text"].as_str().unwrap();
        assert!(
            t.contains("BODYTEXT") && t.contains("[unsigned text outside the signed part]\nReport text XEVILTEXTX"),
            "{t}"
        );
        let a = c["attachments"].as_array().unwrap().iter().find(|a| a["name"] == "evil.sh").expect("evil.sh kept");
        assert_eq!(a["signed"], false);
    }
    // multipart/encrypted with parts after the encrypted one.
    let mut tree = encrypted(text("BODYTEXT"), true);
    if let Node::Multi { kids, .. } = &mut tree {
        kids.push(text("XEVILTEXTX"));
        kids.push(attachment("evil.sh"));
    }
    let c = w.ingest(1002, &w.message(1002, &tree));
    assert_eq!(c["signature"], "partial", "{c}");
    let t = c["text"].as_str().unwrap();
    assert!(t.contains("BODYTEXT") && t.contains("unencrypted") && t.contains("XEVILTEXTX"), "{t}");
    let a = c["attachments"].as_array().unwrap().iter().find(|a| a["name"] == "evil.sh").expect("evil.sh kept");
    assert_eq!((a["encrypted"].clone(), a["signed"].clone()), (Value::Bool(false), Value::Bool(false)));
    // multipart/signed with the signature first and the content second.
    let tree = multi(Kind::Signed, vec![Node::Sig, Node::Signed(Box::new(text("BODYTEXT")))]);
    let c = w.ingest(1003, &w.message(1003, &tree));
    assert_eq!(c["signature"], "bad", "{c}");
    assert!(c["text"].as_str().unwrap().contains("BODYTEXT"), "{c}");
}
