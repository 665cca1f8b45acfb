//! The flow summary: one typed record per connection, computed once when the
//! connection is reported, with its one verdict (`registry::verdict`) and
//! the facts the analyses share. Every report reads this; none decides a
//! verdict of its own.

pub use crate::analyses::event::Close;
use crate::analyses::event::Summary;
pub use crate::analyses::registry::FlowSummary;
use crate::analyses::registry::{Findings, verdict};
pub use crate::analyses::verdict::Verdict;
use crate::core::flows::Flow;
use crate::core::tcp::CloseKind;

/// Summarizes `flow` with its analyses' findings.
pub fn summarize(flow: &Flow, findings: Findings) -> FlowSummary {
    Summary {
        id: flow.id,
        client: flow.client,
        server: flow.server,
        first_ts: flow.first_ts,
        last_ts: flow.last_ts,
        packets: flow.packets,
        handshake: flow.handshake(),
        close: match flow.close {
            Some((CloseKind::Fin, side)) => Close::Fin(side),
            Some((CloseKind::Rst, side)) => Close::Rst(side),
            None => Close::Open,
        },
        verdict: verdict(&findings, flow.close.is_some()),
        shared: findings.share(),
        findings,
        sockets: None,
        kernel: None,
    }
}
