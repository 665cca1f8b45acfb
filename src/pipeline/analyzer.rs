//! The pipeline: frames in, events out.
//!
//! source → decode → flows → classify → analyses → summary → report. The
//! analyzer owns the flow table (core TCP state plus each analysis's
//! per-flow state, see `registry`) and drives one [`Sink`] with a packet
//! event per TCP segment ([`step`]: classify, the facts every analysis
//! shares, the analyses, then the flow's update) and a flow summary per
//! connection (when it ends, expires, or at the end of input).
//!
//! Captures that start mid-connection: a side's next sequence number is
//! unknown until a later segment reveals it, and a bare segment from that
//! side is ambiguous (see `lookahead`). On a file, a lookahead pass run at
//! the first ambiguous segment settles every one of them exactly, however
//! far ahead the answer lies. On a live capture or a pipe, which cannot be
//! read twice, the analyzer holds back instead: a zero-byte ambiguous
//! segment is held, with every frame after it (so the output keeps capture
//! order), until a segment of the same flow reveals the next sequence
//! number, or [`HOLD_FRAMES`] frames or [`HOLD_SECONDS`] of capture time
//! have passed; then the held frames are analyzed in order. Either happens
//! at most once per side of a flow; Wireshark calls such probes "Dup ACK".
//! (Held back, a first one-byte segment is not held: it may be new data, and
//! a segment that advances the sequence space is never called a keepalive.
//! One-byte probes are then recognized from the second on.)

use crate::analyses::registry::PerFlow;
use crate::core::classify::classify;
use crate::core::clock::Clock;
use crate::core::decode::{LinkType, Segment, Skip, decode, flags};
use crate::core::flows::{Entry, Flow, FlowKey, FlowTable, Options};
use crate::core::seq::SeqNumber;
use crate::core::tcp::{CloseKind, Kind, Outstanding, Side};
use crate::core::time::Timestamp;
use crate::pipeline::event::{
    Frame, FrameSource, Next, PacketEvent, ReadEnd, Revision, Revisions, Sink, Stats, Why,
};
use crate::pipeline::lookahead::{Ambiguity, Hints, Recorder};
use crate::pipeline::summary::FlowSummary;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most frames held back while learning a side's next sequence number.
pub const HOLD_FRAMES: usize = 4096;
/// Most bytes of frames held back at once: a hold on a link of big frames
/// ends here rather than at HOLD_FRAMES (4096 × 256 KiB would be 1 GiB).
pub const HOLD_BYTES: usize = 16 << 20;
/// A provisional frame is a bare segment: its headers are what a revision
/// decodes again; more of a (padded, or hostile) frame is not kept.
const PROVISIONAL_BYTES: usize = 256;
/// Most capture time (live: wall time) a frame is held back; then it is
/// shown with what is known, and revised when later evidence tells.
pub const HOLD_SECONDS: f64 = 1.0;
/// Most provisional frames of one flow side kept for a revision.
const MAX_PROVISIONAL: usize = 64;

pub struct Analyzer<S: Sink> {
    link: LinkType,
    flows: FlowTable<PerFlow>,
    pub stats: Stats,
    sink: S,
    /// Frames held back, in capture order (see the module docs).
    held: VecDeque<OwnedFrame>,
    /// Bytes of the frames in `held`.
    held_bytes: usize,
    /// How many frames of each connection `held` has: a new hold looks
    /// among them for what settles it only when there are some (a scan of
    /// one bare segment per connection costs O(1) per frame, not a pass
    /// over the held frames).
    held_flows: FxHashMap<FlowKey, u32>,
    /// Flows a lookup pushed out, to report (empty between frames).
    ended: Vec<Entry<PerFlow>>,
    hold: Option<Ambiguity>,
    /// A held segment released without an answer: shown provisionally.
    unsettled: Option<Ambiguity>,
    learn: Learn,
    /// The capture clock (the end of the input, at the end): robust to
    /// stamps far from the rest.
    clock: Clock,
    /// `frame_at`: the clock as the caller keeps it (`shard`: the reader's
    /// clock over every frame, not only this shard's).
    given_now: Option<Timestamp>,
}

/// A lookahead pass over the same input, run once when needed.
pub type LookaheadPass = Box<dyn FnOnce() -> Option<Hints> + Send>;

/// How ambiguous segments of a capture started mid-connection are settled.
enum Learn {
    /// Live captures and pipes: hold frames back (bounded), then show them
    /// provisionally, by flow id, and revise them when later evidence tells.
    Hold(FxHashMap<u32, Provisional>),
    /// A file: a lookahead pass, run at the first ambiguous segment.
    Lookahead {
        pass: Option<LookaheadPass>,
        hints: Hints,
    },
    /// The lookahead pass itself: records what later segments reveal; no
    /// analyses, no output.
    Record(Recorder),
}

/// A frame copied out of the source's buffer while held back.
struct OwnedFrame {
    n: u64,
    ts: Timestamp,
    len: u32,
    data: Vec<u8>,
    /// Its connection, while held (counted in `held_flows`).
    key: Option<FlowKey>,
}

impl OwnedFrame {
    fn of(f: &Frame) -> OwnedFrame {
        OwnedFrame {
            n: f.n,
            ts: f.ts,
            len: f.len,
            data: f.data.to_vec(),
            key: None,
        }
    }

    /// The first [`PROVISIONAL_BYTES`] of a frame: its headers.
    fn headers(f: &Frame) -> OwnedFrame {
        OwnedFrame {
            n: f.n,
            ts: f.ts,
            len: f.len,
            data: f.data[..f.data.len().min(PROVISIONAL_BYTES)].to_vec(),
            key: None,
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

/// Segments of one flow side shown provisionally (as ACKs) while its next
/// sequence number was unknown; revised when a later segment shows they
/// were keepalive probes.
struct Provisional {
    side: Side,
    first: Ambiguity,
    /// The frames, with the silence before each.
    frames: Vec<(OwnedFrame, Option<f64>)>,
    /// The same segment came again a second or more later (the last resort,
    /// used when the flow is reported with nothing better).
    repeated: bool,
}

impl<S: Sink> Analyzer<S> {
    pub fn new(link: LinkType, options: Options, sink: S) -> Self {
        Analyzer {
            link,
            flows: FlowTable::new(options),
            stats: Stats::default(),
            sink,
            held: VecDeque::new(),
            held_bytes: 0,
            held_flows: FxHashMap::default(),
            ended: Vec::new(),
            hold: None,
            unsettled: None,
            learn: Learn::Hold(FxHashMap::default()),
            clock: Clock::default(),
            given_now: None,
        }
    }

    /// Settles ambiguous segments with `pass` (a second read of the same
    /// file) instead of holding frames back.
    pub fn with_lookahead(mut self, pass: LookaheadPass) -> Self {
        self.learn = Learn::Lookahead {
            pass: Some(pass),
            hints: Hints::default(),
        };
        self
    }

    /// Analyzes one frame.
    pub fn frame(&mut self, frame: &Frame) -> io::Result<()> {
        self.stats.frames += 1;
        if self.hold.is_none() && self.held.is_empty() {
            self.process(frame)?;
            return self.settle_new_hold();
        }
        let seg = decode(self.link, frame.data).ok();
        self.push_held(OwnedFrame::of(frame), seg.as_ref());
        if let Some(hold) = self.hold {
            let revealed = seg.as_ref().and_then(|s| hold.revealed_by(s));
            if revealed.is_some() || self.window_full(hold) {
                self.end_hold(hold, revealed)?;
            }
        }
        Ok(())
    }

    /// Analyzes one frame of a shard (`shard`): `now` is the capture clock
    /// after it, kept by the reader over every frame of the capture.
    pub fn frame_at(&mut self, frame: &Frame, now: Timestamp) -> io::Result<()> {
        self.given_now = Some(now);
        let r = self.frame(frame);
        self.given_now = None;
        r
    }

    /// A shard's sweep for connections that ended or went quiet, at the
    /// capture clock `now` (the reader asks for one whenever the clock
    /// enters a new second, as a single analyzer sweeps then).
    pub fn expire_at(&mut self, now: Timestamp) -> io::Result<()> {
        self.expire(now)
    }

    /// The sink, between frames (`shard` takes what its sink collected).
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Held frames: one more, at the back.
    fn push_held(&mut self, mut f: OwnedFrame, seg: Option<&Segment>) {
        f.key = seg.map(FlowKey::of);
        if let Some(key) = f.key {
            *self.held_flows.entry(key).or_insert(0) += 1;
        }
        self.held_bytes += f.data.len();
        self.held.push_back(f);
    }

    /// The front held frame, taken out to be analyzed.
    fn pop_held(&mut self) -> Option<OwnedFrame> {
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
    fn window_full(&self, hold: Ambiguity) -> bool {
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
    fn settle_new_hold(&mut self) -> io::Result<()> {
        match self.hold.and_then(|h| self.settles_at_once(h)) {
            Some((hold, revealed)) => self.end_hold(hold, revealed),
            None => Ok(()),
        }
    }

    /// Ends `hold` (revealed, or not: shown provisionally) and analyzes the
    /// held frames in order, until one begins another hold that the frames
    /// held behind it cannot settle.
    fn end_hold(&mut self, hold: Ambiguity, revealed: Option<Option<SeqNumber>>) -> io::Result<()> {
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
    fn settles_at_once(&self, hold: Ambiguity) -> Option<(Ambiguity, Option<Option<SeqNumber>>)> {
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
    fn release(&mut self) -> io::Result<()> {
        let Some(hold) = self.hold else {
            return Ok(());
        };
        self.end_hold(hold, None)
    }

    /// Ends the hold, teaching the held sender's flow its next sequence
    /// number when a later segment revealed it.
    fn teach(&mut self, revealed: Option<crate::core::seq::SeqNumber>) {
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
        let now = match self.given_now.take() {
            Some(now) => now,
            None => self.clock.frame(frame.ts),
        };
        self.expire(now)?;
        // Flows that make room: an old connection on the same 4-tuple, or
        // the oldest ones when the table is full (a reused buffer).
        let ended = &mut self.ended;
        let entry = self.flows.lookup(&seg, frame.ts, |e| ended.push(e));
        if !self.ended.is_empty() {
            for old in std::mem::take(&mut self.ended) {
                report(self.link, &mut self.learn, old, now, &mut self.sink)?;
            }
        }
        let flow = &mut entry.flow;
        self.stats.flows = self.stats.flows.max(u64::from(flow.id));
        let from = flow.side_of(&seg);
        let unknown = flow.dir[from.idx()].next.is_none() && !flow.held[from.idx()];
        match &mut self.learn {
            Learn::Hold(provisional) => {
                if !provisional.is_empty()
                    && let Some(p) = provisional.get_mut(&flow.id)
                {
                    match p.first.revealed_by(&seg) {
                        None => {
                            // The same bare segment again: still unsettled.
                            p.repeated |= p.first.repeated_by(&seg, frame.ts);
                            if from == p.side && p.frames.len() < MAX_PROVISIONAL {
                                let silence = frame.ts.since(flow.last_ts);
                                p.frames.push((OwnedFrame::headers(frame), Some(silence)));
                            }
                        }
                        Some(next) => {
                            let p = provisional.remove(&flow.id).expect("present");
                            if next == Some(p.first.seq + 1) {
                                let why = why(&p, &seg);
                                revise(self.link, entry, p, why, &mut self.sink)?;
                            }
                        }
                    }
                }
                let flow = &mut entry.flow;
                if unknown && seg.len == 0 && !seg.has(flags::SYN | flags::FIN | flags::RST) {
                    // Probe or plain ACK? Wait for a segment that tells.
                    flow.held[from.idx()] = true;
                    self.hold = Ambiguity::of(frame.n, frame.ts, &seg);
                    // At the front: the frames already held come after it.
                    let key = FlowKey::of(&seg);
                    *self.held_flows.entry(key).or_insert(0) += 1;
                    self.held_bytes += frame.data.len();
                    let mut f = OwnedFrame::of(frame);
                    f.key = Some(key);
                    self.held.push_front(f);
                    return Ok(());
                }
                if let Some(a) = self.unsettled.take_if(|a| a.n == frame.n) {
                    // Released unanswered: shown as it looks now, revised later.
                    let silence = (flow.packets > 0).then(|| frame.ts.since(flow.last_ts));
                    let first = Provisional {
                        side: from,
                        first: a,
                        frames: vec![(OwnedFrame::headers(frame), silence)],
                        repeated: false,
                    };
                    provisional.insert(flow.id, first);
                }
            }
            Learn::Lookahead { pass, hints } => {
                if unknown && Ambiguity::of(frame.n, frame.ts, &seg).is_some() {
                    flow.held[from.idx()] = true;
                    if let Some(pass) = pass.take() {
                        *hints = pass().unwrap_or_default();
                    }
                    if let Some(next) = hints.take(frame.n) {
                        flow.learn_next(from, next);
                    }
                }
            }
            Learn::Record(recorder) => {
                recorder.segment(&seg, frame.ts);
                if unknown && let Some(a) = Ambiguity::of(frame.n, frame.ts, &seg) {
                    flow.held[from.idx()] = true;
                    recorder.ambiguous(a);
                }
                // The core state only: flow identities and ends as the main
                // pass will see them.
                let was_finished = flow.finished;
                let kind = classify(flow, from, &seg);
                flow.update(from, &seg, kind, frame.ts);
                if flow.finished && !was_finished {
                    let id = flow.id;
                    self.flows.mark_finished(&seg, id, frame.ts);
                }
                return Ok(());
            }
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
        // A live capture goes on without packets: silence counts too.
        let now = self.clock.tick(now);
        if let Some(hold) = self.hold
            && now.since(hold.ts) > HOLD_SECONDS
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
        let (link, learn, sink) = (self.link, &mut self.learn, &mut self.sink);
        self.flows.expire(now, |e| {
            if result.is_ok() {
                result = report(link, learn, e, now, sink);
            }
        });
        result
    }

    /// Tells the sink how the run stands (SIGUSR1, `--stats-every`): the
    /// open connections are summarized from copies of their state.
    pub fn snapshot(&mut self) -> io::Result<()> {
        let now = self.clock.now();
        let mut open: Vec<FlowSummary> = self
            .flows
            .iter()
            .map(|e| summarize(e.clone(), now))
            .collect();
        open.sort_by_key(|f| f.id);
        self.sink.snapshot(&open, &self.stats)
    }

    /// Ends the input: every remaining flow is reported, then the summary.
    pub fn finish(self) -> io::Result<S> {
        let (now, outliers) = (self.clock.now(), self.clock.outliers);
        self.finish_at(now, outliers)
    }

    /// Ends the input at capture clock `now` (`shard`: the reader's), with
    /// the clock's count of outlying stamps.
    pub fn finish_at(mut self, now: Timestamp, outliers: u64) -> io::Result<S> {
        while self.hold.is_some() {
            self.release()?;
        }
        let mut result = Ok(());
        let (link, learn, sink) = (self.link, &mut self.learn, &mut self.sink);
        self.stats.time_outliers = outliers;
        self.flows.drain(|e| {
            if result.is_ok() {
                result = report(link, learn, e, now, sink);
            }
        });
        result?;
        self.sink.finish(&self.stats)?;
        Ok(self.sink)
    }
}

/// Reports a connection: provisional segments still waiting are settled
/// with the last resort (they came again: probes), then its summary.
fn report(
    link: LinkType,
    learn: &mut Learn,
    mut e: Entry<PerFlow>,
    now: Timestamp,
    sink: &mut impl Sink,
) -> io::Result<()> {
    match learn {
        Learn::Hold(provisional) => {
            if let Some(p) = provisional.remove(&e.flow.id)
                && p.repeated
            {
                revise(link, &mut e, p, Why::Repeated, sink)?;
            }
        }
        Learn::Record(recorder) => recorder.flow_ended(e.flow.client, e.flow.server),
        Learn::Lookahead { .. } => {}
    }
    sink.flow(&summarize(e, now))
}

/// The summary of a connection that is reported: its analyses finish.
fn summarize(mut e: Entry<PerFlow>, now: Timestamp) -> FlowSummary {
    let findings = e.state.finish(&e.flow, now);
    crate::pipeline::summary::summarize(&e.flow, findings)
}

/// Classifies one segment, runs the analyses on it, updates the flow, and
/// describes it.
fn step<'a>(
    entry: &mut Entry<PerFlow>,
    frame: &Frame<'a>,
    seg: &'a Segment<'a>,
) -> PacketEvent<'a> {
    let flow = &mut entry.flow;
    let from = flow.side_of(seg);
    let kind = classify(flow, from, seg);
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
        injected,
        answers_probe: answers_probe(flow, from, kind, seg),
        late,
    };
    let notes = entry.state.segment(&cx);
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
    }
}

/// Provisional segments of `entry` were keepalive probes, as `why` tells
/// (a segment not yet processed, or the flow's end): the flow learns its
/// next sequence number, the analyses count the probes, and the sink hears
/// of the revision before anything else of the flow.
fn revise(
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
fn why(p: &Provisional, seg: &Segment) -> Why {
    let from_sender = SocketAddr::new(seg.src, seg.sport) == p.first.sender;
    match (from_sender, seg.has(flags::RST)) {
        (false, _) => Why::PeerAck,
        (true, true) => Why::OwnRst,
        (true, false) => Why::OwnSegment,
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
    let analyzer = Analyzer::new(src.link(), options, sink);
    drive(src, analyzer, Controls::stop(stop))
}

/// What may ask a running analysis to stop or to show how it stands.
#[derive(Clone, Copy, Debug)]
pub struct Controls<'a> {
    /// Set by SIGINT / SIGTERM: stop reading, report what was read.
    pub stop: &'a AtomicBool,
    /// Set by SIGUSR1: show a snapshot (then cleared).
    pub show: Option<&'a AtomicBool>,
    /// `--stats-every`: a snapshot this often (wall-clock time).
    pub every: Option<std::time::Duration>,
    /// A file: stopping before its end leaves a partial analysis (a live
    /// capture or a pipe ends that way as a matter of course).
    pub partial_on_stop: bool,
    /// Also stop, quietly, when this is set (the output's reader is gone).
    pub quit: Option<&'a AtomicBool>,
}

impl<'a> Controls<'a> {
    /// Only a stop flag.
    pub fn stop(stop: &'a AtomicBool) -> Controls<'a> {
        Controls {
            stop,
            show: None,
            every: None,
            partial_on_stop: false,
            quit: None,
        }
    }
}

/// [`analyze`] with an analyzer already built (e.g. with a lookahead pass).
pub fn drive<S: Sink>(
    src: &mut impl FrameSource,
    mut analyzer: Analyzer<S>,
    controls: Controls,
) -> Result<(), ReadEnd> {
    let mut next_show = controls.every.map(|d| std::time::Instant::now() + d);
    let mut look = false;
    let watch = controls.show.is_some() || controls.every.is_some() || controls.quit.is_some();
    let read = loop {
        if controls.stop.load(Ordering::Relaxed) {
            analyzer.stats.interrupted = controls.partial_on_stop;
            break Ok(());
        }
        // A snapshot asked for, or the reader gone? Looked at every 256
        // frames, and when idle.
        if watch && look {
            if controls.quit.is_some_and(|q| q.load(Ordering::Relaxed)) {
                // Nobody reads what comes next: stop, report nothing more.
                return Ok(());
            }
            let asked = controls
                .show
                .is_some_and(|s| s.swap(false, Ordering::Relaxed));
            let due = next_show.is_some_and(|t| std::time::Instant::now() >= t);
            if asked || due {
                if let (Some(t), Some(every)) = (next_show.as_mut(), controls.every) {
                    *t = std::time::Instant::now() + every;
                }
                if let Err(e) = analyzer.snapshot() {
                    return Err(ReadEnd::Output(e));
                }
            }
        }
        let result = match src.next_frame() {
            Ok(Next::Frame(frame)) => {
                let r = analyzer.frame(&frame);
                look = analyzer.stats.frames.is_multiple_of(256);
                r
            }
            Ok(Next::Idle(Some(now))) => {
                look = true;
                analyzer.tick(now)
            }
            Ok(Next::Idle(None)) => {
                look = true;
                Ok(())
            }
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

/// A sink that keeps nothing (the lookahead pass).
struct Discard;

impl Sink for Discard {
    fn packet(&mut self, _: &PacketEvent) -> io::Result<()> {
        Ok(())
    }
    fn flow(&mut self, _: &FlowSummary) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _: &Stats) -> io::Result<()> {
        Ok(())
    }
}

/// The lookahead pass: reads `src` to its end (or to a damaged record: what
/// came before still counts) and records what later segments reveal about
/// every ambiguous segment (see `lookahead`).
pub fn lookahead(src: &mut impl FrameSource, options: Options) -> Hints {
    let mut a = Analyzer::new(src.link(), options, Discard);
    a.learn = Learn::Record(Recorder::default());
    while let Ok(Next::Frame(frame)) = src.next_frame() {
        // Discard never fails.
        let _ = a.frame(&frame);
        // Ctrl-C during the pass: stop it too (the main pass then stops at
        // once and says the analysis is partial).
        if a.stats.frames.is_multiple_of(4096)
            && (crate::host::signal::STOP.load(Ordering::Relaxed)
                || crate::host::signal::OUTPUT_GONE.load(Ordering::Relaxed))
        {
            break;
        }
    }
    match a.learn {
        Learn::Record(r) => r.finish(),
        _ => Hints::default(),
    }
}

/// The hold-back, through the whole pipeline from frames in memory.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{ACK, RST, tcp_packet};
    use crate::pipeline::event::MemorySource;

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
