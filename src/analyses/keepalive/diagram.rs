//! What the keepalive analysis draws: each probe's arrow label and the
//! diagram's remark on it, its mark in the HTML report, and how it fared
//! (answered, answered out of the capture's sight, reset, unanswered; an
//! answer the prober never heard).

use super::{Keepalive, Note};
use crate::analyses::describe::MarkOf;
use crate::analyses::event::Step;
use crate::core::tcp::{Kind, Side};
use crate::core::text::Secs;

/// A probe's arrow label.
pub(super) fn label<M: MarkOf<Keepalive>>(s: &Step<M>) -> Option<String> {
    match (s.kind, *s.marks.mark()) {
        (Kind::Keepalive, Note::Probe { ordinal, .. }) => {
            Some(format!("keepalive probe #{ordinal}"))
        }
        _ => None,
    }
}

/// What the diagram's right margin says about a probe, its answer, the
/// peer's RST and the prober's.
pub(super) fn remark<M: MarkOf<Keepalive>>(s: &Step<M>, all: &[Step<M>]) -> Option<String> {
    Some(match *s.marks.mark() {
        Note::Probe { .. } => match fate(all, s) {
            Fate::Answered => String::new(),
            Fate::Missed => "answer not in the capture".to_string(),
            Fate::Reset => "answered by RST".to_string(),
            Fate::Unanswered => "unanswered".to_string(),
        },
        Note::ProbeAnswered { ordinal, rtt, .. } if unheard(all, s.from.other(), ordinal) => {
            format!(
                "answered ({}), never reached the {}",
                Secs(rtt),
                s.from.other().name()
            )
        }
        Note::ProbeAnswered { rtt, .. } => format!("alive ({})", Secs(rtt)),
        Note::PeerReset { .. } => "peer lost the connection".to_string(),
        Note::GaveUp { count, .. } => format!("gave up after {count} probes: ETIMEDOUT"),
        Note::None => return None,
    })
}

/// A probe nothing answered, and an answer that never reached its prober
/// (acks-dropped): the arrow stops short at a ✗.
pub(super) fn lost<M: MarkOf<Keepalive>>(s: &Step<M>, all: &[Step<M>]) -> bool {
    match *s.marks.mark() {
        Note::ProbeAnswered { ordinal, .. } => unheard(all, s.from.other(), ordinal),
        _ => s.kind == Kind::Keepalive && fate(all, s) == Fate::Unanswered,
    }
}

/// A probe's mark in the HTML report: its fate by shape.
pub(super) fn shape<M: MarkOf<Keepalive>>(s: &Step<M>, all: &[Step<M>]) -> Option<&'static str> {
    if s.kind != Kind::Keepalive {
        return None;
    }
    let replied = |rst: bool| {
        all.iter().any(|a| match *a.marks.mark() {
            Note::PeerReset { reply_to, .. } => rst && reply_to == s.n,
            Note::ProbeAnswered { reply_to, .. } => !rst && reply_to == s.n,
            _ => false,
        })
    };
    Some(if replied(true) {
        "probe-rst"
    } else if replied(false) {
        "probe-ok"
    } else {
        "probe-lost"
    })
}

/// How a probe fared, looking at what followed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    Answered,
    /// Answered: the prober's next probe shows it (the capture missed it).
    Missed,
    Reset,
    Unanswered,
}

pub(super) fn fate<M: MarkOf<Keepalive>>(steps: &[Step<M>], probe: &Step<M>) -> Fate {
    let ordinal = match *probe.marks.mark() {
        Note::Probe { ordinal, .. } => ordinal,
        _ => 0,
    };
    for s in steps {
        match *s.marks.mark() {
            Note::ProbeAnswered { reply_to, .. } if reply_to == probe.n => return Fate::Answered,
            Note::PeerReset { reply_to, .. } if reply_to == probe.n => return Fate::Reset,
            Note::Probe {
                ordinal: o,
                missed: true,
                ..
            } if s.from == probe.from && o == ordinal + 1 => return Fate::Missed,
            _ => {}
        }
    }
    Fate::Unanswered
}

/// Whether the answer to `prober`'s probe `ordinal` never reached it: its
/// next probe's TS ecr did not move, or it gave up right after.
fn unheard<M: MarkOf<Keepalive>>(steps: &[Step<M>], prober: Side, ordinal: u32) -> bool {
    steps.iter().any(|s| {
        s.from == prober
            && match *s.marks.mark() {
                Note::Probe {
                    ordinal: o,
                    unheard: true,
                    ..
                } => o == ordinal + 1,
                Note::GaveUp {
                    ordinal: o,
                    unheard: true,
                    ..
                } => o == ordinal,
                _ => false,
            }
    })
}
