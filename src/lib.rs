//! kacap: a packet-level TCP keepalive analyzer.
//!
//! The pipeline reads top to bottom:
//!
//! - [`source`]: frames from libpcap (a file, stdin, an interface), behind
//!   the [`event::FrameSource`] trait ([`event::MemorySource`] for tests);
//! - [`decode`]: link layer → IP → a view of the TCP segment;
//! - [`flows`]: the connection table and core TCP state ([`tcp`] types);
//! - [`classify`]: one [`tcp::Kind`] per segment, rules in documented order;
//! - analyses ([`analysis`], listed in [`registry`]): [`keepalive`],
//!   [`middlebox`] idle timeouts, [`http`] keep-alive — each owns its
//!   per-flow state, notes each segment and summarizes each flow;
//! - [`summary`]: one typed [`summary::FlowSummary`] per flow with its one
//!   [`summary::verdict`];
//! - [`report`]: sinks of [`event::PacketEvent`]s and flow summaries (text
//!   timeline and table, `--explain`, `--diagram`, JSON Lines).
//!
//! [`analyzer`] drives it; [`plan`] turns the command line into a checked
//! plan before anything happens; [`run`] carries the plan out.

pub mod analysis;
pub mod analyzer;
pub mod app;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod community_id;
pub mod craft;
pub mod decode;
pub mod error;
pub mod event;
pub mod fastread;
pub mod flows;
pub mod http;
pub mod inputs;
pub mod keepalive;
pub mod lab;
pub mod lookahead;
pub mod merge;
pub mod metrics;
pub mod middlebox;
pub mod plan;
pub mod privileges;
pub mod registry;
pub mod report;
pub mod retransmit;
pub mod run;
pub mod seq;
pub mod shard;
pub mod signal;
pub mod sockets;
pub mod source;
pub mod summary;
pub mod tcp;
pub mod time;
pub mod traffic;
pub mod unpack;
