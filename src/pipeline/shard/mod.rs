//! `--threads N`: one capture file on N cores, with results identical to
//! one analyzer's.
//!
//! One reader (this thread, `read`) reads the frames, decodes each just
//! enough to know its connection, and hands it to one of N analyzers
//! (shards) by a symmetric hash of its two ends (both directions of a
//! connection go to the same one). With `--readers` (`Readers`), range
//! readers read a classic pcap file on more threads and find each frame's
//! shard; this thread then takes their frames in file order
//! (`FrameSource::read_ranges`). Frames travel in batches: where the fast
//! path or a range reader read them, as places in its own buffers, shared
//! (`FrameSource::current_chunk`, `Ranged`); else copied into reused
//! buffers — no allocation per packet. Channels are
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
mod read;
mod work;

use crate::core::decode::Segment;
use crate::core::flows::Options;
use crate::core::frag::Fate;
use crate::core::keyed::KeyedState;
use crate::core::time::Timestamp;
use crate::pipeline::analyzer::LookaheadPass;
use crate::pipeline::drive::Controls;
use crate::pipeline::event::{FrameSource, ReadEnd, Sharded};
use collect::{Lines, Report};
use merge::Merge;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};

/// Bytes of a range a range reader reads at a time: 512 KiB (1 MiB held
/// 10 MiB more in flight on the benchmark, 256 KiB was slower).
pub const RANGE_BYTES: u64 = 1 << 19;

/// Who reads the file: this thread (`count` 1), or `count` range readers
/// beside it (`--readers`, `input::ranges`; classic pcap files not read
/// through `-w`), each reading `range` bytes at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readers {
    pub count: usize,
    pub range: u64,
}

impl Readers {
    /// This thread reads.
    pub const ONE: Readers = Readers {
        count: 1,
        range: RANGE_BYTES,
    };

    /// `count` range readers (1: this thread), of `KACAP_RANGE_BYTES`
    /// bytes each when it is set (tests put many range boundaries in small
    /// files), else `RANGE_BYTES`.
    pub fn new(count: usize) -> Readers {
        let range = std::env::var("KACAP_RANGE_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RANGE_BYTES);
        Readers { count, range }
    }
}

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
pub(super) const FLUSH_FRAMES: u64 = 1 << 16;

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
pub(super) fn shard_state() -> &'static KeyedState {
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
pub(super) fn shard_of_ends(
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
    readers: Readers,
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
            // Named, as `top -H` and `perf` show it (as std::thread::spawn
            // does, a thread that cannot be made is a panic).
            std::thread::Builder::new()
                .name(format!("kacap-shard-{shard}"))
                .spawn_scoped(scope, move || {
                    work::work(shard, format, link, options, pass, rx, free, report)
                })
                .expect("a shard's thread");
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
        let (read, outliers) = read::read_into(
            src, link, readers, to, &free_rx, &controls, &mut take, &mut merge,
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::decode::{LinkType, decode};
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
