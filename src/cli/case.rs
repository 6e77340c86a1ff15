//! `secintake case ...`: list and show cases.

use std::io::Write;

use anyhow::Result;
use chrono::Utc;
use clap::Subcommand;

use super::term::{escape, lines};
use super::{Ctx, EXIT_OK, table, usage};
use crate::case::change::{self, Change};
use crate::case::{Status, rfc3339};

/// `--status` values: the case lifecycle's statuses, listed by `--help` and checked by clap.
fn statuses() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Status::ALL.map(Status::as_str))
}
/// `--reason` values, from the one list the case rules check against.
fn reject_reasons() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::case::REJECT_REASONS.iter().copied())
}
/// `--flag` values: the triage flags' fixed vocabulary.
fn flags() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::triage::Flag::ALL.map(crate::triage::Flag::as_str))
}
/// `--field`/`--missing` values: the fields a policy may require.
fn fields() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::triage::Field::ALL.map(crate::triage::Field::as_str))
}
/// `--severity` values: CVSS qualitative ratings.
const SEVERITIES: [&str; 5] = ["none", "low", "medium", "high", "critical"];

// Parsed once per command: a large variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum CaseCmd {
    /// List cases, next due first
    #[command(after_help = "Examples:\n  secintake case list\n  secintake case list --status new --json")]
    List {
        /// Only cases in this status
        #[arg(long, value_parser = statuses())]
        status: Option<String>,
        /// Only cases with this TLP label: CLEAR, GREEN, AMBER, AMBER+STRICT, RED (a TLP: prefix is fine)
        #[arg(long, value_name = "LABEL")]
        tlp: Option<String>,
        /// Only cases with this CVSS severity
        #[arg(long, value_parser = SEVERITIES, ignore_case = true)]
        severity: Option<String>,
        /// Only cases with a deadline passed
        #[arg(long)]
        overdue: bool,
        /// Only cases with this triage flag (repeatable: all of them)
        #[arg(long, value_name = "NAME", value_parser = flags())]
        flag: Vec<String>,
        /// Only cases missing this required field (repeatable: all of them)
        #[arg(long, value_name = "NAME", value_parser = fields())]
        missing: Vec<String>,
        /// Only this project's cases
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Cases that may report the same finding as this one (any status), with the reasons:
    /// the same attachment or PoC, CWE + component + versions, text similarity
    #[command(after_help = "Example:\n  secintake case similar SEC-2026-0007")]
    Similar {
        /// The case id, e.g. SEC-2026-0007
        id: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over titles, texts, attachment names, CWE, CVE, reporters and
    /// notes, ranked (BM25), with a snippet
    #[command(after_help = "Examples:\n  secintake case search 'heap overflow parse_header'\n  \
                  secintake case search CVE-2026-1234 --json\n  \
                  secintake case search alice@example.org --status rejected --since 2026-01-01")]
    Search {
        /// The words to look for (any of them; cases holding more, and rarer, rank first)
        query: Vec<String>,
        /// Only cases in this status
        #[arg(long, value_parser = statuses())]
        status: Option<String>,
        /// Only cases received on or after this day (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Only this project's cases
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// How many results at most
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Change fields of a case (each change goes to its audit log)
    #[command(
        after_help = "Examples:\n  secintake case set SEC-2026-0001 --status triaged --cvss CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n  \
                  secintake case set SEC-2026-0002 --status rejected --reason duplicate --duplicate-of SEC-2026-0001"
    )]
    Set(SetArgs),
    /// Add a note to a case's audit log (text, --file, or stdin)
    #[command(
        after_help = "Examples:\n  secintake case note SEC-2026-0001 Reproduced on 2.3.1\n  secintake case note SEC-2026-0001 --file notes.txt\n  echo 'Fix merged' | secintake case note SEC-2026-0001"
    )]
    Note {
        /// The case id
        id: String,
        /// Read the note from a file (- for stdin; stdin is also read when no text is given)
        #[arg(long)]
        file: Option<String>,
        /// The note text
        text: Vec<String>,
        /// Who writes it [default: the OS user]
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
    /// A case's audit log: every change, note, mail in and out
    #[command(after_help = "Example:\n  secintake case log SEC-2026-0001 --json")]
    Log {
        /// The case id
        id: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show one case with its text and messages
    #[command(after_help = "Example:\n  secintake case show SEC-2026-0001 --json")]
    Show {
        /// The case id, e.g. SEC-2026-0001
        id: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Write a draft advisory for publication: OSV, a CVE JSON 5 record, or CSAF 2.0
    #[command(after_help = "Examples:\n  secintake case export SEC-2026-0001 --format osv\n  \
                  secintake case export SEC-2026-0001 --format csaf --out SEC-2026-0001.csaf.json\n\n\
                  The draft never carries the reporter's text; gaps are marked [TO FILL: ...].")]
    Export {
        /// The case id
        id: String,
        /// The advisory format
        #[arg(long, value_enum)]
        format: crate::case::export::Format,
        /// Write to this file (owner-only) instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Print the SPEC-11 release announcement, gaps marked [TO FILL: ...]
    #[command(after_help = "Examples:\n  secintake case announce SEC-2026-0001\n  \
                  secintake case announce SEC-2026-0001 --force   # still under embargo: a draft for the team")]
    Announce {
        /// The case id
        id: String,
        /// Print it even while the case is under embargo (before its disclosure date)
        #[arg(long)]
        force: bool,
    },
    /// Credit lines for release notes, honouring anonymity
    #[command(after_help = "Examples:\n  secintake case credits\n  secintake case credits --since 2026-01-01")]
    Credits {
        /// Only cases disclosed on or after this day (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Print a JSON array of the lines
        #[arg(long)]
        json: bool,
    },
    /// Ask the reporter for what the report lacks (signed; encrypted when their key is
    /// known; threaded); restarts the auto-close clock
    #[command(
        after_help = "Examples:\n  secintake case ask SEC-2026-0001                 # what the policy requires and the report lacks\n  \
                  secintake case ask SEC-2026-0001 --field poc --field impact\n  \
                  secintake case ask SEC-2026-0001 --field versions --text question.txt"
    )]
    Ask {
        /// The case id
        id: String,
        /// A field to ask for (repeatable; default: what is missing)
        #[arg(long, value_name = "NAME", value_parser = fields())]
        field: Vec<String>,
        /// Words of the team's own to add, from a file (- for stdin); never sent
        /// unencrypted for TLP:AMBER and above
        #[arg(long, value_name = "FILE")]
        text: Option<String>,
        /// Who asks [default: the OS user]
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
    /// Make a case another project's (a report sent to the wrong address): its team gets
    /// the summary; the reporter is told nothing; the audit log says who moved it
    #[command(after_help = "Example:\n  secintake case move SEC-2026-0004 --project numlib")]
    Move {
        /// The case id
        id: String,
        /// The project it belongs to (`[[projects]]` name, or the default project's)
        #[arg(long, value_name = "NAME")]
        project: String,
        /// Who moves it [default: the OS user]
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
    /// Who outside the team is read in on a case (SPEC-11: the fixing team)
    #[command(
        subcommand,
        after_help = "Examples:\n  secintake case readin add SEC-2026-0001 --cert fixer.asc --role fixer --expires 2026-12-31\n  \
                  secintake case readin list SEC-2026-0001"
    )]
    Readin(ReadinCmd),
    /// Send the reporter a message threaded to the case (signed; encrypted when their
    /// key is known; refused unencrypted for TLP:AMBER and above)
    #[command(
        after_help = "Examples:\n  secintake case reply SEC-2026-0001 --file update.txt\n  echo 'We reproduced it.' | secintake case reply SEC-2026-0001\n  \
                  secintake case reply SEC-2026-0002 --template duplicate"
    )]
    Reply {
        /// The case id
        id: String,
        /// The message text; - (the default) reads stdin
        #[arg(long, value_name = "FILE", default_value = "-", conflicts_with = "template")]
        file: String,
        /// A canned reply from the config's replies/ directory (NAME.txt, with the case's
        /// fields filled in: $CASE, $TITLE, $DUE_DISCLOSURE, ...)
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
        /// Who sends it [default: the OS user]
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
}

/// `case readin ...`: who outside the team is read in on a case.
#[derive(Subcommand, Debug)]
pub enum ReadinCmd {
    /// Read someone in: the case's team mail is also encrypted to their cert and sent to
    /// their addresses; they get the summary so far, once
    #[command(
        after_help = "Examples:\n  secintake case readin add SEC-2026-0001 --cert fixer.asc --role fixer --expires 2026-12-31\n  \
                  secintake case readin add SEC-2026-0003 --cert obs.asc --role observer --force --reason 'agreed on the list'"
    )]
    Add {
        /// The case id
        id: String,
        /// Their armored or binary OpenPGP cert (- for stdin)
        #[arg(long, value_name = "FILE")]
        cert: String,
        /// What they do on the case
        #[arg(long, value_parser = ["fixer", "coordinator", "observer"])]
        role: String,
        /// Until when they receive the case's mail (YYYY-MM-DD or RFC 3339) [default: until removed]
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// Needed for a TLP:RED case (with --reason: why, for the audit log)
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why a TLP:RED case reads someone in
        #[arg(long, value_name = "TEXT", requires = "force")]
        reason: Option<String>,
        /// Who reads them in [default: the OS user]
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
    /// Who is read in on a case (expired entries too)
    #[command(after_help = "Example:\n  secintake case readin list SEC-2026-0001 --json")]
    List {
        /// The case id
        id: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Stop sending a case's mail to someone read in
    #[command(
        after_help = "Example:\n  secintake case readin remove SEC-2026-0001 0123456789ABCDEF0123456789ABCDEF01234567"
    )]
    Remove {
        /// The case id
        id: String,
        /// The fingerprint of their cert
        fingerprint: String,
        /// Who removes them [default: the OS user]
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    /// The case id
    pub id: String,
    /// New status (transitions are enforced; rejected needs --reason)
    #[arg(long, value_parser = statuses())]
    pub status: Option<String>,
    /// Why a case is rejected (with --status rejected)
    #[arg(long, value_parser = reject_reasons())]
    pub reason: Option<String>,
    /// With --reason duplicate: the original case (credit goes to the first reporter)
    #[arg(long, value_name = "ID")]
    pub duplicate_of: Option<String>,
    /// With --duplicate-of, when this case was received first: make it the original
    /// instead (the other case becomes its duplicate)
    #[arg(long, requires = "duplicate_of", conflicts_with = "force")]
    pub swap: bool,
    /// With --duplicate-of, when this case was received first: keep the other as the
    /// original anyway
    #[arg(long, requires = "duplicate_of")]
    pub force: bool,
    /// A new title (the team's wording; never sent to the reporter unencrypted)
    #[arg(long)]
    pub title: Option<String>,
    /// A CVSS 3.0/3.1/4.0 vector (scored; "none" clears)
    #[arg(long)]
    pub cvss: Option<String>,
    /// CWE ids (repeatable; replaces the list)
    #[arg(long)]
    pub cwe: Vec<String>,
    /// TLP label: CLEAR, GREEN, AMBER, AMBER+STRICT, RED (a TLP: prefix is fine; "none" clears)
    #[arg(long, value_name = "LABEL")]
    pub tlp: Option<String>,
    /// Affected versions (repeatable; replaces the list)
    #[arg(long)]
    pub affected: Vec<String>,
    /// Fixed versions (repeatable; replaces the list)
    #[arg(long)]
    pub fixed: Vec<String>,
    /// Credit name for the reporter
    #[arg(long)]
    pub credit: Option<String>,
    /// The reporter asked to stay anonymous
    #[arg(long)]
    pub anonymous: bool,
    /// Who on the team handles the case
    #[arg(long, value_name = "NAME")]
    pub assignee: Option<String>,
    /// CVE id, e.g. CVE-2026-12345
    #[arg(long)]
    pub cve: Option<String>,
    /// Target disclosure date (YYYY-MM-DD or RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub disclosure: Option<String>,
    /// Waiting on the reporter (pauses the update clock): true or false
    #[arg(long, value_name = "BOOL")]
    pub waiting_on_reporter: Option<bool>,
    /// Actively exploited (true starts the EU CRA Article 14 clocks): true or false
    #[arg(long, value_name = "BOOL")]
    pub exploited: Option<String>,
    /// With --exploited true: when the team became aware (YYYY-MM-DD or RFC 3339)
    /// [default: the report's arrival when the reporter said it is exploited, else now]
    #[arg(long, value_name = "TIME", requires = "exploited")]
    pub aware_at: Option<String>,
    /// A CRA filing made (needs --ref)
    #[arg(long, value_name = "STAGE", value_enum, requires = "reference")]
    pub cra_stage: Option<crate::case::cra::StageName>,
    /// The reporting platform's reference of the filing
    #[arg(long = "ref", value_name = "TEXT", requires = "cra_stage")]
    pub reference: Option<String>,
    /// Other projects the flaw affects (`[[projects]]` names, or the default project's):
    /// their teams get the summary, encrypted to their certs, and the case's later team mail
    #[arg(long, value_name = "NAME", num_args = 1..)]
    pub also_affects: Vec<String>,
    /// Who makes the change [default: the OS user]
    #[arg(long = "as", value_name = "NAME")]
    pub who: Option<String>,
}

/// The changes `case set` asks for, parsed by the one parser of case changes
/// (`case::change::Request`, which the mail commands use too), in the order they apply.
/// `original`: the root of a duplicate chain, which the link goes to (credit to the
/// first reporter).
fn changes(a: &SetArgs, ctx: &Ctx, id: &str, original: Option<&str>) -> Result<Vec<Change>> {
    let req = change::Request {
        status: a.status.clone(),
        reason: a.reason.clone(),
        duplicate_of: original.map(str::to_owned).or_else(|| a.duplicate_of.clone()),
        title: a.title.clone(),
        cvss: a.cvss.clone(),
        cwe: a.cwe.clone(),
        tlp: a.tlp.clone(),
        affected: a.affected.clone(),
        fixed: a.fixed.clone(),
        credit: a.credit.clone(),
        anonymous: a.anonymous,
        assignee: a.assignee.clone(),
        cve: a.cve.clone(),
        disclosure: a.disclosure.clone(),
        waiting: a.waiting_on_reporter.map(|w| w.to_string()),
        exploited: a.exploited.clone(),
        aware_at: a.aware_at.clone(),
        cra_stage: a.cra_stage,
        reference: a.reference.clone(),
    };
    let exists = |c: &str| ctx.store.case_meta(c).ok().flatten().is_some();
    req.changes(id, &exists).map_err(|r| usage(format!("--{}: {}", r.flag, r.why)))
}

fn set(a: &SetArgs, ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    use crate::case::LogEntry;
    let tx = ctx.store.begin();
    let mut c =
        ctx.store.case_meta(&a.id)?.ok_or_else(|| usage(format!("no case {}; see `secintake case list`", a.id)))?;
    let now = Utc::now();
    let who = a.who.clone().unwrap_or_else(|| ctx.user.clone());
    // A duplicate's original: the case named, or the one that case is itself a
    // duplicate of (credit goes to the first reporter of the chain).
    let dup = a.status.as_deref() == Some("rejected") && a.reason.as_deref() == Some("duplicate");
    let original = match a.duplicate_of.as_deref().filter(|_| dup) {
        Some(y) => Some(super::credits::root_original(&ctx.store, y, &c.id)?),
        None => None,
    };
    if let Some(orig) = &original
        && let Some(why) = crate::case::credit::came_first(&c, orig)
    {
        if a.swap {
            return super::credits::swap(ctx, &tx, c, orig.clone(), &who, now, out);
        }
        if !a.force {
            return Err(usage(why));
        }
    }
    let before = crate::case::credit::duplicate_of(&c).map(str::to_owned);
    let mut said: Vec<String> = Vec::new();
    for ch in changes(a, ctx, &c.id.clone(), original.as_ref().map(|o| o.id.as_str()))? {
        let line = ch.apply(&mut c, now).map_err(usage)?;
        if !line.is_empty() {
            said.push(line);
        }
    }
    for n in &a.also_affects {
        super::project_arg(&ctx.cfg, Some(n))?;
    }
    if said.is_empty() && a.also_affects.is_empty() {
        return Err(usage("nothing to change; see `secintake case set --help`"));
    }
    if said.is_empty() {
        drop(tx);
        return also_affects(a, ctx, &who, now, out);
    }
    let mut b = crate::store::Batch::default();
    // Credit follows the link: the original lists this reporter (and whoever this case
    // listed); an earlier original, or one the case left by being reopened, forgets it.
    let after = crate::case::credit::duplicate_of(&c).map(str::to_owned);
    if before != after {
        super::credits::relink(ctx, &mut b, &mut c, before.as_deref(), original, &who, now)?;
    }
    b.put_case(&c);
    crate::pipeline::search::index_case(&ctx.store, &mut b, &c, usize::MAX)?;
    b.put_log(
        &c.id,
        ctx.store.log_len(&c.id)? + b.pending_logs(&c.id),
        &LogEntry { at: now, who: who.clone(), action: "set".into(), detail: said.join("; "), ..Default::default() },
    );
    tx.commit(b)?;
    writeln!(out, "{}: {}", c.id, escape(&said.join("; ")))?;
    drop(tx);
    if a.also_affects.is_empty() { Ok(EXIT_OK) } else { also_affects(a, ctx, &who, now, out) }
}

/// `case set --also-affects`: through the pipeline, which mails the other teams.
fn also_affects(a: &SetArgs, ctx: &Ctx, who: &str, now: chrono::DateTime<Utc>, out: &mut dyn Write) -> Result<i32> {
    let said = ctx.pipeline()?.also_affects(&a.id, &a.also_affects, who, now).map_err(|e| usage(format!("{e:#}")))?;
    writeln!(out, "{}: {}", a.id, escape(&said))?;
    Ok(EXIT_OK)
}

fn readin(cmd: &ReadinCmd, ctx: &Ctx, input: Option<Vec<u8>>, out: &mut dyn Write) -> Result<i32> {
    use crate::case::readin::Role;
    let known = |id: &str| -> Result<()> {
        match ctx.store.case_meta(id)? {
            Some(_) => Ok(()),
            None => Err(usage(format!("no case {id}; see `secintake case list`"))),
        }
    };
    match cmd {
        ReadinCmd::Add { id, role, expires, force, reason, who, .. } => {
            known(id)?;
            let role = Role::parse(role)
                .ok_or_else(|| usage(format!("--role {role:?}: use fixer, coordinator or observer")))?;
            let expires =
                expires.as_deref().map(change::date).transpose().map_err(|e| usage(format!("--expires: {e}")))?;
            let cert = input.unwrap_or_default();
            let who = who.clone().unwrap_or_else(|| ctx.user.clone());
            let reason = reason.as_deref().filter(|_| *force);
            let fpr = ctx
                .pipeline()?
                .readin_add(id, &cert, role, expires, reason, &who, Utc::now())
                .map_err(|e| usage(format!("{e:#}")))?;
            writeln!(out, "{id}: {fpr} read in as {}", role.as_str())?;
        }
        ReadinCmd::List { id, json } => {
            known(id)?;
            let entries: Vec<crate::case::readin::ReadIn> =
                ctx.store.readins(id)?.into_iter().map(|r| r.entry).collect();
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
            } else {
                let now = Utc::now();
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|r| {
                        vec![
                            r.fingerprint.clone(),
                            r.role.as_str().into(),
                            r.uids.first().cloned().unwrap_or_default(),
                            r.by.clone(),
                            rfc3339(&r.at),
                            match r.expires {
                                Some(e) if !r.active(now) => format!("EXPIRED {}", rfc3339(&e)),
                                Some(e) => rfc3339(&e),
                                None => "-".into(),
                            },
                        ]
                    })
                    .collect();
                table(out, &["FINGERPRINT", "ROLE", "USER ID", "BY", "AT", "EXPIRES"], &rows)?;
            }
        }
        ReadinCmd::Remove { id, fingerprint, who } => {
            known(id)?;
            let who = who.clone().unwrap_or_else(|| ctx.user.clone());
            ctx.pipeline()?.readin_remove(id, fingerprint, &who, Utc::now()).map_err(|e| usage(format!("{e:#}")))?;
            writeln!(out, "{id}: {} no longer read in", fingerprint.replace(' ', "").to_ascii_uppercase())?;
        }
    }
    Ok(EXIT_OK)
}

pub fn execute(cmd: &CaseCmd, ctx: &Ctx, input: Option<Vec<u8>>, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        CaseCmd::Set(a) => set(a, ctx, out),
        CaseCmd::Ask { id, field, text, who } => {
            let fields: Vec<crate::triage::Field> =
                field.iter().filter_map(|f| crate::triage::Field::parse(f)).collect();
            // --text was read by the client (its path means what the user meant).
            let words = match text {
                Some(_) => {
                    Some(String::from_utf8(input.unwrap_or_default()).map_err(|_| usage("--text must be UTF-8 text"))?)
                }
                None => None,
            };
            if ctx.store.case_meta(id)?.is_none() {
                return Err(usage(format!("no case {id}; see `secintake case list`")));
            }
            let who = who.clone().unwrap_or_else(|| ctx.user.clone());
            let mid = ctx
                .pipeline()?
                .ask(id, &fields, words.as_deref(), &who, Utc::now())
                .map_err(|e| usage(format!("{e:#}")))?;
            writeln!(out, "{id}: request {mid} queued")?;
            Ok(EXIT_OK)
        }
        CaseCmd::Note { id, file, text, who } => {
            // The file (or stdin) was read by the client, so `--file -` and relative
            // paths mean what the user meant even when the daemon runs the command.
            let body = if text.is_empty() || file.is_some() {
                String::from_utf8(input.unwrap_or_default()).map_err(|_| usage("the note must be UTF-8 text"))?
            } else {
                text.join(" ")
            };
            if body.trim().is_empty() {
                return Err(usage("empty note; give text or --file"));
            }
            let tx = ctx.store.begin();
            if ctx.store.case_meta(id)?.is_none() {
                return Err(usage(format!("no case {id}; see `secintake case list`")));
            }
            let mut b = crate::store::Batch::default();
            crate::pipeline::search::index_notes(&ctx.store, &mut b, id, body.trim_end())?;
            b.put_log(
                id,
                ctx.store.log_len(id)?,
                &crate::case::LogEntry {
                    at: Utc::now(),
                    who: who.clone().unwrap_or_else(|| ctx.user.clone()),
                    action: "note".into(),
                    detail: body.trim_end().to_owned(),
                    ..Default::default()
                },
            );
            tx.commit(b)?;
            writeln!(out, "{id}: note added")?;
            Ok(EXIT_OK)
        }
        CaseCmd::Log { id, json } => {
            if ctx.store.case_meta(id)?.is_none() {
                return Err(usage(format!("no case {id}; see `secintake case list`")));
            }
            let log = ctx.store.log(id)?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&log)?)?;
            } else {
                for e in log {
                    let mut detail = lines(&e.detail);
                    let first = detail.next().unwrap_or_default();
                    writeln!(out, "{}  {:<10} {:<9} {first}", rfc3339(&e.at), escape(&e.who), escape(&e.action))?;
                    for more in detail {
                        writeln!(out, "{:<42}{more}", "")?;
                    }
                }
            }
            Ok(EXIT_OK)
        }
        CaseCmd::Similar { id, json } => {
            crate::pipeline::ensure_indexes(&ctx.store)?;
            let me = ctx.store.case(id)?.ok_or_else(|| usage(format!("no case {id}; see `secintake case list`")))?;
            // The signals recorded at intake (with its attachments' PoCs), else from the record.
            let signals = match ctx.store.dup_signals(id)? {
                Some(s) => s,
                None => crate::pipeline::dupes::signals_of(&me, &[]),
            };
            let found = crate::pipeline::dupes::candidates(&ctx.store, id, &signals)?;
            let mut rows = Vec::new();
            let mut v = Vec::new();
            for d in &found {
                let Some(c) = ctx.store.case_meta(&d.case)? else { continue };
                v.push(serde_json::json!({
                    "case": d.case, "id": d.case, "score": d.score, "why": d.why,
                    "title": c.title, "status": c.status.as_str(),
                    "received_at": rfc3339(&c.received_at), "reporter": c.reporter.address,
                }));
                rows.push((d, c));
            }
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                let table_rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|(d, c)| {
                        vec![
                            c.id.clone(),
                            format!("{:.2}", d.score),
                            c.status.as_str().into(),
                            rfc3339(&c.received_at),
                            c.title.chars().take(50).collect(),
                        ]
                    })
                    .collect();
                table(out, &["ID", "SCORE", "STATUS", "RECEIVED", "TITLE"], &table_rows)?;
                for (d, _) in &rows {
                    writeln!(out, "{}: {}", d.case, escape(&d.why.join("; ")))?;
                }
            }
            Ok(EXIT_OK)
        }
        CaseCmd::Search { query, status, since, project, limit, json } => {
            let filter = super::search::Filter {
                status: status.as_deref(),
                since: since.as_deref(),
                project: project.as_deref(),
            };
            super::search::run(ctx, &query.join(" "), &filter, *limit, *json, out)
        }
        CaseCmd::List { status, tlp, severity, overdue, flag, missing, project, json } => {
            let project = super::project_arg(&ctx.cfg, project.as_deref())?;
            let flag: Vec<crate::triage::Flag> = flag.iter().filter_map(|f| crate::triage::Flag::parse(f)).collect();
            let missing: Vec<crate::triage::Field> =
                missing.iter().filter_map(|f| crate::triage::Field::parse(f)).collect();
            let now = Utc::now();
            let tlp = tlp
                .as_deref()
                .map(|t| {
                    crate::report::tlp(&format!("TLP:{}", t.trim_start_matches("TLP:")))
                        .ok_or_else(|| usage(format!("--tlp {t:?}: use CLEAR, GREEN, AMBER, AMBER+STRICT or RED")))
                })
                .transpose()?;
            let severity = severity.as_deref().map(|s| s.to_ascii_lowercase());
            let filter = match status {
                Some(s) => Some(Status::parse(s).ok_or_else(|| {
                    usage(format!(
                        "unknown status {s:?}; use one of {}",
                        Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })?),
                None => None,
            };
            let mut cases: Vec<_> = ctx
                .store
                .cases()?
                .into_iter()
                .filter(|c| filter.is_none_or(|f| c.status == f))
                .filter(|c| tlp.is_none() || c.tlp == tlp)
                .filter(|c| severity.is_none() || c.cvss.as_ref().map(|v| v.severity.clone()) == severity)
                .filter(|c| !*overdue || c.overdue(now))
                .filter(|c| super::in_project(&ctx.cfg, c, project))
                .filter(|c| flag.iter().all(|f| c.flags.contains(f)))
                .filter(|c| {
                    missing.is_empty()
                        || c.completeness.as_ref().is_some_and(|k| missing.iter().all(|f| k.missing.contains(f)))
                })
                .collect();
            cases.sort_by(|a, b| a.next_due().cmp(&b.next_due()).then(a.id.cmp(&b.id)));
            if *json {
                let v: Vec<_> = cases.iter().map(|c| c.to_json(false)).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                let rows: Vec<Vec<String>> = cases
                    .iter()
                    .map(|c| {
                        let due = c.next_due();
                        let mark = if due < now { "OVERDUE " } else { "" };
                        vec![
                            c.id.clone(),
                            c.status.as_str().into(),
                            c.signature.as_str().into(),
                            format!("{mark}{}", rfc3339(&due)),
                            c.reporter.address.clone(),
                            c.title.chars().take(60).collect(),
                        ]
                    })
                    .collect();
                table(out, &["ID", "STATUS", "SIGNATURE", "NEXT DUE", "REPORTER", "TITLE"], &rows)?;
            }
            Ok(EXIT_OK)
        }
        CaseCmd::Show { id, json } => {
            let c = ctx.store.case(id)?.ok_or_else(|| usage(format!("no case {id}; see `secintake case list`")))?;
            let readins: Vec<crate::case::readin::ReadIn> =
                ctx.store.readins(id)?.into_iter().map(|r| r.entry).collect();
            if *json {
                let mut v = c.to_json(true);
                if let Some(o) = v.as_object_mut() {
                    o.insert("readin".into(), serde_json::to_value(&readins)?);
                }
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for line in lines(&crate::notify::readin_lines(&readins, Utc::now())) {
                    writeln!(out, "{line}")?;
                }
                writeln!(out, "{}  [{}]  {}", escape(&c.id), c.status.as_str(), escape(&c.title))?;
                // Triage first: flags with their evidence, what is missing, AI use, CVSS claim.
                for line in lines(&crate::notify::summary_triage(&c)) {
                    if !line.is_empty() {
                        writeln!(out, "{}", line)?;
                    }
                }
                if c.cra.exploited {
                    for (clock, due) in c.cra.deadlines() {
                        writeln!(out, "CRA:        {clock} due {}", rfc3339(&due))?;
                    }
                }
                writeln!(out, "Reporter:   {} <{}>", escape(&c.reporter.name), escape(&c.reporter.address))?;
                writeln!(out, "Key:        {}", escape(c.reporter.key_fingerprint.as_deref().unwrap_or("none")))?;
                if let Some(f) = &c.reporter.key_conflict {
                    writeln!(out, "KEY CONFLICT: another cert {} claims this address; not used", escape(f))?;
                }
                writeln!(out, "Received:   {}", rfc3339(&c.received_at))?;
                writeln!(
                    out,
                    "Encrypted:  {}  decrypted: {}  signature: {}",
                    c.encrypted,
                    c.decrypted,
                    c.signature.as_str()
                )?;
                writeln!(out, "            ({})", crate::notify::verdict_meaning(c.signature))?;
                if let Some(cv) = &c.cvss {
                    writeln!(
                        out,
                        "CVSS {}:   {} {} ({})",
                        escape(&cv.version),
                        cv.score,
                        escape(&cv.severity),
                        escape(&cv.vector)
                    )?;
                }
                if !c.cwe.is_empty() {
                    writeln!(out, "CWE:        {}", escape(&c.cwe.join(", ")))?;
                }
                if let Some(t) = &c.tlp {
                    writeln!(out, "TLP:        {}", escape(t))?;
                }
                match &c.ack {
                    Some(a) => writeln!(out, "Ack:        sent {} (encrypted: {})", rfc3339(&a.sent_at), a.encrypted)?,
                    None => writeln!(out, "Ack:        not sent yet")?,
                }
                writeln!(
                    out,
                    "Due:        ack {}  update {}  disclosure {}",
                    rfc3339(&c.due.ack),
                    rfc3339(&c.due.update),
                    rfc3339(&c.due.disclosure)
                )?;
                for a in &c.attachments {
                    let unsigned =
                        if c.signature != crate::openpgp::Verdict::None && !a.signed { "  [UNSIGNED]" } else { "" };
                    writeln!(
                        out,
                        "Attachment: {}  {} bytes  {}  {}{unsigned}",
                        escape(&a.name),
                        a.size,
                        escape(&a.content_type),
                        escape(&a.sha256)
                    )?;
                }
                writeln!(out, "Messages:   {}", c.messages.len())?;
                for m in c.messages.iter().filter(|m| m.third_party) {
                    writeln!(
                        out,
                        "            {} from THIRD PARTY {} ({})",
                        escape(&m.message_id),
                        escape(&m.from),
                        m.signature.as_str()
                    )?;
                }
                writeln!(out)?;
                for line in lines(&c.text) {
                    writeln!(out, "{line}")?;
                }
            }
            Ok(EXIT_OK)
        }
        CaseCmd::Export { id, format, out: file } => {
            let c = ctx.store.case(id)?.ok_or_else(|| usage(format!("no case {id}; see `secintake case list`")))?;
            // The case's project: its name as vendor and product, its package URL.
            let project = c.project.as_deref();
            let product = crate::case::export::Product {
                name: &ctx.cfg.policy_of(project).project,
                purl: ctx.cfg.project(project).and_then(|p| p.purl.as_deref()),
            };
            let doc = crate::case::export::render_for(*format, &c, &product, Utc::now());
            let text = doc.to_text();
            let Some(path) = file else {
                write!(out, "{text}")?;
                return Ok(EXIT_OK);
            };
            // The daemon would write with its own cwd and sandbox, not the caller's.
            if ctx.shared.is_some() {
                return Err(usage(format!(
                    "--out is not available while the daemon runs; redirect stdout instead: \
                     secintake case export {id} --format {} > {}",
                    format.as_str(),
                    path.display()
                )));
            }
            // Owner-only: a draft may describe an embargoed vulnerability.
            let mut f = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
            }
            .map_err(|e| usage(format!("--out {}: {e}", path.display())))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            writeln!(out, "{id}: draft written to {}", path.display())?;
            Ok(EXIT_OK)
        }
        CaseCmd::Announce { id, force } => {
            let c = ctx.store.case(id)?.ok_or_else(|| usage(format!("no case {id}; see `secintake case list`")))?;
            let now = Utc::now();
            if !*force && crate::case::export::embargoed(&c, now) {
                return Err(usage(format!(
                    "{id} is under embargo until {} (status {}); announce after that date or once disclosed, \
                     or pass --force for a draft",
                    rfc3339(&c.due.disclosure),
                    c.status.as_str()
                )));
            }
            let project = &ctx.cfg.policy_of(c.project.as_deref()).project;
            for line in lines(crate::case::export::announce(&c, project, now).trim_end_matches('\n')) {
                writeln!(out, "{line}")?;
            }
            Ok(EXIT_OK)
        }
        CaseCmd::Move { id, project, who } => {
            super::project_arg(&ctx.cfg, Some(project))?;
            if ctx.store.case_meta(id)?.is_none() {
                return Err(usage(format!("no case {id}; see `secintake case list`")));
            }
            let who = who.clone().unwrap_or_else(|| ctx.user.clone());
            let said = ctx.pipeline()?.move_case(id, project, &who, Utc::now()).map_err(|e| usage(format!("{e:#}")))?;
            writeln!(out, "{id}: {}", escape(&said))?;
            Ok(EXIT_OK)
        }
        CaseCmd::Reply { id, who, template: Some(name), .. } => {
            if ctx.store.case_meta(id)?.is_none() {
                return Err(usage(format!("no case {id}; see `secintake case list`")));
            }
            let who = who.clone().unwrap_or_else(|| ctx.user.clone());
            let mid =
                ctx.pipeline()?.reply_template(id, name, &who, Utc::now()).map_err(|e| usage(format!("{e:#}")))?;
            writeln!(out, "{id}: reply queued as <{mid}>")?;
            Ok(EXIT_OK)
        }
        CaseCmd::Readin(r) => readin(r, ctx, input, out),
        CaseCmd::Reply { id, who, .. } => {
            let text =
                String::from_utf8(input.unwrap_or_default()).map_err(|_| usage("the reply must be UTF-8 text"))?;
            if text.trim().is_empty() {
                return Err(usage("empty reply; give --file FILE or text on stdin"));
            }
            if ctx.store.case_meta(id)?.is_none() {
                return Err(usage(format!("no case {id}; see `secintake case list`")));
            }
            let who = who.clone().unwrap_or_else(|| ctx.user.clone());
            let mid = ctx.pipeline()?.reply(id, &text, &who, Utc::now()).map_err(|e| usage(format!("{e:#}")))?;
            writeln!(out, "{id}: reply queued as <{mid}>")?;
            Ok(EXIT_OK)
        }
        CaseCmd::Credits { since, json } => {
            let since = match since {
                Some(s) => Some(change::date(s).map_err(|_| usage(format!("--since {s:?}: write YYYY-MM-DD")))?),
                None => None,
            };
            let credit_lines = crate::case::export::credits(&ctx.store.cases()?, since);
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&credit_lines)?)?;
            } else {
                for line in credit_lines {
                    writeln!(out, "{}", escape(&line))?;
                }
            }
            Ok(EXIT_OK)
        }
    }
}
