//! Report: the sinks of the event stream (text timeline and table with
//! `--explain` / `--diagram`, JSON Lines), and what they share.

pub mod annotate;
pub mod emit;
pub mod idle;
pub mod json;
pub mod table;
pub mod tcpdump;
pub mod teach;
pub mod text;
