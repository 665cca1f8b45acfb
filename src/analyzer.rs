//! The pipeline: frames in, events out.
//!
//! source → decode → flows → classify → keepalive → report. The analyzer owns
//! the flow table and drives one [`Sink`] with a packet event per TCP segment
//! and a flow record per connection (when it ends, or at the end of input).

use crate::classify::{Kind, classify};
use crate::decode::{LinkType, Segment, Skip, decode, flags};
use crate::flows::{Flow, FlowTable, Side};
use crate::keepalive::Note;
use crate::report::{PacketEvent, Sink};
use crate::time::Timestamp;
use std::io;

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
}

impl<S: Sink> Analyzer<S> {
    pub fn new(link: LinkType, options: Options, sink: S) -> Self {
        Analyzer {
            link,
            flows: FlowTable::new(options.linger, options.idle_timeout),
            stats: Stats::default(),
            sink,
        }
    }

    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Analyzes one frame.
    pub fn frame(&mut self, frame: &Frame) -> io::Result<()> {
        self.stats.frames += 1;
        let seg = match decode(self.link, frame.data) {
            Ok(seg) => seg,
            Err(skip) => {
                self.skip(skip);
                return Ok(());
            }
        };
        self.stats.tcp_segments += 1;
        self.expire(frame.ts)?;
        let mut ended = Vec::new();
        let flow = self.flows.lookup(&seg, frame.ts, |f| ended.push(f));
        for mut old in ended {
            finish_flow(&mut old);
            self.sink.flow(&old)?;
        }
        if flow.packets == 0 {
            self.stats.flows += 1;
        }
        let event = step(flow, frame, &seg);
        self.sink.packet(&event, flow)
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
    flow.keepalive.finish(flow.last_ts);
}

/// Classifies one segment of `flow`, updates the flow, and describes it.
fn step<'a>(flow: &mut Flow, frame: &Frame, seg: &'a Segment<'a>) -> PacketEvent<'a> {
    let from = flow.side_of(seg);
    let kind = classify(flow, from, seg);
    let late = flow.finished;
    let first_close = flow.close.is_none() && seg.has(flags::FIN | flags::RST);
    let silence = if flow.packets == 0 {
        None
    } else {
        Some(frame.ts.since(flow.last_ts))
    };
    let s = from.idx();
    let note = match kind {
        Kind::Keepalive => flow.keepalive.probe(s, frame.n, frame.ts, silence),
        Kind::Rst => flow.keepalive.rst(s, frame.ts),
        _ => {
            let answers = flow.dir[from.other().idx()]
                .probe
                .is_some_and(|p| !p.zero_window && seg.has(flags::ACK) && seg.ack > p.seq);
            let note = if answers {
                flow.keepalive.answered(s, frame.ts)
            } else {
                Note::None
            };
            if seg.seq_len() > 0 && kind != Kind::ZeroWindowProbe {
                flow.keepalive.resumed(s, frame.ts);
            }
            note
        }
    };
    let (td_seq, td_ack) = tcpdump_numbers(flow, from, seg);
    flow.update(from, seg, kind);
    if matches!(kind, Kind::Keepalive | Kind::ZeroWindowProbe) {
        flow.stamp_probe(from, frame.n, frame.ts);
    }
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
    }
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
