//! The sequence diagram of a connection in the terminal: an arrow per kept
//! step, labelled and remarked by the analyses (a probe's number, its fate)
//! or by its kind.

use super::FlowSteps;
use crate::analyses::registry::{FlowStep, Marks};
use crate::core::decode::flags;
use crate::core::tcp::{Kind, Side};
use crate::core::text::Secs;
use crate::core::time::Timestamp;
use crate::pipeline::summary::FlowSummary;
use std::fmt::Write as _;

/// What an arrow is labelled with.
pub fn label(s: &FlowStep) -> String {
    if let Some(l) = Marks::label(s) {
        return l;
    }
    match s.kind {
        Kind::KeepaliveAck => "keepalive ACK".to_string(),
        Kind::Syn => "SYN".to_string(),
        Kind::SynAck => "SYN-ACK".to_string(),
        Kind::HandshakeAck => "ACK".to_string(),
        Kind::Data => format!("data {} B", s.len),
        Kind::Ack => "ACK".to_string(),
        Kind::Duplicate => "(copy)".to_string(),
        Kind::Retransmission if s.flags & flags::FIN != 0 => "FIN (again)".to_string(),
        Kind::Retransmission => format!("retransmission {} B", s.len),
        Kind::Fin => "FIN".to_string(),
        Kind::Rst => "RST".to_string(),
        Kind::ZeroWindowProbe => "zero-window probe".to_string(),
        Kind::ZeroWindowProbeAck => "zero-window ACK".to_string(),
        Kind::ZeroWindow => "ACK, window 0".to_string(),
        Kind::WindowUpdate => "window update".to_string(),
        Kind::Keepalive => "keepalive probe".to_string(),
    }
}

/// What the right margin says about a step: an analysis's remark, else
/// the core's.
pub(super) fn remark(s: &FlowStep, all: &[FlowStep]) -> String {
    if let Some(r) = Marks::remark(s, all) {
        return r;
    }
    if s.injected {
        "injected by a middlebox, not the peer".to_string()
    } else if s.late {
        "after the end".to_string()
    } else {
        String::new()
    }
}

const INNER: usize = 46;

fn arrow(text: &str, right: bool, lost: bool) -> String {
    let text = format!(" {text} ");
    let tlen = text.chars().count().min(INNER - 4);
    let text: String = text.chars().take(tlen).collect();
    if lost {
        // Stops short of the other side: nothing arrived.
        let body = INNER - 8;
        let left = (body - tlen) / 2;
        let rest = body - tlen - left;
        let line = format!("{}{text}{}✗", "─".repeat(left), "─".repeat(rest));
        return if right {
            format!("{line}{}", " ".repeat(INNER - body - 1))
        } else {
            format!(
                "{}✗{}{text}{}",
                " ".repeat(INNER - body - 1),
                "─".repeat(rest),
                "─".repeat(left)
            )
        };
    }
    let body = INNER - 1;
    let left = (body - tlen) / 2;
    let rest = body - tlen - left;
    if right {
        format!("{}{text}{}▶", "─".repeat(left), "─".repeat(rest))
    } else {
        format!("◀{}{text}{}", "─".repeat(left), "─".repeat(rest))
    }
}

pub(super) fn gap(prev: Option<Timestamp>, ts: Timestamp) -> String {
    match prev {
        None => "0s".to_string(),
        Some(p) => format!("+{}", Secs(ts.since(p).max(0.0))),
    }
}

/// The sequence diagram of one flow, in the terminal.
pub fn diagram(f: &FlowSummary, fs: &FlowSteps) -> String {
    let (head, tail) = fs.ordered();
    let all: Vec<FlowStep> = head.iter().chain(tail.iter()).copied().collect();
    let mut o = String::new();
    let left = format!("client {}", f.client);
    let right = format!("server {}", f.server);
    let _ = writeln!(o, "flow {} sequence diagram", f.id);
    let _ = writeln!(
        o,
        "{:>9}  {left:<w$}{right}",
        "",
        w = (INNER + 2).saturating_sub(0).max(left.chars().count() + 2)
    );
    let _ = writeln!(o, "{:>9}  │{}│", "", " ".repeat(INNER));
    let mut prev: Option<Timestamp> = None;
    let emit = |o: &mut String, s: &FlowStep, prev: &mut Option<Timestamp>| {
        let lost = Marks::lost(s, &all);
        let a = arrow(&label(s), s.from == Side::Client, lost);
        let r = remark(s, &all);
        let line = format!("{:>9}  │{a}│  {r}", gap(*prev, s.ts));
        let _ = writeln!(o, "{}", line.trim_end());
        *prev = Some(s.ts);
    };
    for s in &head {
        emit(&mut o, s, &mut prev);
    }
    if fs.elided > 0 {
        let _ = writeln!(
            o,
            "{:>9}  │{:^w$}│",
            "",
            format!("⋮ {} more segments ⋮", fs.elided),
            w = INNER
        );
    }
    for s in &tail {
        emit(&mut o, s, &mut prev);
    }
    o.push('\n');
    o
}
