//! `--threads N`: one capture file on N cores, with results identical to
//! one analyzer's.
//!
//! One reader (this thread) reads the frames, decodes each just enough to
//! know its connection, and hands it to one of N analyzers (shards) by a
//! symmetric hash of its two ends (both directions of a connection go to
//! the same one). Frames travel in batches: where the fast path read them,
//! as places in its own buffers, shared (`FrameSource::current_chunk`);
//! else copied into reused buffers — no allocation per packet. Channels are
//! bounded both ways (the reader takes the shards' reports while a shard's
//! queue is full), so memory stays bounded whichever side is slower.
//!
//! What a single analyzer shares across connections is kept by the reader
//! and given to every shard, so each connection is analyzed exactly as one
//! analyzer would:
//! - the capture clock (`Clock`, robust to outlying stamps) runs over every
//!   TCP segment, and each frame carries it (`Analyzer::frame_at`);
//! - the sweep for connections that ended or went quiet happens, in a single
//!   analyzer, when the clock enters a new second: the reader puts a sweep
//!   at that point of every shard's stream (`Analyzer::expire_at`);
//! - connection ids are numbered by first frame, as one analyzer numbers
//!   them: each shard reports the first frame of its connections and the
//!   merge (`Merge`) numbers them as soon as no shard can report an earlier
//!   one;
//! - the lookahead pass (a capture started mid-connection) runs once, for
//!   the first shard that needs it, and its answers are shared.
//!
//! The merge hands connections to the sink where one analyzer reports them
//! (at the frame whose sweep or lookup reported them), and, for `--json`
//! and the text timeline, packet records and lines — formatted by the
//! shards but for the connection's number (and a line's stamp, which
//! depends on the previous packet of any connection) — in capture order
//! between them (`event::Sharded`; `run::shardable` says which outputs). Not shared (documented): the table's bound `flows::MAX_OPEN`
//! applies per shard, and `--stats-every` snapshots are not taken
//! (SIGUSR1 prints how far the reading got, not the table so far).

mod collect;
mod merge;
mod work;

use crate::core::clock::Clock;
use crate::core::decode::{self, LinkType, Segment, Skip, decode};
use crate::core::flows::Options;
use crate::core::frag::{Fate, Reassembler};
use crate::core::keyed::KeyedState;
use crate::core::time::Timestamp;
use crate::pipeline::analyzer::LookaheadPass;
use crate::pipeline::drive::Controls;
use crate::pipeline::event::{Frame, FrameSource, Next, ReadEnd, Sharded};
use collect::{Lines, Report};
use merge::Merge;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};

/// A batch is sent when it holds this many frames …
const BATCH_FRAMES: usize = 1024;
/// … or this many bytes of them.
const BATCH_BYTES: usize = 256 << 10;
/// Batches in flight per shard (the bound on the reader running ahead).
const IN_FLIGHT: usize = 4;
/// Reports in flight from all shards (the bound on the shards running
/// ahead of the output).
const REPORTS_IN_FLIGHT: usize = 8;

/// What a shard is told, in capture order.
#[derive(Clone, Copy, Debug)]
enum Item {
    /// A frame (its bytes at `at..at + caplen` of the batch's data) and the
    /// capture clock after it (`None`: not a TCP segment, the clock does
    /// not see it).
    Frame {
        n: u64,
        ts: Timestamp,
        len: u32,
        at: u32,
        caplen: u32,
        now: Option<Timestamp>,
        /// Its bytes are in the batch's `chunks[chunk]` (the reader's own
        /// buffer, shared), or, `COPIED`, in its `data`.
        chunk: u16,
    },
    /// The clock entered a new second at frame `n`: sweep.
    Sweep { now: Timestamp, n: u64 },
    /// The next `Frame` is an IP fragment the reader reassembled: its fate,
    /// and when it completed its datagram, the datagram (copied, at
    /// `datagram..datagram + len` of the batch's data). (Apart from the
    /// frame, so that an item stays as small as a frame's.)
    Told { fate: Fate, datagram: u32, len: u32 },
}

/// `Item::Frame::chunk` of a frame copied into the batch.
const COPIED: u16 = u16::MAX;

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    /// The source's buffers its frames are in (see `FrameSource::current_chunk`).
    chunks: Vec<Arc<Vec<u8>>>,
    items: Vec<Item>,
    /// The reader had read every frame up to this one when it sent the
    /// batch: the shard has every frame of its own up to it.
    upto: u64,
    /// The last batch: the clock at the end of input, and its outliers.
    end: Option<(Timestamp, u64)>,
    /// A buffer of packet records the merge has written, back to the shard
    /// to fill again (no allocation and growth per report).
    lines: Option<Lines>,
}

impl Batch {
    fn full(&self) -> bool {
        self.items.len() >= BATCH_FRAMES || self.data.len() >= BATCH_BYTES || self.chunks.len() >= 8
    }
}

/// Every shard's batch is sent at least this often (in frames read), so
/// that a quiet shard's progress does not hold back the numbering.
const FLUSH_FRAMES: u64 = 1 << 16;

/// The shard of a connection (the same both ways): the sum of its two
/// ends' hashes, keyed by the run's seed (`core::keyed`), so that tuples
/// chosen to load one shard load it only by chance. The output does not
/// depend on the seed (records are merged by frame and connection
/// number). Cheap enough for the reader to run per frame.
/// `KACAP_SHARD_SEED=N` fixes the seed: tests that place connections on
/// given shards compute theirs with [`shard_of_keyed`].
pub fn shard_of(seg: &Segment, shards: usize) -> usize {
    shard_of_keyed(seg, shards, shard_state())
}

/// The run's state of the shard choice (see [`shard_of`]).
fn shard_state() -> &'static KeyedState {
    static STATE: std::sync::OnceLock<KeyedState> = std::sync::OnceLock::new();
    STATE.get_or_init(|| {
        match std::env::var("KACAP_SHARD_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(seed) => KeyedState::with_seed(seed),
            None => KeyedState::default(),
        }
    })
}

/// [`shard_of`] with the hash's state given.
#[inline]
pub fn shard_of_keyed(seg: &Segment, shards: usize, state: &KeyedState) -> usize {
    shard_of_ends((seg.src, seg.sport, seg.dst, seg.dport), shards, state)
}

/// [`shard_of_keyed`] of a segment's two ends (`decode::ends`).
#[inline]
fn shard_of_ends(
    (src, sport, dst, dport): (std::net::IpAddr, u16, std::net::IpAddr, u16),
    shards: usize,
    state: &KeyedState,
) -> usize {
    let end = |ip: std::net::IpAddr, port: u16| -> u64 {
        match ip {
            std::net::IpAddr::V4(a) => state.mix(u64::from(a.to_bits()) << 16 | u64::from(port), 0),
            std::net::IpAddr::V6(a) => {
                let b = a.to_bits();
                state.mix(state.mix(b as u64, (b >> 64) as u64), u64::from(port))
            }
        }
    };
    let h = end(src, sport).wrapping_add(end(dst, dport));
    ((h >> 32) as usize * shards) >> 32
}

/// Reads `src` and analyzes it on `shards` threads into `sink`: its
/// packet records or timeline lines, when it has a format, are formatted in
/// the shards and written in capture order by the merge (a sink of
/// connections only: `event::Unformatted`).
pub fn drive<S: Sharded>(
    src: &mut impl FrameSource,
    options: Options,
    pass: LookaheadPass,
    mut sink: S,
    shards: usize,
    controls: Controls,
) -> Result<(), ReadEnd> {
    let format = sink.shard_format();
    let link = src.link();
    let lookahead = pass.shared();
    let mut merge = Merge::new(shards, format.is_some());
    let done = std::thread::scope(|scope| {
        let (free_tx, free_rx) = std::sync::mpsc::channel::<Batch>();
        let (report_tx, reports) = sync_channel::<(usize, Report)>(REPORTS_IN_FLIGHT);
        let mut to = Vec::with_capacity(shards);
        for shard in 0..shards {
            let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
            to.push(tx);
            let (free, report, pass) = (free_tx.clone(), report_tx.clone(), lookahead());
            let format = format.clone();
            scope.spawn(move || work::work(shard, format, link, options, pass, rx, free, report));
        }
        drop((free_tx, report_tx));
        // The shards' reports so far (`wait`: for one, a while), numbered
        // and handed to the sink; false when none can come any more.
        let mut take = |merge: &mut Merge, wait: bool| -> io::Result<bool> {
            let mut first = wait;
            loop {
                let next = if first {
                    first = false;
                    reports.recv_timeout(std::time::Duration::from_millis(5))
                } else {
                    reports.try_recv().map_err(|e| match e {
                        std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                        std::sync::mpsc::TryRecvError::Disconnected => {
                            RecvTimeoutError::Disconnected
                        }
                    })
                };
                match next {
                    Ok((shard, r)) => merge.absorb(shard, r),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        merge.emit(&mut sink)?;
                        return Ok(false);
                    }
                }
            }
            merge.emit(&mut sink)?;
            Ok(true)
        };
        let (read, outliers) = read_into(src, link, to, &free_rx, &controls, &mut take, &mut merge);
        merge.stats.capture_dropped = src.dropped();
        // The rest: until every shard has ended (one that failed closes
        // its channel; the scope's join then panics with its panic).
        let mut rest = Ok(());
        while merge.ended < shards {
            match take(&mut merge, true) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    rest = Err(ReadEnd::Output(e));
                    break;
                }
            }
        }
        rest.map(|()| (read, outliers))
    });
    // As one analyzer: what was read is reported even when the reading
    // ended in an error (a cut file), which then comes back.
    let (read, outliers) = done?;
    if let Err(ReadEnd::Output(e)) = read {
        return Err(ReadEnd::Output(e));
    }
    let mut stats = merge.stats;
    stats.interrupted = matches!(read, Ok(true)) && controls.partial_on_stop;
    stats.time_outliers = outliers;
    stats.flows = u64::from(merge.next);
    sink.finish(&stats).map_err(ReadEnd::Output)?;
    read.map(|_| ())
}

/// The reader: frames to shards, a sweep to every shard when the clock
/// enters a new second; `take` hands the shards' reports on as they come.
/// Returns whether a signal stopped it, and the clock's outliers.
fn read_into(
    src: &mut impl FrameSource,
    link: LinkType,
    to: Vec<SyncSender<Batch>>,
    free: &Receiver<Batch>,
    controls: &Controls,
    take: &mut dyn FnMut(&mut Merge, bool) -> io::Result<bool>,
    merge: &mut Merge,
) -> (Result<bool, ReadEnd>, u64) {
    let shards = to.len();
    let state = *shard_state();
    let fresh = || free.try_recv().unwrap_or_default();
    let mut batches: Vec<Batch> = (0..shards).map(|_| fresh()).collect();
    let mut clock = Clock::default();
    let mut second: Option<i64> = None;
    let mut n = 0;
    let mut next_flush = FLUSH_FRAMES;
    let mut cached: Option<Arc<Vec<u8>>> = src.current_chunk().cloned();
    let mut frags = Reassembler::default();
    // Sends shard `i`'s batch (stamped with how far the reader got),
    // taking the shards' reports while its queue is full (a shard may be
    // waiting for room to report); false when the shard is gone.
    let send = |batches: &mut Vec<Batch>,
                i: usize,
                n: u64,
                merge: &mut Merge,
                take: &mut dyn FnMut(&mut Merge, bool) -> io::Result<bool>|
     -> io::Result<bool> {
        let mut full = std::mem::replace(&mut batches[i], fresh());
        full.upto = n;
        full.lines = merge.spare[i].take();
        put(&to[i], full, merge, take)
    };
    let result = loop {
        if controls.stop.load(Ordering::Relaxed) {
            break Ok(true);
        }
        if controls.quit.is_some_and(|q| q.load(Ordering::Relaxed)) {
            break Ok(false);
        }
        if let Some(show) = controls.show
            && show.load(Ordering::Relaxed)
            && show.swap(false, Ordering::Relaxed)
        {
            // SIGUSR1: how far the reading got (the table so far lives in
            // the shards: one thread prints it).
            eprintln!(
                "kacap: so far: {n} frames read, {} connections begun, {} reported \
                 (on {shards} threads the table so far is not printed: --threads 1 prints it)",
                merge.next, merge.reported
            );
        }
        let frame = match src.next_frame() {
            Ok(Next::Frame(frame)) => frame,
            Ok(Next::Idle(_)) => continue,
            Ok(Next::End) => break Ok(false),
            Err(e) => break Err(e),
        };
        n = frame.n;
        // Where the frame's bytes are in the shared buffer, if they are.
        let shared_at = cached.as_ref().and_then(|c| {
            let base = c.as_ptr() as usize;
            let p = frame.data.as_ptr() as usize;
            (p >= base && p + frame.data.len() <= base + c.len()).then(|| p - base)
        });
        // The segment's ends only: its shard's analyzer decodes it whole.
        let (shard, now) = match decode::ends(link, frame.data) {
            Ok(ends) => {
                let now = tick(&mut clock, &mut second, &mut batches, &frame);
                (shard_of_ends(ends, shards, &state), Some(now))
            }
            Err(Skip::Fragment) => {
                let r = (&mut clock, &mut second, &mut batches[..], &mut frags);
                fragment(link, &frame, r, shards, &state)
            }
            // Counted (as skipped) by the first shard.
            Err(_) => (0, None),
        };
        let b = &mut batches[shard];
        let (chunk, at) = match (shared_at, &cached) {
            (Some(at), Some(c)) => {
                if b.chunks.last().is_none_or(|last| !Arc::ptr_eq(last, c)) {
                    b.chunks.push(c.clone());
                }
                ((b.chunks.len() - 1) as u16, at)
            }
            _ => {
                let at = b.data.len();
                b.data.extend_from_slice(frame.data);
                (COPIED, at)
            }
        };
        b.items.push(Item::Frame {
            n: frame.n,
            ts: frame.ts,
            len: frame.len,
            at: at as u32,
            caplen: frame.data.len() as u32,
            now,
            chunk,
        });
        // The source read into another buffer: share that one from now on
        // (holding it makes the source read the next into a new one).
        if src.current_chunk().map(Arc::as_ptr) != cached.as_ref().map(Arc::as_ptr) {
            cached = src.current_chunk().cloned();
        }
        let flush = n >= next_flush;
        if b.full() || flush {
            let all: Vec<usize> = if flush {
                next_flush = n + FLUSH_FRAMES;
                (0..shards).collect()
            } else {
                vec![shard]
            };
            let mut sent = Ok(true);
            for i in all {
                sent = send(&mut batches, i, n, merge, take);
                if !matches!(sent, Ok(true)) {
                    break;
                }
            }
            match sent.and_then(|ok| take(merge, false).map(|_| ok)) {
                Ok(true) => {}
                Ok(false) => break Ok(false),
                Err(e) => break Err(ReadEnd::Output(e)),
            }
        }
    };
    frags.finish();
    merge.stats.frag.add(&frags.counts);
    for (i, mut b) in batches.into_iter().enumerate() {
        // Every frame has been read: the last batch covers them all (its
        // shard's last report, after its connections still open, says
        // `u64::MAX`).
        b.upto = n;
        b.end = Some((clock.now(), clock.outliers));
        if let Err(e) = put(&to[i], b, merge, take) {
            return (Err(ReadEnd::Output(e)), clock.outliers);
        }
    }
    (result, clock.outliers)
}

/// The capture clock after a TCP segment's frame; a sweep in every
/// shard's stream when it enters a new second.
#[inline(always)]
fn tick(
    clock: &mut Clock,
    second: &mut Option<i64>,
    batches: &mut [Batch],
    frame: &Frame,
) -> Timestamp {
    let now = clock.frame(frame.ts);
    if *second != Some(now.sec) {
        *second = Some(now.sec);
        for b in batches.iter_mut() {
            b.items.push(Item::Sweep { now, n: frame.n });
        }
    }
    now
}

/// An IP fragment, reassembled here once for every shard: its shard and
/// the clock after it, as for a frame. A completed datagram goes to its
/// connection's shard (a segment: the clock sees it), a first fragment too
/// (its line's numbers are its connection's), any other to the first
/// shard. The shard is told the fragment's fate (and given the datagram)
/// in an `Item::Told` before the frame.
#[cold]
#[inline(never)]
fn fragment(
    link: LinkType,
    frame: &Frame,
    (clock, second, batches, frags): (&mut Clock, &mut Option<i64>, &mut [Batch], &mut Reassembler),
    shards: usize,
    state: &KeyedState,
) -> (usize, Option<Timestamp>) {
    let Some((first, view, piece)) = decode::fragment(link, frame.data) else {
        return (0, None);
    };
    let fate = frags.offer(&piece, frame.ts);
    let (shard, now) = match fate {
        Fate::Complete { .. } => match decode(LinkType::Raw, frags.datagram()) {
            Ok(seg) => {
                let now = tick(clock, second, batches, frame);
                (shard_of_keyed(&seg, shards, state), Some(now))
            }
            Err(_) => (0, None),
        },
        _ if matches!(view.tcp, decode::FragTcp::None | decode::FragTcp::Cut) => (0, None),
        _ => (shard_of_keyed(&first, shards, state), None),
    };
    let b = &mut batches[shard];
    let datagram = b.data.len() as u32;
    if matches!(fate, Fate::Complete { .. }) {
        b.data.extend_from_slice(frags.datagram());
    }
    let len = b.data.len() as u32 - datagram;
    b.items.push(Item::Told {
        fate,
        datagram,
        len,
    });
    (shard, now)
}

/// Puts `batch` in a shard's queue, taking the shards' reports while the
/// queue is full; false when the shard is gone.
fn put(
    to: &SyncSender<Batch>,
    mut batch: Batch,
    merge: &mut Merge,
    take: &mut dyn FnMut(&mut Merge, bool) -> io::Result<bool>,
) -> io::Result<bool> {
    loop {
        match to.try_send(batch) {
            Ok(()) => return Ok(true),
            Err(TrySendError::Disconnected(_)) => return Ok(false),
            Err(TrySendError::Full(b)) => {
                batch = b;
                take(merge, true)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{SYN, tcp_packet};

    /// Tuples chosen to land on one shard under the unkeyed choice (IPv6
    /// sources whose halves fold to one value) spread over the shards.
    #[test]
    fn chosen_tuples_spread_over_the_shards() {
        let dst: std::net::SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let state = KeyedState::with_seed(12345);
        let mut on = [0u32; 4];
        for i in 1..=10_000u64 {
            let low = 0x0123_4567_89ab_cdef ^ i.rotate_left(17);
            let a = std::net::Ipv6Addr::from(u128::from(i) << 64 | u128::from(low));
            let src = std::net::SocketAddr::new(a.into(), 40_000);
            let p = tcp_packet(src, dst, SYN, 1, 0, 65535, &[]);
            let seg = decode(LinkType::Raw, &p).unwrap();
            on[shard_of_keyed(&seg, 4, &state)] += 1;
        }
        assert!(on.iter().all(|&n| (2000..3000).contains(&n)), "{on:?}");
    }
}
