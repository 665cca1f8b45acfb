//! The boundary types of the pipeline: frames come in from a source, packet
//! events, flow summaries and the run's counters go out to a [`Sink`].

use crate::analyses::registry::Notes;
use crate::core::decode::LinkType;
use crate::core::tcp::{Kind, Side};
use crate::core::time::Timestamp;
use crate::pipeline::summary::FlowSummary;
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
    /// IP fragments of TCP datagrams (each frame), and what became of them.
    pub fragments: u64,
    pub frag: FragCounts,
    pub truncated: u64,
    pub malformed: u64,
    /// Reading a file was stopped by a signal before its end: a partial
    /// analysis (JSON `"complete":false`).
    pub interrupted: bool,
    /// Frames stamped far from the rest, which the capture clock did not
    /// follow (see `clock`).
    pub time_outliers: u64,
    /// Packets the capture itself dropped (`FrameSource::dropped`): an
    /// answer it dropped looks like no answer.
    pub capture_dropped: Option<u64>,
}

pub use crate::analyses::registry::PacketEvent;
use crate::core::decode::FragView;
use crate::core::frag::{Fate, FragCounts};

/// An IP fragment of a TCP datagram that completed nothing (a fragment
/// that completes its datagram comes as the reassembled segment's
/// [`PacketEvent`], `reassembled` set).
#[derive(Clone, Copy, Debug)]
pub struct FragmentEvent<'a> {
    /// What tcpdump shows of it, as an event: for a first fragment, the
    /// TCP header it carries as a segment of its connection (`flow_id` 0
    /// when the connection is not known yet); for any other, only its
    /// addresses and link facts.
    pub ev: PacketEvent<'a>,
    pub view: FragView,
    pub fate: Fate,
}

/// Why earlier segments are revised (see `lookahead`, `Analysis::relabel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The peer's ACK number showed the sender's next sequence number.
    PeerAck,
    /// The sender's RST showed its next sequence number.
    OwnRst,
    /// The sender's next segment showed its next sequence number.
    OwnSegment,
    /// The same bare segment came again, with nothing from the peer between.
    Repeated,
    /// An application's encrypted rhythm was established: its first
    /// exchanges were pings and pongs (files too: no lookahead reads it).
    Rhythm,
}

/// Earlier segments of one flow that later evidence showed to be of
/// another kind (live captures and pipes only: a file is read ahead).
#[derive(Clone, Copy, Debug)]
pub struct Revisions<'a> {
    pub flow_id: u32,
    /// The side that sent them.
    pub from: Side,
    pub why: Why,
    pub items: &'a [Revision],
}

/// One revised segment: its frame number, its kind now, and what the
/// analyses say about it now.
#[derive(Clone, Copy, Debug)]
pub struct Revision {
    pub n: u64,
    pub kind: Kind,
    pub notes: Notes,
}

/// A consumer of the event stream: a report.
pub trait Sink {
    /// One TCP segment, in capture order.
    fn packet(&mut self, event: &PacketEvent) -> io::Result<()>;
    /// An IP fragment held for reassembly, or dropped.
    fn fragment(&mut self, _ev: &FragmentEvent) -> io::Result<()> {
        Ok(())
    }
    /// Earlier segments turned out to be of another kind.
    fn revise(&mut self, _revisions: &Revisions) -> io::Result<()> {
        Ok(())
    }
    /// One connection, when it is reported (ended, expired, end of input).
    fn flow(&mut self, flow: &FlowSummary) -> io::Result<()>;
    /// The end of the input.
    fn finish(&mut self, stats: &Stats) -> io::Result<()>;
    /// A look at the run while it goes on (SIGUSR1, `--stats-every`): the
    /// connections still open, as they would be summarized now, and the
    /// counters so far. Nothing is reported twice because of it.
    fn snapshot(&mut self, _open: &[FlowSummary], _stats: &Stats) -> io::Result<()> {
        Ok(())
    }
}

/// A packet's record or line, formatted on an analyzer thread
/// (`--threads`, see `shard`) but for what only the merge knows: the
/// connection's number, and a line's stamp. Each analyzer formats with its
/// own copy (its state: tcpdump's relative-sequence bases of its own
/// connections).
pub trait ShardFormat: Clone + Send {
    /// Appends `ev`'s record to `out`; returns where in it the connection's
    /// number goes.
    fn format(&mut self, out: &mut Vec<u8>, ev: &PacketEvent) -> io::Result<usize>;
    /// Appends the record for item `item` of a revision (as the sink's
    /// `revise` writes it), if it has one; returns where the connection's
    /// number goes.
    fn format_revision(
        &mut self,
        _out: &mut Vec<u8>,
        _r: &Revisions,
        _item: usize,
    ) -> Option<usize> {
        None
    }
    /// Appends the line of an IP fragment that completed nothing, if the
    /// format has one (it has no connection's number); whether it did.
    fn format_fragment(&mut self, _out: &mut Vec<u8>, _ev: &FragmentEvent) -> bool {
        false
    }
    /// The connection with this (the analyzer's own) number was reported.
    fn forget(&mut self, _flow: u32) {}
}

/// A sink whose packet records the analyzer threads can format, written in
/// capture order by the merge (ripgrep's parallel printer is the model:
/// workers print into buffers, written in order).
pub trait Sharded: Sink {
    type Format: ShardFormat;
    /// The formatter each analyzer gets a copy of (`None`: the analyzers
    /// format nothing, the merge writes no packet records).
    fn shard_format(&self) -> Option<Self::Format>;
    /// A record the analyzers formatted: its head, the connection's number,
    /// its tail; `ts`, the frame's stamp.
    fn formatted(&mut self, ts: Timestamp, head: &[u8], flow: u32, tail: &[u8]) -> io::Result<()>;
}

/// A sink of connections only (no packet records): sharded with nothing
/// to format.
pub struct Unformatted<S>(pub S);

/// No format: what `Unformatted` gives the analyzers (never made).
#[derive(Clone, Copy, Debug)]
pub enum NoFormat {}

impl ShardFormat for NoFormat {
    fn format(&mut self, _: &mut Vec<u8>, _: &PacketEvent) -> io::Result<usize> {
        match *self {}
    }
}

impl<S: Sink> Sink for Unformatted<S> {
    fn packet(&mut self, event: &PacketEvent) -> io::Result<()> {
        self.0.packet(event)
    }
    fn revise(&mut self, revisions: &Revisions) -> io::Result<()> {
        self.0.revise(revisions)
    }
    fn flow(&mut self, flow: &FlowSummary) -> io::Result<()> {
        self.0.flow(flow)
    }
    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        self.0.finish(stats)
    }
    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        self.0.snapshot(open, stats)
    }
}

impl<S: Sink> Sharded for Unformatted<S> {
    type Format = NoFormat;
    fn shard_format(&self) -> Option<NoFormat> {
        None
    }
    /// Never called: without a format the merge writes no packet records.
    fn formatted(&mut self, _: Timestamp, _: &[u8], _: u32, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

/// Two sinks fed the same stream (`--json` with `--diagram-svg`).
impl<A: Sink, B: Sink> Sink for (A, B) {
    fn packet(&mut self, event: &PacketEvent) -> io::Result<()> {
        self.0.packet(event)?;
        self.1.packet(event)
    }
    fn revise(&mut self, revisions: &Revisions) -> io::Result<()> {
        self.0.revise(revisions)?;
        self.1.revise(revisions)
    }
    fn flow(&mut self, flow: &FlowSummary) -> io::Result<()> {
        self.0.flow(flow)?;
        self.1.flow(flow)
    }
    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        self.0.finish(stats)?;
        self.1.finish(stats)
    }
    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        self.0.snapshot(open, stats)?;
        self.1.snapshot(open, stats)
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn packet(&mut self, event: &PacketEvent) -> io::Result<()> {
        (**self).packet(event)
    }
    fn revise(&mut self, revisions: &Revisions) -> io::Result<()> {
        (**self).revise(revisions)
    }
    fn flow(&mut self, flow: &FlowSummary) -> io::Result<()> {
        (**self).flow(flow)
    }
    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        (**self).finish(stats)
    }
    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        (**self).snapshot(open, stats)
    }
}

/// What a frame source yields next.
#[derive(Debug)]
pub enum Next<'a> {
    Frame(Frame<'a>),
    /// A live source has no frame yet. `Some(now)`: it waited its timeout
    /// in vain, at wall-clock time `now` — the analyzer's tick (held frames
    /// released, silent flows expired).
    Idle(Option<Timestamp>),
    /// End of input (or `-c` reached, or stopped).
    End,
}

/// How reading ended, when it did not simply reach the end or get stopped.
#[derive(Debug)]
pub enum ReadEnd {
    /// The sink failed (e.g. a closed pipe).
    Output(io::Error),
    /// The file ends in the middle of a packet (tcpdump killed hard, a copy
    /// in progress); everything before it was analyzed.
    Truncated(String),
    /// Writing the `-w` file failed.
    Save(String),
    /// The live capture failed (interface went away, …).
    Capture(String),
}

/// What a `-w` copy of a source's frames starts with: libpcap's link type,
/// the snapshot length, and whether stamps are in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveHeader {
    pub linktype: u32,
    pub snaplen: u32,
    pub nano: bool,
}

/// Packet counters of a live capture, as tcpdump prints them.
#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureStats {
    pub captured: u64,
    pub received: u32,
    pub dropped: u32,
}

/// Where frames come from: a capture file, a live interface (libpcap, see
/// `source`), or frames in memory (tests, see [`MemorySource`]).
pub trait FrameSource {
    /// How to decode its frames.
    fn link(&self) -> LinkType;
    /// The next frame, an idle wake-up, or the end.
    fn next_frame(&mut self) -> Result<Next<'_>, ReadEnd>;
    /// Live packet counters (files and memory have none).
    fn stats(&mut self) -> Option<CaptureStats> {
        None
    }
    /// Packets the capture itself dropped, as far as it says: live, the
    /// kernel's count; a pcapng file, its Interface Statistics Blocks.
    fn dropped(&mut self) -> Option<u64> {
        self.stats().map(|s| u64::from(s.dropped))
    }
    /// How far into its input it has read, in bytes (files: the progress
    /// bar).
    fn position(&self) -> Option<u64> {
        None
    }
    /// The buffer the fast path reads frames into, when it does (`shard`:
    /// frames found in it are shared with the analyzers, not copied).
    fn current_chunk(&self) -> Option<&std::sync::Arc<Vec<u8>>> {
        None
    }
    /// `--readers`: reads its frames on `readers` threads, `range` bytes
    /// at a time, `route` run on each frame's bytes there, and hands them
    /// to `each` range by range in capture order (false: stop), as far as
    /// the ranges can be proven; `next_frame` then goes on from there.
    /// `false` (nothing read) when it cannot: anything but a classic pcap
    /// file not read from yet, or when every frame must pass through this
    /// source (`-w`).
    fn read_ranges(
        &mut self,
        _readers: usize,
        _range: u64,
        _route: &(dyn Fn(&[u8]) -> u32 + Sync),
        _each: &mut dyn FnMut(&Ranged) -> bool,
    ) -> bool {
        false
    }
}

/// A byte range's frames (`FrameSource::read_ranges`): their bytes, and
/// where each is in them.
pub struct Ranged<'a> {
    pub data: &'a std::sync::Arc<Vec<u8>>,
    pub frames: &'a [RangedFrame],
    /// The file offset after its last frame (how far the reading got).
    pub end: u64,
}

/// A frame of a `Ranged`: its bytes at `at..at + caplen`, and what the
/// reader's `route` said of them.
#[derive(Clone, Copy, Debug)]
pub struct RangedFrame {
    pub at: u32,
    pub caplen: u32,
    pub len: u32,
    pub ts: Timestamp,
    pub route: u32,
}

impl Ranged<'_> {
    /// The captured bytes of `f`.
    #[inline]
    pub fn bytes(&self, f: &RangedFrame) -> &[u8] {
        &self.data[f.at as usize..(f.at + f.caplen) as usize]
    }
}

/// Frames held in memory, numbered from 1: the pipeline without libpcap.
#[derive(Debug)]
pub struct MemorySource {
    link: LinkType,
    frames: std::vec::IntoIter<(Timestamp, Vec<u8>)>,
    current: Vec<u8>,
    n: u64,
}

impl MemorySource {
    pub fn new(link: LinkType, frames: Vec<(Timestamp, Vec<u8>)>) -> MemorySource {
        MemorySource {
            link,
            frames: frames.into_iter(),
            current: Vec::new(),
            n: 0,
        }
    }
}

impl FrameSource for MemorySource {
    fn link(&self) -> LinkType {
        self.link
    }

    fn next_frame(&mut self) -> Result<Next<'_>, ReadEnd> {
        let Some((ts, data)) = self.frames.next() else {
            return Ok(Next::End);
        };
        self.n += 1;
        self.current = data;
        Ok(Next::Frame(Frame {
            n: self.n,
            ts,
            len: self.current.len() as u32,
            data: &self.current,
        }))
    }
}
