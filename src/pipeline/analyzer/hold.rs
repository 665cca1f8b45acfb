//! The hold-back, for live captures and pipes (which cannot be read twice):
//! a zero-byte segment of a side whose next sequence number is unknown is
//! held, with every frame after it (so the output keeps capture order),
//! until a segment of the same flow reveals the next sequence number, or
//! `HOLD_FRAMES` frames, `HOLD_BYTES` bytes or `HOLD_SECONDS` of capture
//! time have passed; then the held frames are analyzed in order. A segment
//! released without an answer is shown provisionally and revised when later
//! evidence tells (`revise`).

use super::{Analyzer, HOLD_BYTES, HOLD_FRAMES, HOLD_SECONDS, PROVISIONAL_BYTES};
use crate::analyses::registry::PerFlow;
use crate::core::decode::{LinkType, Segment, decode, flags};
use crate::core::flows::{Entry, FlowKey};
use crate::core::seq::SeqNumber;
use crate::core::tcp::{Kind, Outstanding, Side};
use crate::core::time::Timestamp;
use crate::pipeline::event::{Frame, Revision, Revisions, Sink, Why};
use crate::pipeline::lookahead::Ambiguity;
use std::io;
use std::net::SocketAddr;

/// A frame copied out of the source's buffer while held back.
pub(super) struct OwnedFrame {
    pub(super) n: u64,
    pub(super) ts: Timestamp,
    pub(super) len: u32,
    pub(super) data: Vec<u8>,
    /// Its connection, while held (counted in `held_flows`).
    pub(super) key: Option<FlowKey>,
}

impl OwnedFrame {
    pub(super) fn of(f: &Frame) -> OwnedFrame {
        OwnedFrame {
            n: f.n,
            ts: f.ts,
            len: f.len,
            data: f.data.to_vec(),
            key: None,
        }
    }

    /// The first [`PROVISIONAL_BYTES`] of a frame: its headers.
    pub(super) fn headers(f: &Frame) -> OwnedFrame {
        OwnedFrame {
            n: f.n,
            ts: f.ts,
            len: f.len,
            data: f.data[..f.data.len().min(PROVISIONAL_BYTES)].to_vec(),
            key: None,
        }
    }

    pub(super) fn frame(&self) -> Frame<'_> {
        Frame {
            n: self.n,
            ts: self.ts,
            len: self.len,
            data: &self.data,
        }
    }
}

/// Segments of one flow side shown provisionally (as ACKs) while its next
/// sequence number was unknown; revised when a later segment shows they
/// were keepalive probes.
pub(super) struct Provisional {
    pub(super) side: Side,
    pub(super) first: Ambiguity,
    /// The frames, with the silence before each.
    pub(super) frames: Vec<(OwnedFrame, Option<f64>)>,
    /// The same segment came again a second or more later (the last resort,
    /// used when the flow is reported with nothing better).
    pub(super) repeated: bool,
}

impl<S: Sink> Analyzer<S> {
    /// Held frames: one more, at the back.
    pub(super) fn push_held(&mut self, mut f: OwnedFrame, seg: Option<&Segment>) {
        f.key = seg.map(FlowKey::of);
        if let Some(key) = f.key {
            *self.held_flows.entry(key).or_insert(0) += 1;
        }
        self.held_bytes += f.data.len();
        self.held.push_back(f);
    }

    /// The front held frame, taken out to be analyzed.
    pub(super) fn pop_held(&mut self) -> Option<OwnedFrame> {
        let f = self.held.pop_front()?;
        self.held_bytes -= f.data.len();
        if let Some(key) = f.key
            && let Some(n) = self.held_flows.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                self.held_flows.remove(&key);
            }
        }
        Some(f)
    }

    /// The frames held behind `hold` reach past the hold's bounds: it ends
    /// with nothing learned.
    pub(super) fn window_full(&self, hold: Ambiguity) -> bool {
        self.held.len() > HOLD_FRAMES
            || self.held_bytes >= HOLD_BYTES
            || self
                .held
                .back()
                .is_some_and(|b| b.ts.since(hold.ts) > HOLD_SECONDS)
    }

    /// A hold just began on the front held frame (`process` put it back):
    /// the frames already held behind it may settle it at once — a later
    /// segment of its connection that tells, or bounds already reached.
    pub(super) fn settle_new_hold(&mut self) -> io::Result<()> {
        match self.hold.and_then(|h| self.settles_at_once(h)) {
            Some((hold, revealed)) => self.end_hold(hold, revealed),
            None => Ok(()),
        }
    }

    /// Ends `hold` (revealed, or not: shown provisionally) and analyzes the
    /// held frames in order, until one begins another hold that the frames
    /// held behind it cannot settle.
    pub(super) fn end_hold(
        &mut self,
        hold: Ambiguity,
        revealed: Option<Option<SeqNumber>>,
    ) -> io::Result<()> {
        let mut next = Some((hold, revealed));
        while let Some((hold, revealed)) = next.take() {
            if revealed.is_none() {
                self.unsettled = Some(hold);
            }
            self.teach(revealed.flatten());
            while self.hold.is_none() {
                let Some(f) = self.pop_held() else { break };
                self.process(&f.frame())?;
                if let Some(h) = self.hold {
                    next = self.settles_at_once(h);
                    if next.is_none() {
                        return Ok(());
                    }
                    break;
                }
            }
        }
        Ok(())
    }

    /// How a hold that just began ends at once, if the frames held behind
    /// it settle it: a later segment of its connection that tells (looked
    /// for only when its connection has some), or bounds already reached.
    pub(super) fn settles_at_once(
        &self,
        hold: Ambiguity,
    ) -> Option<(Ambiguity, Option<Option<SeqNumber>>)> {
        let key = self.held.front()?.key?;
        if self.held_flows.get(&key).copied().unwrap_or(0) > 1 {
            let revealed = self.held.iter().skip(1).find_map(|f| {
                decode(self.link, &f.data)
                    .ok()
                    .and_then(|s| hold.revealed_by(&s))
            });
            if revealed.is_some() {
                return Some((hold, revealed));
            }
        }
        self.window_full(hold).then_some((hold, None))
    }

    /// Ends the hold without having learned anything (end of input, timeout).
    pub(super) fn release(&mut self) -> io::Result<()> {
        let Some(hold) = self.hold else {
            return Ok(());
        };
        self.end_hold(hold, None)
    }

    /// Ends the hold, teaching the held sender's flow its next sequence
    /// number when a later segment revealed it.
    pub(super) fn teach(&mut self, revealed: Option<crate::core::seq::SeqNumber>) {
        self.hold = None;
        if let Some(next) = revealed
            && let Some(first) = self.held.front()
            && let Ok(seg) = decode(self.link, &first.data)
            && let Some(flow) = self.flows.get_mut(&seg)
        {
            let side = flow.side_of(&seg);
            flow.learn_next(side, next);
        }
    }
}

/// Provisional segments of `entry` were keepalive probes, as `why` tells
/// (a segment not yet processed, or the flow's end): the flow learns its
/// next sequence number, the analyses count the probes, and the sink hears
/// of the revision before anything else of the flow.
pub(super) fn revise(
    link: LinkType,
    entry: &mut Entry<PerFlow>,
    p: Provisional,
    why: Why,
    sink: &mut impl Sink,
) -> io::Result<()> {
    let side = p.side;
    let flow = &mut entry.flow;
    flow.learn_next(side, p.first.seq + 1);
    let mut items = Vec::with_capacity(p.frames.len());
    for (f, silence) in &p.frames {
        let Ok(probe) = decode(link, &f.data) else {
            continue;
        };
        let cx = crate::analyses::Ctx {
            n: f.n,
            ts: f.ts,
            seg: &probe,
            from: side,
            kind: Kind::Keepalive,
            silence: *silence,
            // Held at the start of what the capture shows of this side:
            // the silence before it is the best account of its idle.
            heard: *silence,
            injected: false,
            answers_probe: false,
            late: false,
        };
        let notes = entry.state.revise(&cx);
        items.push(Revision {
            n: f.n,
            kind: Kind::Keepalive,
            notes,
        });
    }
    flow.dir[side.idx()].probe = Some(Outstanding {
        seq: p.first.seq,
        zero_window: false,
    });
    sink.revise(&Revisions {
        flow_id: flow.id,
        from: side,
        why,
        items: &items,
    })
}

/// What showed that provisional segments were probes.
pub(super) fn why(p: &Provisional, seg: &Segment) -> Why {
    let from_sender = SocketAddr::new(seg.src, seg.sport) == p.first.sender;
    match (from_sender, seg.has(flags::RST)) {
        (false, _) => Why::PeerAck,
        (true, true) => Why::OwnRst,
        (true, false) => Why::OwnSegment,
    }
}

/// The hold-back, through the whole pipeline from frames in memory.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flows::Options;
    use crate::craft::{ACK, RST, tcp_packet};
    use crate::pipeline::analyzer::{HOLD_BYTES, HOLD_FRAMES};
    use crate::pipeline::drive::analyze;
    use crate::pipeline::event::MemorySource;
    use crate::pipeline::event::{FrameSource, Next, PacketEvent, ReadEnd, Stats};
    use crate::pipeline::summary::FlowSummary;
    use std::sync::atomic::AtomicBool;

    const CLIENT: &str = "10.0.0.2:40000";
    const SERVER: &str = "10.0.0.1:5432";

    /// Frame numbers and kinds, in output order.
    #[derive(Default)]
    struct Kinds(Vec<(u64, Kind)>);

    impl Sink for Kinds {
        fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
            self.0.push((ev.n, ev.kind));
            Ok(())
        }
        fn flow(&mut self, _: &FlowSummary) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self, _: &Stats) -> io::Result<()> {
            Ok(())
        }
    }

    /// A bare segment (no payload) at `t` seconds.
    fn bare(t: f64, from_client: bool, flags: u8, seq: u32, ack: u32) -> (Timestamp, Vec<u8>) {
        let (c, s) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        let ts = Timestamp::new(1_700_000_000, 0).plus(t);
        (ts, tcp_packet(src, dst, flags, seq, ack, 512, &[]))
    }

    fn kinds(frames: Vec<(Timestamp, Vec<u8>)>) -> Vec<(u64, Kind)> {
        let mut sink = Kinds::default();
        let mut src = MemorySource::new(LinkType::Raw, frames);
        analyze(
            &mut src,
            Options::default(),
            &mut sink,
            &AtomicBool::new(false),
        )
        .unwrap();
        sink.0
    }

    #[test]
    fn first_probe_of_a_capture_started_during_idle_is_found_by_the_peers_ack() {
        let out = kinds(vec![
            bare(0.0, true, ACK, 999, 5000),
            bare(0.001, false, ACK, 5000, 1000),
            bare(75.0, true, ACK, 999, 5000),
        ]);
        assert_eq!(
            out,
            [
                (1, Kind::Keepalive),
                (2, Kind::KeepaliveAck),
                (3, Kind::Keepalive)
            ]
        );
    }

    #[test]
    fn first_probe_is_found_by_the_probers_own_rst() {
        let out = kinds(vec![
            bare(0.0, true, ACK, 999, 5000),
            bare(1.0, true, RST | ACK, 1000, 5000),
        ]);
        assert_eq!(out, [(1, Kind::Keepalive), (2, Kind::Rst)]);
    }

    #[test]
    fn a_first_bare_segment_at_next_is_a_plain_ack() {
        let out = kinds(vec![
            bare(0.0, true, ACK, 1000, 5000),
            bare(0.001, false, ACK, 5000, 1000),
        ]);
        assert_eq!(out, [(1, Kind::Ack), (2, Kind::Ack)]);
    }

    #[test]
    fn the_hold_keeps_capture_order_and_is_bounded_in_frames() {
        // Another connection's segments come between; after HOLD_FRAMES the
        // held segment is released unknown (a plain ACK), in order.
        let other: (std::net::SocketAddr, std::net::SocketAddr) =
            ("10.0.0.3:40001".parse().unwrap(), SERVER.parse().unwrap());
        let mut frames = vec![bare(0.0, true, ACK, 999, 5000)];
        for i in 0..HOLD_FRAMES as u32 {
            let ts = Timestamp::new(1_700_000_000, 0).plus(0.0001 * f64::from(i + 1));
            let data = tcp_packet(other.0, other.1, ACK, 7, 7 + i, 512, b"x");
            frames.push((ts, data));
        }
        frames.push(bare(0.9, false, ACK, 5000, 1000));
        let out = kinds(frames);
        assert_eq!(out.len(), HOLD_FRAMES + 2);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "capture order");
        assert_eq!(out[0], (1, Kind::Ack));
    }

    #[test]
    fn the_hold_is_bounded_in_bytes() {
        // Frames of 64 KiB after the held one: it is released after
        // HOLD_BYTES of them (256 frames), not HOLD_FRAMES.
        let other: (std::net::SocketAddr, std::net::SocketAddr) =
            ("10.0.0.3:40001".parse().unwrap(), SERVER.parse().unwrap());
        let big = vec![b'x'; 65_000];
        let mut frames = vec![bare(0.0, true, ACK, 999, 5000)];
        for i in 0..1000u32 {
            let ts = Timestamp::new(1_700_000_000, 0).plus(0.0001 * f64::from(i + 1));
            let data = tcp_packet(other.0, other.1, ACK, 7 + 65_000 * i, 7, 512, &big);
            frames.push((ts, data));
        }
        let read = std::cell::Cell::new(0u64);
        let mut sink = FirstOut {
            read: &read,
            at: None,
        };
        let mut src = Counting {
            inner: MemorySource::new(LinkType::Raw, frames),
            read: &read,
        };
        analyze(
            &mut src,
            Options::default(),
            &mut sink,
            &AtomicBool::new(false),
        )
        .unwrap();
        let released_after = sink.at.unwrap();
        assert!(
            released_after <= (HOLD_BYTES / 65_000 + 2) as u64,
            "released after {released_after} frames"
        );
    }

    /// A source that counts the frames read.
    struct Counting<'a> {
        inner: MemorySource,
        read: &'a std::cell::Cell<u64>,
    }

    impl FrameSource for Counting<'_> {
        fn link(&self) -> LinkType {
            self.inner.link()
        }
        fn next_frame(&mut self) -> Result<Next<'_>, ReadEnd> {
            self.read.set(self.read.get() + 1);
            self.inner.next_frame()
        }
    }

    /// How many frames had been read when the first packet came out.
    struct FirstOut<'a> {
        read: &'a std::cell::Cell<u64>,
        at: Option<u64>,
    }

    impl Sink for FirstOut<'_> {
        fn packet(&mut self, _: &PacketEvent) -> io::Result<()> {
            self.at.get_or_insert(self.read.get());
            Ok(())
        }
        fn flow(&mut self, _: &FlowSummary) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self, _: &Stats) -> io::Result<()> {
            Ok(())
        }
    }
}

/// Live captures and pipes: held at most HOLD_SECONDS, then shown
/// provisionally and revised.
#[cfg(test)]
mod revise_tests {
    use super::*;
    use crate::core::flows::Options;
    use crate::pipeline::event::{PacketEvent, Stats};
    use crate::pipeline::summary::FlowSummary;

    use crate::analyses::keepalive::Note;
    use crate::craft::{ACK, RST, tcp_packet};

    /// What a live text user would see: packets (n, kind) and revisions.
    #[derive(Default)]
    struct Seen {
        packets: Vec<(u64, Kind)>,
        revised: Vec<(u64, Kind, u32, Why)>,
    }

    impl Sink for Seen {
        fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
            self.packets.push((ev.n, ev.kind));
            Ok(())
        }
        fn revise(&mut self, r: &Revisions) -> io::Result<()> {
            for i in r.items {
                let number = match i.notes.keepalive {
                    Note::Probe { number, .. } => number,
                    _ => 0,
                };
                self.revised.push((i.n, i.kind, number, r.why));
            }
            Ok(())
        }
        fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
            assert_eq!(f.verdict, crate::pipeline::summary::Verdict::DeadPeer);
            assert_eq!(f.findings.keepalive.count, Some(2));
            Ok(())
        }
        fn finish(&mut self, _: &Stats) -> io::Result<()> {
            Ok(())
        }
    }

    fn at(t: f64) -> Timestamp {
        Timestamp::new(1_700_000_000, 0).plus(t)
    }

    fn probe(n: u64, t: f64, flags: u8, seq: u32) -> (u64, Timestamp, Vec<u8>) {
        let (c, s) = (
            "10.0.0.2:40000".parse().unwrap(),
            "10.0.0.1:5432".parse().unwrap(),
        );
        (n, at(t), tcp_packet(c, s, flags, seq, 5000, 512, &[]))
    }

    #[test]
    fn probes_held_a_second_are_shown_then_revised_when_the_rst_tells() {
        let mut seen = Seen::default();
        let mut a = Analyzer::new(LinkType::Raw, Options::default(), &mut seen);
        let frames = [
            probe(1, 0.0, ACK, 999),
            probe(2, 15.0, ACK, 999),
            probe(3, 30.0, RST | ACK, 1000),
        ];
        for (i, (n, ts, data)) in frames.iter().enumerate() {
            let f = Frame {
                n: *n,
                ts: *ts,
                len: data.len() as u32,
                data,
            };
            a.frame(&f).unwrap();
            if i == 0 {
                // Live: the capture wakes up 1.5 s later with nothing new.
                a.tick(at(1.5)).unwrap();
                assert_eq!(a.sink.packets, [(1, Kind::Ack)], "shown within the second");
            }
        }
        a.finish().unwrap();
        assert_eq!(
            seen.revised,
            [
                (1, Kind::Keepalive, 1, Why::OwnRst),
                (2, Kind::Keepalive, 2, Why::OwnRst)
            ]
        );
        assert_eq!(
            seen.packets,
            [(1, Kind::Ack), (2, Kind::Ack), (3, Kind::Rst)]
        );
    }

    #[test]
    fn repeated_probes_with_nothing_else_are_revised_as_a_last_resort_at_the_end() {
        // The capture ends before the RST: the same bare segment twice,
        // 75 s apart, nothing from the peer.
        #[derive(Default)]
        struct Revised(Vec<(u64, Why)>);
        impl Sink for Revised {
            fn packet(&mut self, _: &PacketEvent) -> io::Result<()> {
                Ok(())
            }
            fn revise(&mut self, r: &Revisions) -> io::Result<()> {
                self.0.extend(r.items.iter().map(|i| (i.n, r.why)));
                Ok(())
            }
            fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
                assert_eq!(f.findings.keepalive.probes, 2);
                assert_eq!(f.verdict, crate::pipeline::summary::Verdict::DeadPeer);
                Ok(())
            }
            fn finish(&mut self, _: &Stats) -> io::Result<()> {
                Ok(())
            }
        }
        let mut seen = Revised::default();
        let mut a = Analyzer::new(LinkType::Raw, Options::default(), &mut seen);
        for (n, ts, data) in [probe(1, 0.0, ACK, 999), probe(2, 75.0, ACK, 999)] {
            let f = Frame {
                n,
                ts,
                len: data.len() as u32,
                data: &data,
            };
            a.frame(&f).unwrap();
        }
        a.finish().unwrap();
        assert_eq!(seen.0, [(1, Why::Repeated), (2, Why::Repeated)]);
    }
}
