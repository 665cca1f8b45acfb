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

use crate::core::flows::{Entry, FlowKey, FlowTable, Options};
use crate::core::frag::{Fate, Reassembler};
use crate::core::tcp::Kind;
use crate::core::time::Timestamp;
use crate::pipeline::event::{
    Frame, FrameSource, Next, PacketEvent, Revision, Revisions, Sink, Stats, Why,
};
use crate::pipeline::lookahead::{Ambiguity, Hints, Recorder};
use crate::pipeline::summary::FlowSummary;
use std::sync::atomic::Ordering;

mod fragment;
mod hold;
mod step;

use crate::core::keyed::KeyedMap;
use hold::{OwnedFrame, Provisional, revise, why};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::io;
use step::step;

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
    held_flows: KeyedMap<FlowKey, u32>,
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
    /// IP fragments of TCP datagrams, reassembled here; or (`shard`) as
    /// the reader reassembled them: its fate for the frame, and the
    /// datagram a completing fragment completed.
    frag: Reassembler,
    told: Option<Fate>,
    datagram: Vec<u8>,
}

/// The lookahead pass over the same input, run once when needed.
pub use crate::pipeline::lookahead::Pass as LookaheadPass;
use crate::pipeline::lookahead::Run as LookaheadRun;

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

impl<S: Sink> Analyzer<S> {
    pub fn new(link: LinkType, options: Options, sink: S) -> Self {
        Analyzer {
            link,
            flows: FlowTable::new(options),
            stats: Stats::default(),
            sink,
            held: VecDeque::new(),
            held_bytes: 0,
            held_flows: KeyedMap::default(),
            ended: Vec::new(),
            hold: None,
            unsettled: None,
            learn: Learn::Hold(FxHashMap::default()),
            clock: Clock::default(),
            given_now: None,
            frag: Reassembler::default(),
            told: None,
            datagram: Vec::new(),
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

    /// The lookahead pass's analyzer: it records what later segments
    /// reveal (`hints`), with the core state only.
    pub(crate) fn recording(link: LinkType, options: Options, sink: S) -> Self {
        let mut a = Analyzer::new(link, options, sink);
        a.learn = Learn::Record(Recorder::default());
        a
    }

    /// What the lookahead pass learnt.
    pub(crate) fn hints(self) -> Hints {
        match self.learn {
            Learn::Record(r) => r.finish(),
            _ => Hints::default(),
        }
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

    /// A shard's next frame is an IP fragment the reader reassembled
    /// (`shard`): its fate, and the datagram it completed, if it did.
    pub fn tell(&mut self, fate: Fate, datagram: &[u8]) {
        self.told = Some(fate);
        self.datagram.clear();
        self.datagram.extend_from_slice(datagram);
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

    fn process(&mut self, frame: &Frame) -> io::Result<()> {
        // The datagram a segment reassembled from IP fragments is in.
        let datagram;
        let (seg, reassembled) = match decode(self.link, frame.data) {
            Ok(seg) => (seg, 0),
            Err(Skip::Fragment) => {
                let Some((count, link)) = self.fragment(frame)? else {
                    return Ok(());
                };
                datagram = std::mem::take(&mut self.datagram);
                let Ok(mut seg) = decode(LinkType::Raw, &datagram) else {
                    return Ok(());
                };
                seg.link = link;
                (seg, count)
            }
            Err(skip) => {
                self.skip(skip);
                return Ok(());
            }
        };
        self.segment(frame, seg, reassembled)
    }

    /// A TCP segment (`reassembled`: from that many IP fragments).
    #[inline(always)]
    fn segment(&mut self, frame: &Frame, seg: Segment, reassembled: u16) -> io::Result<()> {
        let now = match self.given_now.take() {
            Some(now) => now,
            None => self.clock.frame(frame.ts),
        };
        self.expire(now)?;
        // Flows that make room: an old connection on the same 4-tuple, or
        // the oldest ones when the table is full (a reused buffer).
        let ended = &mut self.ended;
        let (entry, from) = self.flows.lookup(&seg, frame.ts, |e| ended.push(e));
        if !self.ended.is_empty() {
            for old in std::mem::take(&mut self.ended) {
                report(self.link, &mut self.learn, old, now, &mut self.sink)?;
            }
        }
        let flow = &mut entry.flow;
        self.stats.flows = self.stats.flows.max(u64::from(flow.id));
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
                        *hints = pass.run().unwrap_or_default();
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
                let kind = classify(flow, from, &seg, frame.ts);
                flow.update(from, &seg, kind, frame.ts);
                if flow.finished && !was_finished {
                    let id = flow.id;
                    self.flows.mark_finished(&seg, id, now);
                }
                return Ok(());
            }
        }
        self.stats.tcp_segments += 1;
        let was_finished = entry.flow.finished;
        let mut event = step(entry, from, frame, &seg);
        event.reassembled = reassembled;
        self.sink.packet(&event)?;
        if let Some(r) = entry.state.relabel(&event.notes) {
            let items = r.items.map(|(n, notes)| Revision {
                n,
                kind: Kind::Data,
                notes,
            });
            self.sink.revise(&Revisions {
                flow_id: entry.flow.id,
                from: r.from,
                why: Why::Rhythm,
                items: &items,
            })?;
        }
        if entry.flow.finished && !was_finished {
            let id = entry.flow.id;
            self.flows.mark_finished(&seg, id, now);
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

    /// Per packet: a comparison; once per second of capture time, the
    /// sweep (out of line: the per-packet path stays small).
    #[inline(always)]
    fn expire(&mut self, now: Timestamp) -> io::Result<()> {
        if !self.flows.due(now) {
            return Ok(());
        }
        self.sweep(now)
    }

    #[inline(never)]
    fn sweep(&mut self, now: Timestamp) -> io::Result<()> {
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
        self.frag.finish();
        self.stats.frag.add(&self.frag.counts);
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

impl LookaheadPass {
    /// Reads the source again to its end; `None` when it cannot be.
    pub fn run(self) -> Option<Hints> {
        match self.0 {
            LookaheadRun::Read { source, options } => {
                let mut src = source.reread()?;
                Some(read_ahead(&mut *src, options))
            }
            LookaheadRun::Shared(shared) => {
                let (pass, hints) = &*shared;
                hints
                    .get_or_init(|| {
                        let pass = pass.lock().ok().and_then(|mut p| p.take());
                        pass.and_then(LookaheadPass::run)
                    })
                    .clone()
            }
        }
    }
}

/// The lookahead pass: reads `src` to its end (or to a damaged record: what
/// came before still counts) and records what later segments reveal about
/// every ambiguous segment (see `lookahead`).
pub fn read_ahead(src: &mut (impl FrameSource + ?Sized), options: Options) -> Hints {
    let mut a = Analyzer::recording(src.link(), options, Discard);
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
    a.hints()
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
