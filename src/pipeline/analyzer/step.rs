//! One segment through the core and the analyses: classified, the facts
//! every analysis shares computed once (`analyses::Ctx`), the analyses
//! run, the flow updated, and the packet event the sinks get.

use crate::analyses::registry::PerFlow;
use crate::core::classify::classify;
use crate::core::decode::{Segment, flags};
use crate::core::flows::{Entry, Flow};
use crate::core::tcp::{CloseKind, Kind, Side};
use crate::pipeline::event::{Frame, PacketEvent};

/// Classifies one segment, sent by `from`, runs the analyses on it,
/// updates the flow, and describes it.
pub(super) fn step<'a>(
    entry: &mut Entry<PerFlow>,
    from: Side,
    frame: &Frame<'a>,
    seg: &'a Segment<'a>,
) -> PacketEvent<'a> {
    let flow = &mut entry.flow;
    let kind = classify(flow, from, seg, frame.ts);
    // After a RST nothing belongs to the connection any more; after a FIN
    // exchange the last ACK still does.
    let late = flow.finished && matches!(flow.close, Some((CloseKind::Rst, _)));
    let first_close = flow.close.is_none() && seg.has(flags::FIN | flags::RST);
    let injected = flow.injected(from, seg);
    let cx = crate::analyses::Ctx {
        n: frame.n,
        ts: frame.ts,
        seg,
        from,
        kind,
        silence: (flow.packets > 0).then(|| frame.ts.since(flow.last_ts)),
        // Only a probe's idle needs it.
        heard: if kind == Kind::Keepalive {
            flow.dir[from.idx()].heard.until(frame.ts)
        } else {
            None
        },
        injected,
        answers_probe: answers_probe(flow, from, kind, seg),
        late,
    };
    // A copy the capture saw twice: no analysis sees it (it was sent once).
    let notes = if kind == Kind::Duplicate {
        Default::default()
    } else {
        entry.state.segment(&cx)
    };
    flow.update(from, seg, kind, frame.ts);
    PacketEvent {
        n: frame.n,
        ts: frame.ts,
        seg,
        frame: frame.data,
        wire_len: frame.len,
        flow_id: flow.id,
        from,
        kind,
        rel_seq: flow.rel_seq(from, seg.seq),
        rel_ack: seg
            .has(flags::ACK)
            .then(|| flow.rel_seq(from.other(), seg.ack)),
        late,
        first_close,
        injected: injected.then_some(flow.dir[from.idx()].ttl),
        notes,
        socket: None,
        reassembled: 0,
    }
}

/// Whether `seg` (not a RST, not a probe) acknowledges the other side's
/// outstanding keepalive probe.
fn answers_probe(flow: &Flow, from: Side, kind: Kind, seg: &Segment) -> bool {
    !matches!(kind, Kind::Rst | Kind::Keepalive)
        && seg.has(flags::ACK)
        && flow.dir[from.other().idx()]
            .probe
            .is_some_and(|p| !p.zero_window && p.answered_by(seg.ack))
}
