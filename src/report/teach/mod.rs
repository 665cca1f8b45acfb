//! Teaching: `--explain` (a plain-language account of each connection, tied
//! to TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT), `--diagram` (a sequence
//! diagram in the terminal) and `--diagram-svg` (the same, for a browser).
//! The accounts are the analyses' own (`Describe::context`, `::account`);
//! here they are put in order, with what only the core and the host know:
//! the joined sockets, a receiver's zero window.

mod diagram;
mod recorder;
mod svg;

pub use diagram::{diagram, label};
pub use recorder::{FlowSteps, LINE_HEAD, Recorder};
pub use svg::{svg, svg_of};

use crate::analyses::registry::{Findings, FlowStep};
use crate::core::tcp::Kind;
use crate::core::text::Secs;
use crate::pipeline::summary::FlowSummary;
use std::fmt::Write as _;

/// The plain-language account of one flow: a heading, what each analysis
/// saw, the sockets on this host, a stalled receiver, then the account of
/// how it fared (its verdict's analysis's).
pub fn explain(f: &FlowSummary, steps: &[FlowStep]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "flow {}: {} → {} — {}",
        f.id,
        f.client,
        f.server,
        f.verdict.as_str()
    );
    let mut account = String::new();
    Findings::explain(f, steps, &mut o, &mut account);
    if let Some(j) = f.sockets.as_deref() {
        for (end, s) in [("client", &j.client), ("server", &j.server)] {
            if let Some(s) = s {
                let _ = writeln!(
                    o,
                    "  On this host, the {end} end is {}.",
                    crate::host::sockets::join::describe(s)
                );
            }
        }
        for check in Findings::checks(f) {
            let _ = writeln!(o, "  Checked against it: {check}.");
        }
    }
    zero_window_stall(&mut o, steps);
    o.push_str(&account);
    o
}

/// A receiver that stopped reading: flow control, not keepalive.
fn zero_window_stall(o: &mut String, steps: &[FlowStep]) {
    let mut zero = steps.iter().filter(|s| s.kind == Kind::ZeroWindow);
    let Some(first) = zero.next() else {
        return;
    };
    let times = 1 + zero.count();
    let (who, peer) = (first.from.name(), first.from.other().name());
    let probed = steps
        .iter()
        .any(|s| s.kind == Kind::ZeroWindowProbe && s.from == first.from.other());
    let reopened = steps
        .iter()
        .find(|s| s.kind == Kind::WindowUpdate && s.from == first.from && s.ts >= first.ts)
        .map_or_else(
            || "; no window update was seen after it".to_string(),
            |u| format!("; the window reopened {} later", Secs(u.ts.since(first.ts))),
        );
    let _ = writeln!(
        o,
        "  The {who} advertised a zero window{}: its receive buffer was full because its application \
         was not reading, so the {peer} had to wait{}{reopened}. This is flow control, not keepalive: a \
         stalled receiver is alive, and keepalive does not probe while data waits to be sent.",
        if times == 1 {
            String::new()
        } else {
            format!(" {times} times")
        },
        if probed {
            " and asked with zero-window probes"
        } else {
            ""
        }
    );
}
