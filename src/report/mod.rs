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

/// `1 flow`, `2 flows`: a count and a regular English noun.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
