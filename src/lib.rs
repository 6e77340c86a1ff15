//! secintake: an encrypted intake daemon for a project's `security@` mailbox.
//!
//! The library holds everything; `main.rs` only parses the command line, sets up
//! logging and maps errors to exit codes. See ARCHITECTURE.md for the map.

pub mod allocator;
pub mod atrest;
pub mod case;
pub mod cli;
pub mod config;
pub mod heartbeat;
pub mod intake;
pub mod journal;
pub mod keyfiles;
pub mod mime;
pub mod net;
pub mod notify;
pub mod openpgp;
pub mod outbox;
pub mod pipeline;
pub mod report;
pub mod service;
pub mod store;
pub mod triage;
