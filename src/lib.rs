//! kacap: a packet-level TCP keepalive analyzer.
//!
//! The folders are the layers; each imports only the layers listed before
//! it (`tests/it/structure.rs` checks it):
//!
//! - [`core`]: TCP as the wire shows it — timestamps, sequence numbers,
//!   decoding, the connection table, one kind per segment;
//! - [`analyses`]: what kacap reads from a connection beyond its core
//!   state — keepalive, middlebox idle timeouts, HTTP keep-alive,
//!   retransmissions, application keepalives — each a folder that owns its
//!   state *and what it says*, listed in one registry;
//! - [`pipeline`]: frames in, events and one typed summary per connection
//!   out, with the one verdict; the driver, the hold-back and lookahead for
//!   captures started mid-connection, the shards of `--threads`;
//! - [`input`]: where frames come from (files, live interfaces, pipes,
//!   merged and compressed captures) behind one trait;
//! - [`host`]: what kacap reads of the host it runs on (its sockets and
//!   sysctls, privileges, signals);
//! - [`report`]: the sinks (text, JSON, Zeek, HTML, SVG, metrics), which
//!   ask the analyses what to say;
//! - [`lab`]: the failures reproduced in a private network namespace;
//! - [`command`]: the command line, resolved into a checked plan, carried
//!   out.

pub mod analyses;
pub mod command;
pub mod core;
pub mod craft;
pub mod error;
pub mod host;
pub mod input;
pub mod lab;
pub mod pipeline;
pub mod report;
