//! Learning a side's next sequence number when a capture starts
//! mid-connection.
//!
//! Until a side's next sequence number is known, a bare segment from it is
//! *ambiguous*: zero bytes could be a keepalive probe (one below next) or a
//! plain ACK (at next); one byte could be a Windows-style probe (a byte
//! already sent) or new data. Later segments of the flow settle it:
//!
//! - zero bytes: the peer's next ACK (its ACK number is the side's next), the
//!   side's own RST (Linux resets at next: the probe's seq + 1, or the same
//!   seq), the side's next segment at another seq, with data, or a FIN; and,
//!   only when none of these came before the flow or the input ended, the
//!   same bare segment again (same seq, ack, flags and window) a second or
//!   more later with nothing from the peer in between: a keepalive repeats,
//!   while a host sends a bare ACK when it receives something, and it
//!   received nothing (weaker evidence — a window update or an ACK of
//!   something the capture missed can look alike — so it is the last resort);
//! - one byte: the same one-byte segment again from the same side (data is
//!   never sent twice once acknowledged, and a retransmission backs off; a
//!   keepalive repeats) means a probe; anything else the side sends first
//!   means it was data.
//!
//! On a file the answer is found by a *lookahead pass*: the first time the
//! analyzer meets an ambiguous segment, it reads the whole file once more
//! (no output, no analyses) and records, for every ambiguous segment in it,
//! what the later segments of its flow revealed — however far ahead that is
//! (a silent peer, 75 s between probes, a busy link). The main pass then
//! classifies each such segment exactly when it reaches it: the timeline stays
//! in capture order, nothing is held, and a file without ambiguity is read
//! once. Memory: 16 bytes per ambiguous segment of the file, plus one
//! pending entry per flow side still waiting in the lookahead pass. Live
//! captures and pipes cannot be read twice: there the analyzer holds frames
//! back for a bounded time instead (see `analyzer`).

use crate::core::decode::{Segment, flags};
use crate::core::flows::Options;
use crate::core::keyed::KeyedMap;
use crate::core::seq::SeqNumber;
use crate::core::time::Timestamp;
use crate::pipeline::event::FrameSource;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

/// A segment whose meaning depends on its sender's next sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ambiguity {
    /// Its frame number.
    pub n: u64,
    pub sender: SocketAddr,
    pub receiver: SocketAddr,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: u8,
    pub win: u16,
    pub ts: Timestamp,
    /// One byte (a possible Windows-style probe) rather than zero.
    pub one_byte: bool,
}

/// Shortest gap between two identical bare segments for the second to show
/// that both were probes (duplicate ACKs come within milliseconds; keepalive
/// intervals are whole seconds).
const REPEAT_MIN_GAP: f64 = 1.0;

impl Ambiguity {
    /// Whether `seg` is an ambiguous segment: zero or one byte, no SYN, FIN
    /// or RST, from a side whose next sequence number is unknown (the caller
    /// checks that).
    pub fn of(n: u64, ts: Timestamp, seg: &Segment) -> Option<Ambiguity> {
        (seg.len <= 1 && !seg.has(flags::SYN | flags::FIN | flags::RST)).then(|| Ambiguity {
            n,
            sender: SocketAddr::new(seg.src, seg.sport),
            receiver: SocketAddr::new(seg.dst, seg.dport),
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            win: seg.win,
            ts,
            one_byte: seg.len == 1,
        })
    }

    /// What a later segment `seg` of the same flow says about the sender's
    /// next sequence number. `None`: nothing yet; `Some(None)`: settled,
    /// nothing learned (not a probe); `Some(Some(next))`: the sender's next
    /// sequence number.
    pub fn revealed_by(&self, seg: &Segment) -> Option<Option<SeqNumber>> {
        let from = SocketAddr::new(seg.src, seg.sport);
        let to = SocketAddr::new(seg.dst, seg.dport);
        let from_sender = from == self.sender && to == self.receiver;
        let from_peer = from == self.receiver && to == self.sender;
        if !from_sender && !from_peer {
            return None;
        }
        if seg.has(flags::SYN) {
            // A new connection on the same 4-tuple: the old one says no more.
            return Some(None);
        }
        if self.one_byte {
            if !from_sender {
                return None;
            }
            let again = seg.len == 1 && seg.seq == self.seq && !seg.has(flags::FIN | flags::RST);
            return Some(again.then_some(self.seq + 1));
        }
        if from_peer {
            return seg.has(flags::ACK).then_some(Some(seg.ack));
        }
        if seg.has(flags::RST) {
            // Linux resets at its next sequence number (one above a probe);
            // any other RST sequence number says nothing to trust.
            let plausible = seg.seq == self.seq || seg.seq == self.seq + 1;
            return Some(plausible.then_some(seg.seq));
        }
        let informative = seg.seq != self.seq || seg.len > 0 || seg.has(flags::FIN);
        informative.then_some(Some(seg.seq))
    }

    /// `seg`, captured at `ts`, is this zero-byte segment again: same
    /// sender, seq, ack, flags and window, a second or more later (the last
    /// resort, see the module docs).
    pub fn repeated_by(&self, seg: &Segment, ts: Timestamp) -> bool {
        !self.one_byte
            && SocketAddr::new(seg.src, seg.sport) == self.sender
            && SocketAddr::new(seg.dst, seg.dport) == self.receiver
            && seg.len == 0
            && (seg.seq, seg.ack, seg.flags, seg.win) == (self.seq, self.ack, self.flags, self.win)
            && ts.since(self.ts) >= REPEAT_MIN_GAP
    }
}

/// What the lookahead pass learned, in frame order: for each ambiguous
/// segment, its sender's next sequence number (or nothing).
#[derive(Clone, Debug, Default)]
pub struct Hints(VecDeque<(u64, Option<SeqNumber>)>);

impl Hints {
    /// What was learned for the ambiguous segment at frame `n` (the main pass
    /// meets them in the same order as the lookahead pass).
    pub fn take(&mut self, n: u64) -> Option<SeqNumber> {
        while let Some(&(at, next)) = self.0.front() {
            if at > n {
                return None;
            }
            self.0.pop_front();
            if at == n {
                return next;
            }
        }
        None
    }
}

/// The lookahead pass's bookkeeping: ambiguities waiting for their answer
/// (and whether the same segment came again).
#[derive(Debug, Default)]
pub struct Recorder {
    /// By (sender, receiver): at most one per flow side.
    pending: KeyedMap<(SocketAddr, SocketAddr), (Ambiguity, bool)>,
    found: Vec<(u64, Option<SeqNumber>)>,
}

impl Recorder {
    /// An ambiguous segment was met.
    pub fn ambiguous(&mut self, a: Ambiguity) {
        if let Some(old) = self.pending.insert((a.sender, a.receiver), (a, false)) {
            self.found.push(Self::last_resort(old));
        }
    }

    /// An ambiguity nothing settled: a probe if it came again, else unknown.
    fn last_resort((a, repeated): (Ambiguity, bool)) -> (u64, Option<SeqNumber>) {
        (a.n, repeated.then_some(a.seq + 1))
    }

    /// Every decoded segment after the ambiguous ones: settles what it can.
    pub fn segment(&mut self, seg: &Segment, ts: Timestamp) {
        if self.pending.is_empty() {
            return;
        }
        let from = SocketAddr::new(seg.src, seg.sport);
        let to = SocketAddr::new(seg.dst, seg.dport);
        for key in [(from, to), (to, from)] {
            let Some((a, repeated)) = self.pending.get_mut(&key) else {
                continue;
            };
            match a.revealed_by(seg) {
                // A new connection on the 4-tuple ends the old one's story.
                Some(None) if seg.has(flags::SYN) => {
                    let old = self.pending.remove(&key).expect("present");
                    self.found.push(Self::last_resort(old));
                }
                Some(next) => {
                    self.found.push((a.n, next));
                    self.pending.remove(&key);
                }
                None => *repeated |= a.repeated_by(seg, ts),
            }
        }
    }

    /// A connection was reported (ended, expired): what of it is still
    /// pending gets the last resort, and memory stays bounded by the open
    /// connections.
    pub fn flow_ended(&mut self, a: SocketAddr, b: SocketAddr) {
        for key in [(a, b), (b, a)] {
            if let Some(p) = self.pending.remove(&key) {
                self.found.push(Self::last_resort(p));
            }
        }
    }

    /// The end of the input: what is still pending gets the last resort.
    pub fn finish(mut self) -> Hints {
        self.found
            .extend(self.pending.drain().map(|(_, p)| Self::last_resort(p)));
        self.found.sort_unstable_by_key(|(n, _)| *n);
        Hints(self.found.into())
    }
}
/// A source that can be read again from its start, with the same filter
/// and the same `-c` (a file): what the lookahead pass reads. Implemented
/// by the input layer; the pipeline runs the pass when it needs it.
pub trait Reread: Send {
    fn reread(&self) -> Option<Box<dyn FrameSource>>;
}

/// One pass for several analyzers: the pass, taken by the first that
/// needs it, and its answers.
pub(crate) type SharedPass = (Mutex<Option<Pass>>, OnceLock<Option<Hints>>);

/// The lookahead pass over a file, run once, at the first ambiguous
/// segment of a capture started mid-connection.
pub struct Pass(pub(crate) Run);

pub(crate) enum Run {
    Read {
        source: Box<dyn Reread>,
        options: Options,
    },
    /// One pass for several analyzers (`--threads`): the first that needs
    /// it runs it, the others wait for it; each gets its own copy of the
    /// answers.
    Shared(Arc<SharedPass>),
}

impl Pass {
    pub fn new(source: Box<dyn Reread>, options: Options) -> Pass {
        Pass(Run::Read { source, options })
    }

    /// Passes for several analyzers, sharing this one.
    pub fn shared(self) -> impl Fn() -> Pass {
        let shared = Arc::new((Mutex::new(Some(self)), OnceLock::new()));
        move || Pass(Run::Shared(shared.clone()))
    }
}
