//! The pipeline: frames in, events out.
//!
//! source → decode → flows → classify → keepalive → report. The analyzer owns
//! the flow table and drives one [`Sink`] with a packet event per TCP segment
//! and a flow record per connection (when it ends, or at the end of input).
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

use crate::classify::{Kind, classify};
use crate::decode::{LinkType, Segment, Skip, decode, flags};
use crate::flows::{CloseKind, Flow, FlowTable, Side};
use crate::keepalive::Note;
use crate::report::{PacketEvent, Sink};
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

/// Most frames held back while learning a side's next sequence number.
pub const HOLD_FRAMES: usize = 4096;
/// Most capture time a frame is held back.
pub const HOLD_SECONDS: f64 = 10.0;

/// One captured frame, borrowed from the source.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// 1-based frame number in the input, counting every frame read.
    pub n: u64,
    pub ts: Timestamp,
    /// Bytes on the wire (the capture may hold fewer).
    pub len: u32,
    pub data: &'a [u8],
}

/// Counters for the summary record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub frames: u64,
    pub tcp_segments: u64,
    pub skipped: u64,
    pub flows: u64,
    pub not_ip: u64,
    pub not_tcp: u64,
    pub fragments: u64,
    pub truncated: u64,
    pub malformed: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Seconds a finished flow keeps absorbing late segments.
    pub linger: f64,
    /// Seconds of silence after which an open flow is reported and freed.
    pub idle_timeout: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            linger: 60.0,
            // Longer than Linux's default keepalive time (7200 s) plus its
            // probes, so a default-configured idle connection stays one flow.
            idle_timeout: 3.0 * 3600.0,
        }
    }
}

pub struct Analyzer<S: Sink> {
    link: LinkType,
    flows: FlowTable,
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
            flows: FlowTable::new(options.linger, options.idle_timeout),
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
            let dir = &mut flow.dir[side.idx()];
            dir.next = Some(next);
            dir.base.get_or_insert(next - 1);
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
        let flow = self.flows.lookup(&seg, frame.ts, |f| replaced = Some(f));
        if let Some(mut old) = replaced {
            // A new connection on the same 4-tuple: report the old one first.
            finish_flow(&mut old);
            self.sink.flow(&old)?;
        }
        self.stats.flows = self.stats.flows.max(u64::from(flow.id));
        let from = flow.side_of(&seg);
        let dir = &mut flow.dir[from.idx()];
        if dir.next.is_none()
            && !dir.held
            && seg.len == 0
            && !seg.has(flags::SYN | flags::FIN | flags::RST)
        {
            // Probe or plain ACK? Wait for a segment that tells.
            dir.held = true;
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
        let was_finished = flow.finished;
        let event = step(flow, frame, &seg);
        self.sink.packet(&event, flow)?;
        if flow.finished && !was_finished {
            let id = flow.id;
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
        self.flows.expire(now, |mut f| {
            finish_flow(&mut f);
            if result.is_ok() {
                result = sink.flow(&f);
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
        self.flows.drain(|mut f| {
            finish_flow(&mut f);
            if result.is_ok() {
                result = sink.flow(&f);
            }
        });
        result?;
        self.sink.finish(&self.stats)?;
        Ok(self.sink)
    }
}

fn finish_flow(flow: &mut Flow) {
    crate::middlebox::finish(flow);
    let last = flow.last_ts;
    if let Some(k) = &mut flow.keepalive {
        k.finish(last);
    }
}

/// Classifies one segment of `flow`, updates the flow, and describes it.
fn step<'a>(flow: &mut Flow, frame: &Frame, seg: &'a Segment<'a>) -> PacketEvent<'a> {
    let from = flow.side_of(seg);
    let kind = classify(flow, from, seg);
    // After a RST nothing belongs to the connection any more; after a FIN
    // exchange the last ACK still does.
    let late = flow.finished && matches!(flow.close, Some((CloseKind::Rst, _)));
    let first_close = flow.close.is_none() && seg.has(flags::FIN | flags::RST);
    let silence = if flow.packets == 0 {
        None
    } else {
        Some(frame.ts.since(flow.last_ts))
    };
    let s = from.idx();
    let injected = crate::middlebox::observe(flow, from, seg, kind, frame.ts, silence);
    let note = match (kind, &mut flow.keepalive) {
        (Kind::Keepalive, _) => flow.tracker().probe(s, frame.n, frame.ts, silence),
        (_, None) => Note::None,
        // A middlebox's RST is not the peer answering, nor the prober giving up.
        (Kind::Rst, Some(_)) if injected => Note::None,
        (Kind::Rst, Some(k)) => k.rst(s, frame.ts),
        (_, Some(k)) => {
            let answers = flow.dir[from.other().idx()]
                .probe
                .is_some_and(|p| !p.zero_window && seg.has(flags::ACK) && p.answered_by(seg.ack));
            let note = if answers {
                k.answered(s, frame.ts)
            } else {
                Note::None
            };
            if seg.seq_len() > 0 && kind != Kind::ZeroWindowProbe {
                k.resumed(s, frame.ts);
            }
            note
        }
    };
    let (td_seq, td_ack) = tcpdump_numbers(flow, from, seg);
    let http = http_step(flow, from, kind, seg, frame.ts);
    flow.update(from, seg, kind);
    flow.last_ts = frame.ts;
    let rel_ack = seg
        .has(flags::ACK)
        .then(|| flow.rel_seq(from.other(), seg.ack));
    PacketEvent {
        n: frame.n,
        ts: frame.ts,
        seg,
        flow_id: flow.id,
        from,
        kind,
        note,
        td_seq,
        td_ack,
        td_other_base: flow.td_base.map_or(0, |b| b[from.other().idx()]),
        rel_seq: flow.rel_seq(from, seg.seq),
        rel_ack,
        late,
        first_close,
        http,
        injected,
    }
}

/// Reads HTTP/1.x where the client's first bytes are a request line.
fn http_step(
    flow: &mut Flow,
    from: Side,
    kind: Kind,
    seg: &Segment,
    ts: Timestamp,
) -> Option<crate::http::HttpNote> {
    let payload =
        seg.len > 0 && !matches!(kind, Kind::Keepalive | Kind::ZeroWindowProbe | Kind::Rst);
    if payload && from == Side::Client && !flow.http_decided {
        flow.http_decided = true;
        if crate::http::looks_like_request(seg.payload) {
            flow.http = Some(Box::default());
        }
    }
    let h = flow.http.as_mut()?;
    let note = if payload {
        h.feed(from == Side::Client, seg.seq, seg.len, seg.payload, ts)
    } else {
        None
    };
    if seg.has(flags::FIN | flags::RST) {
        h.closed(ts);
    }
    note
}

/// The sequence and ACK numbers tcpdump prints (print-tcp.c): relative only
/// for segments with ACK set; the first such segment of a connection, and any
/// SYN-ACK, sets the bases (sender: its seq; other side: ack − 1) and prints
/// absolute numbers.
fn tcpdump_numbers(flow: &mut Flow, from: Side, seg: &Segment) -> (u32, u32) {
    let (seq, ack) = (seg.seq.0, seg.ack.0);
    if !seg.has(flags::ACK) {
        return (seq, ack);
    }
    let (me, other) = (from.idx(), from.other().idx());
    match flow.td_base {
        Some(b) if !seg.has(flags::SYN) => (seq.wrapping_sub(b[me]), ack.wrapping_sub(b[other])),
        _ => {
            let mut b = [0u32; 2];
            b[me] = seq;
            b[other] = ack.wrapping_sub(1);
            flow.td_base = Some(b);
            (seq, ack)
        }
    }
}
