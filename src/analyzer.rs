//! The pipeline: frames in, events out.
//!
//! source → decode → flows → classify → analyses → summary → report. The
//! analyzer owns the flow table (core TCP state plus each analysis's
//! per-flow state, see `registry`) and drives one [`Sink`] with a packet
//! event per TCP segment ([`step`]: classify, the facts every analysis
//! shares, the analyses, then the flow's update) and a flow summary per
//! connection (when it ends, expires, or at the end of input).
//!
//! Holding back: when a capture starts mid-connection, a side's next sequence
//! number is unknown until a later segment reveals it (the peer's ACK number,
//! or the side's own next data or RST), and a bare zero-byte segment from
//! that side could be a keepalive probe or a plain ACK. Such a segment
//! is held, with every frame after it (so the output keeps capture order),
//! until a segment of the same flow reveals the next sequence number, or
//! [`HOLD_FRAMES`] frames or [`HOLD_SECONDS`] of capture time have passed;
//! then the held frames are analyzed in order. This happens at most once per
//! side of a flow; a capture that starts during an idle period gets its first
//! probe right, where Wireshark calls the later ones "Dup ACK". (A first
//! one-byte segment is not held: it may be new data, and a segment that
//! advances the sequence space is never called a keepalive. One-byte probes
//! are recognized from the second on.)

use crate::classify::classify;
use crate::decode::{LinkType, Segment, Skip, decode, flags};
use crate::event::{Frame, FrameSource, Next, PacketEvent, ReadEnd, Sink, Stats};
use crate::flows::{Entry, Flow, FlowTable, Options};
use crate::registry::PerFlow;
use crate::summary::FlowSummary;
use crate::tcp::{CloseKind, Kind, Side};
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most frames held back while learning a side's next sequence number.
pub const HOLD_FRAMES: usize = 4096;
/// Most capture time a frame is held back.
pub const HOLD_SECONDS: f64 = 10.0;

pub struct Analyzer<S: Sink> {
    link: LinkType,
    flows: FlowTable<PerFlow>,
    pub stats: Stats,
    sink: S,
    /// Frames held back, in capture order (see the module docs).
    held: VecDeque<OwnedFrame>,
    hold: Option<Hold>,
}

/// A frame copied out of the source's buffer while held back.
struct OwnedFrame {
    n: u64,
    ts: Timestamp,
    len: u32,
    data: Vec<u8>,
}

impl OwnedFrame {
    fn of(f: &Frame) -> OwnedFrame {
        OwnedFrame {
            n: f.n,
            ts: f.ts,
            len: f.len,
            data: f.data.to_vec(),
        }
    }

    fn frame(&self) -> Frame<'_> {
        Frame {
            n: self.n,
            ts: self.ts,
            len: self.len,
            data: &self.data,
        }
    }
}

/// The segment a hold waits to understand.
#[derive(Clone, Copy)]
struct Hold {
    sender: SocketAddr,
    receiver: SocketAddr,
    seq: crate::seq::SeqNumber,
    since: Timestamp,
}

impl<S: Sink> Analyzer<S> {
    pub fn new(link: LinkType, options: Options, sink: S) -> Self {
        Analyzer {
            link,
            flows: FlowTable::new(options),
            stats: Stats::default(),
            sink,
            held: VecDeque::new(),
            hold: None,
        }
    }

    /// Analyzes one frame.
    pub fn frame(&mut self, frame: &Frame) -> io::Result<()> {
        self.stats.frames += 1;
        if self.hold.is_none() {
            return self.process(frame);
        }
        self.drain(VecDeque::from([OwnedFrame::of(frame)]))
    }

    /// Feeds frames in order while a hold may be on: each frame joins the
    /// held ones and may end the hold; a released hold's frames are
    /// analyzed before the rest (and may start another hold).
    fn drain(&mut self, mut pending: VecDeque<OwnedFrame>) -> io::Result<()> {
        while let Some(f) = pending.pop_front() {
            let Some(hold) = self.hold else {
                self.process(&f.frame())?;
                continue;
            };
            let revealed = self.reveals(&hold, &f.frame());
            let expired = self.held.len() >= HOLD_FRAMES || f.ts.since(hold.since) > HOLD_SECONDS;
            self.held.push_back(f);
            if revealed.is_some() || expired {
                self.teach(revealed.flatten());
                let mut first = std::mem::take(&mut self.held);
                first.append(&mut pending);
                pending = first;
            }
        }
        Ok(())
    }

    /// Ends the hold without having learned anything (end of input, timeout).
    fn release(&mut self) -> io::Result<()> {
        if self.hold.take().is_none() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        self.drain(held)
    }

    /// What `frame` says about the held sender's next sequence number.
    /// `None`: keep holding; `Some(None)`: stop holding, nothing learned;
    /// `Some(Some(next))`: the sender's next sequence number.
    fn reveals(&self, hold: &Hold, frame: &Frame) -> Option<Option<crate::seq::SeqNumber>> {
        let seg = decode(self.link, frame.data).ok()?;
        let from = SocketAddr::new(seg.src, seg.sport);
        let to = SocketAddr::new(seg.dst, seg.dport);
        if from == hold.receiver && to == hold.sender && seg.has(flags::ACK) {
            return Some(Some(seg.ack));
        }
        if from != hold.sender || to != hold.receiver {
            return None;
        }
        if seg.has(flags::RST) {
            // Linux resets at its next sequence number (one above a probe);
            // any other RST sequence number says nothing to trust.
            let plausible = seg.seq == hold.seq || seg.seq == hold.seq + 1;
            return Some(plausible.then_some(seg.seq));
        }
        let informative = seg.seq != hold.seq || seg.len > 0 || seg.has(flags::SYN | flags::FIN);
        informative.then_some(Some(seg.seq))
    }

    /// Ends the hold, teaching the held sender's flow its next sequence
    /// number when a later segment revealed it.
    fn teach(&mut self, revealed: Option<crate::seq::SeqNumber>) {
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

    fn process(&mut self, frame: &Frame) -> io::Result<()> {
        let seg = match decode(self.link, frame.data) {
            Ok(seg) => seg,
            Err(skip) => {
                self.skip(skip);
                return Ok(());
            }
        };
        self.expire(frame.ts)?;
        let mut replaced = None;
        let entry = self.flows.lookup(&seg, frame.ts, |e| replaced = Some(e));
        if let Some(old) = replaced {
            // A new connection on the same 4-tuple: report the old one first.
            self.sink.flow(&summarize(old))?;
        }
        let flow = &mut entry.flow;
        self.stats.flows = self.stats.flows.max(u64::from(flow.id));
        let from = flow.side_of(&seg);
        if flow.dir[from.idx()].next.is_none()
            && !flow.held[from.idx()]
            && seg.len == 0
            && !seg.has(flags::SYN | flags::FIN | flags::RST)
        {
            // Probe or plain ACK? Wait for a segment that tells.
            flow.held[from.idx()] = true;
            self.hold = Some(Hold {
                sender: SocketAddr::new(seg.src, seg.sport),
                receiver: SocketAddr::new(seg.dst, seg.dport),
                seq: seg.seq,
                since: frame.ts,
            });
            self.held.push_back(OwnedFrame::of(frame));
            return Ok(());
        }
        self.stats.tcp_segments += 1;
        let was_finished = entry.flow.finished;
        let event = step(entry, frame, &seg);
        self.sink.packet(&event)?;
        if entry.flow.finished && !was_finished {
            let id = entry.flow.id;
            self.flows.mark_finished(&seg, id, frame.ts);
        }
        Ok(())
    }

    /// A live capture woke up without a packet at wall-clock `now`: ends a
    /// hold that has waited too long and reports flows that expired.
    pub fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        if let Some(hold) = self.hold
            && now.since(hold.since) > HOLD_SECONDS
        {
            self.release()?;
        }
        if self.hold.is_none() {
            self.expire(now)?;
        }
        Ok(())
    }

    fn skip(&mut self, skip: Skip) {
        self.stats.skipped += 1;
        match skip {
            Skip::NotIp => self.stats.not_ip += 1,
            Skip::NotTcp => self.stats.not_tcp += 1,
            Skip::Fragment => self.stats.fragments += 1,
            Skip::Truncated => self.stats.truncated += 1,
            Skip::Malformed => self.stats.malformed += 1,
        }
    }

    fn expire(&mut self, now: Timestamp) -> io::Result<()> {
        let mut result = Ok(());
        let sink = &mut self.sink;
        self.flows.expire(now, |e| {
            if result.is_ok() {
                result = sink.flow(&summarize(e));
            }
        });
        result
    }

    /// Ends the input: every remaining flow is reported, then the summary.
    pub fn finish(mut self) -> io::Result<S> {
        while self.hold.is_some() {
            self.release()?;
        }
        let mut result = Ok(());
        let sink = &mut self.sink;
        self.flows.drain(|e| {
            if result.is_ok() {
                result = sink.flow(&summarize(e));
            }
        });
        result?;
        self.sink.finish(&self.stats)?;
        Ok(self.sink)
    }
}

/// The summary of a connection that is reported: its analyses finish.
fn summarize(mut e: Entry<PerFlow>) -> FlowSummary {
    let findings = e.state.finish(&e.flow);
    FlowSummary::new(&e.flow, findings)
}

/// Classifies one segment, runs the analyses on it, updates the flow, and
/// describes it.
fn step<'a>(entry: &mut Entry<PerFlow>, frame: &Frame, seg: &'a Segment<'a>) -> PacketEvent<'a> {
    let flow = &mut entry.flow;
    let from = flow.side_of(seg);
    let kind = classify(flow, from, seg);
    // After a RST nothing belongs to the connection any more; after a FIN
    // exchange the last ACK still does.
    let late = flow.finished && matches!(flow.close, Some((CloseKind::Rst, _)));
    let first_close = flow.close.is_none() && seg.has(flags::FIN | flags::RST);
    let injected = flow.injected(from, seg);
    let cx = crate::analysis::Ctx {
        n: frame.n,
        ts: frame.ts,
        seg,
        from,
        kind,
        silence: (flow.packets > 0).then(|| frame.ts.since(flow.last_ts)),
        injected,
        answers_probe: answers_probe(flow, from, kind, seg),
    };
    let notes = entry.state.segment(&cx);
    flow.update(from, seg, kind, frame.ts);
    PacketEvent {
        n: frame.n,
        ts: frame.ts,
        seg,
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

/// Reads `src` through the analyzer until its end, an output error or
/// `stop`, then reports every flow and the summary (also when reading ended
/// early: a truncated file, Ctrl-C).
pub fn analyze<S: Sink>(
    src: &mut impl FrameSource,
    options: Options,
    sink: S,
    stop: &AtomicBool,
) -> Result<(), ReadEnd> {
    let mut analyzer = Analyzer::new(src.link(), options, sink);
    let read = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let result = match src.next_frame() {
            Ok(Next::Frame(frame)) => analyzer.frame(&frame),
            Ok(Next::Idle(Some(now))) => analyzer.tick(now),
            Ok(Next::Idle(None)) => Ok(()),
            Ok(Next::End) => break Ok(()),
            Err(e) => break Err(e),
        };
        if let Err(e) = result {
            return Err(ReadEnd::Output(e));
        }
    };
    analyzer.finish().map_err(ReadEnd::Output)?;
    read
}
