//! kacap: a packet-level TCP keepalive analyzer.
//!
//! The pipeline reads top to bottom: [`source`] (libpcap) → [`decode`]
//! (link layer → IP → TCP view) → [`flows`] (connection table, sequence
//! state) → [`classify`] (one kind per segment) → [`keepalive`] (episodes,
//! inference, verdicts) → [`report`] (timeline, table, JSON). [`analyzer`]
//! drives it; [`run`] wires it to the command line.

pub mod analyzer;
pub mod classify;
pub mod cli;
pub mod decode;
pub mod error;
pub mod flows;
pub mod http;
pub mod inputs;
pub mod keepalive;
pub mod lab;
pub mod middlebox;
pub mod report;
pub mod run;
pub mod seq;
pub mod signal;
pub mod source;
pub mod time;
pub mod traffic;
