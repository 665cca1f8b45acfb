//! Several readers over one classic pcap file (`--readers N`, with
//! `--threads`): the file is cut into byte ranges that reader threads
//! read and parse at once, and what they found is taken in file order,
//! each range only once it is proven to start where the one before ended.
//!
//! A range's reader does not know where its first record begins (a record
//! can start anywhere in it). It guesses, as parallel pcap readers do:
//! the first offset where a chain of plausible record headers starts
//! (`plausible`: a captured length within the snaplen and the wire
//! length, a sub-second part below one second, stamps within an hour of
//! each other, `CHAIN` records in a row). The guess is only a guess — a
//! packet's payload can hold such a chain — so nothing is believed until
//! the range before has been parsed from its own proven start: its last
//! record ends at the one offset this range can start at. When the guess
//! is that offset, the range's records stand; when it is not, the range
//! is parsed again from the proven offset (on the taking thread, from the
//! bytes already read). So the records are exactly those one reader
//! finds, whatever the guesses; a wrong guess costs a second parse.
//!
//! The parse accepts what the fast path accepts (`record::clean`), and
//! at the first record it would not (a length over the limit, a record
//! cut by the end of the file) the taking stops there: the caller hands
//! the rest to the one reader (the source's `next_frame`), which goes on
//! from that record exactly as it would have.

use crate::input::record;
use crate::pipeline::event::{Ranged, RangedFrame};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// Bytes read past a range's end with it, for its last record (a longer
/// one is read when parsed).
const TAIL: usize = 4096;
/// Record headers in a row that make a guessed start plausible.
const CHAIN: usize = 6;
/// Ranges read ahead of the taking, per reader (the bound on memory).
const AHEAD: usize = 2;

/// A classic pcap file to read in ranges, and how (see
/// `FrameSource::ranges`).
pub struct RangeFile {
    pub file: Arc<File>,
    pub size: u64,
    /// The offset of the first record (after the file header).
    pub first: u64,
    pub swapped: bool,
    pub nano: bool,
    pub snaplen: u32,
    /// The BPF filter, run on each record as the fast path runs it.
    pub filter: Option<Filter>,
    /// `-c`: frames to read at most.
    pub limit: Option<u64>,
}

/// A compiled BPF program shared by the readers.
#[derive(Clone, Copy)]
pub struct Filter(*const pcap::BpfProgram);

// SAFETY: libpcap's `pcap_offline_filter` only reads the program, which
// the source owns and neither changes nor drops while the readers run
// (they are joined before `read` returns, and the source outlives it).
unsafe impl Send for Filter {}
unsafe impl Sync for Filter {}

impl Filter {
    /// # Safety
    /// `prog` must stay alive and unchanged while any reader may run.
    pub unsafe fn new(prog: &pcap::BpfProgram) -> Filter {
        Filter(prog)
    }
}

/// Why a parse stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// At a record starting at or past the range's end.
    Range,
    /// At the end of the file, cleanly.
    End,
    /// At a record the fast path does not take (`record::clean`), or
    /// cut by the end of the file: the one reader's from there.
    Unclean,
}

/// A range's bytes and records.
pub struct Piece {
    /// Its index: bytes `first + k × range .. ` on.
    pub k: u64,
    /// The file offset of `data[0]`.
    base: u64,
    /// The range's end (records start before it).
    until: u64,
    /// The bytes read, shared with the analyzers once taken.
    pub data: Arc<Vec<u8>>,
    /// Valid bytes of `data`.
    valid: usize,
    /// The offset its records were parsed from (`None`: no plausible one).
    start: Option<u64>,
    /// The offset after its last record.
    pub end: u64,
    pub stop: Stop,
    pub recs: Vec<RangedFrame>,
}

impl Piece {
    fn new() -> Piece {
        Piece {
            k: 0,
            base: 0,
            until: 0,
            data: Arc::new(Vec::new()),
            valid: 0,
            start: None,
            end: 0,
            stop: Stop::Range,
            recs: Vec::new(),
        }
    }

    /// Its frames, as the taking hands them on.
    fn ranged(&self) -> Ranged<'_> {
        Ranged {
            data: &self.data,
            frames: &self.recs,
            end: self.end,
        }
    }
}

/// What the taking saw: where it stopped, the frames it took in all
/// (counting those before), and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    pub at: u64,
    pub frames: u64,
    pub stop: Stop,
    /// Ranges whose guessed start was not the proven one (parsed again).
    pub reparsed: u64,
}

/// Reads `f` from its first record on `readers` threads in ranges of
/// `range` bytes, `route` run on each record's bytes there; hands each
/// range, in file order and proven, to `each` (false: stop). Stops at the
/// end of the file, at the first record the fast path does not take, at
/// `-c`, or when `each` says.
pub fn read(
    f: &RangeFile,
    readers: usize,
    range: u64,
    route: &(dyn Fn(&[u8]) -> u32 + Sync),
    each: &mut dyn FnMut(&Ranged) -> bool,
) -> Taken {
    let range = range.max(64);
    let count = (f.size.saturating_sub(f.first)).div_ceil(range);
    let mut taken = Taken {
        at: f.first,
        frames: 0,
        stop: Stop::End,
        reparsed: 0,
    };
    if count == 0 {
        return taken;
    }
    std::thread::scope(|scope| {
        let (jobs_tx, jobs_rx) = channel::<Piece>();
        let (done_tx, done_rx) = channel::<Piece>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        for i in 0..readers.max(1) {
            let (jobs, done) = (Arc::clone(&jobs_rx), done_tx.clone());
            // Named, as `top -H` and `perf` show it.
            std::thread::Builder::new()
                .name(format!("kacap-range-{i}"))
                .spawn_scoped(scope, move || reader(f, range, route, &jobs, &done))
                .expect("a range reader's thread");
        }
        drop(done_tx);
        take(
            f, readers, count, route, &jobs_tx, &done_rx, &mut taken, each,
        );
        // Dropping the jobs ends the readers (after the range each reads).
        drop(jobs_tx);
    });
    taken
}

/// A reader: ranges given, parsed from their guessed start.
fn reader(
    f: &RangeFile,
    range: u64,
    route: &(dyn Fn(&[u8]) -> u32 + Sync),
    jobs: &Mutex<Receiver<Piece>>,
    done: &Sender<Piece>,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(mut p) = job else { return };
        let base = f.first + p.k * range;
        p.base = base;
        p.until = (base + range).min(f.size);
        p.valid = 0;
        p.recs.clear();
        let want = (p.until - base) as usize + TAIL;
        if !fill(f, &mut p, want) && p.valid < (p.until - base) as usize {
            // A read error: the one reader meets it too.
            p.start = None;
        } else {
            p.start = if p.k == 0 {
                Some(base)
            } else {
                guess(f, &mut p)
            };
            if let Some(s) = p.start {
                parse(f, &mut p, s, route);
            }
        }
        if done.send(p).is_err() {
            return;
        }
    }
}

/// The taking: ranges in order, each proven or parsed again, to `each`.
#[allow(clippy::too_many_arguments)]
fn take(
    f: &RangeFile,
    readers: usize,
    count: u64,
    route: &(dyn Fn(&[u8]) -> u32 + Sync),
    jobs: &Sender<Piece>,
    done: &Receiver<Piece>,
    taken: &mut Taken,
    each: &mut dyn FnMut(&Ranged) -> bool,
) {
    let ahead = (readers.max(1) * AHEAD) as u64;
    let mut spare: VecDeque<Piece> = VecDeque::new();
    // A piece to read into: one the analyzers no longer hold, or a new one.
    let fresh = |spare: &mut VecDeque<Piece>, k: u64| {
        let mut p = match spare.iter().position(|p| Arc::strong_count(&p.data) == 1) {
            Some(i) => spare.remove(i).unwrap_or_else(Piece::new),
            None => Piece::new(),
        };
        p.k = k;
        p
    };
    let mut issued = 0;
    while issued < count.min(ahead) {
        if jobs.send(fresh(&mut spare, issued)).is_err() {
            return;
        }
        issued += 1;
    }
    let mut waiting: BTreeMap<u64, Piece> = BTreeMap::new();
    let mut next = 0;
    while next < count {
        let mut p = match waiting.remove(&next) {
            Some(p) => p,
            None => match done.recv() {
                Ok(p) => {
                    waiting.insert(p.k, p);
                    continue;
                }
                Err(_) => return,
            },
        };
        if issued < count {
            if jobs.send(fresh(&mut spare, issued)).is_err() {
                return;
            }
            issued += 1;
        }
        // Proven: it starts where the range before ended.
        if p.start != Some(taken.at) {
            if taken.at >= p.until {
                // A record of the range before covers this one.
                p.recs.clear();
                p.start = Some(taken.at);
                p.end = taken.at;
                p.stop = if taken.at >= f.size {
                    Stop::End
                } else {
                    Stop::Range
                };
            } else {
                taken.reparsed += 1;
                parse(f, &mut p, taken.at, route);
            }
        }
        // `-c`: no more than the limit.
        if let Some(limit) = f.limit {
            let left = limit.saturating_sub(taken.frames);
            if (p.recs.len() as u64) >= left {
                p.recs.truncate(left as usize);
                // The one reader ends it (it has read `limit` frames).
                p.stop = Stop::Unclean;
                p.end = p
                    .recs
                    .last()
                    .map_or(taken.at, |r| p.base + u64::from(r.at) + u64::from(r.caplen));
            }
        }
        taken.frames += p.recs.len() as u64;
        taken.at = p.end;
        taken.stop = p.stop;
        let go_on = each(&p.ranged());
        spare.push_back(p);
        if spare.len() > ahead as usize + 2 {
            spare.pop_front();
        }
        if !go_on || taken.stop != Stop::Range {
            if !go_on {
                taken.stop = Stop::Unclean;
            }
            return;
        }
        next += 1;
    }
}

/// Makes `data` hold at least `want` bytes from `base` (fewer at the end of
/// the file); false when it holds fewer.
fn fill(f: &RangeFile, p: &mut Piece, want: usize) -> bool {
    if p.valid >= want {
        return true;
    }
    let Some(data) = Arc::get_mut(&mut p.data) else {
        return false;
    };
    if data.len() < want {
        data.resize(want, 0);
    }
    while p.valid < want {
        let at = p.base + p.valid as u64;
        if at >= f.size {
            return false;
        }
        match f.file.read_at(&mut data[p.valid..want], at) {
            Ok(0) | Err(_) => return false,
            Ok(n) => p.valid += n,
        }
    }
    true
}

/// A record header's four fields in the file's byte order: seconds, the
/// sub-second part, captured and wire length.
fn header(f: &RangeFile, b: &[u8]) -> (u32, u32, u32, u32) {
    let word = |i: usize| {
        let w = u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if f.swapped { w.swap_bytes() } else { w }
    };
    (word(0), word(4), word(8), word(12))
}

/// The first offset of the range where `CHAIN` plausible record headers
/// follow one another (or as many as reach the end of the file).
fn guess(f: &RangeFile, p: &mut Piece) -> Option<u64> {
    let span = (p.until - p.base) as usize;
    'start: for off in 0..span {
        let (mut q, mut prev) = (off, None);
        for _ in 0..CHAIN {
            if p.base + q as u64 == f.size {
                return Some(p.base + off as u64);
            }
            if !fill(f, p, q + 16) {
                continue 'start;
            }
            let (sec, frac, caplen, len) = header(f, &p.data[q..q + 16]);
            if !plausible(f, sec, frac, caplen, len, prev) {
                continue 'start;
            }
            prev = Some(sec);
            q += 16 + caplen as usize;
        }
        return Some(p.base + off as u64);
    }
    None
}

/// A record header that could be one: lengths the fast path takes, not
/// empty (a run of zero bytes would be a chain of empty records), a
/// sub-second part below a second, a wire length below 1 MiB, and a stamp
/// within an hour of the header before.
fn plausible(f: &RangeFile, sec: u32, frac: u32, caplen: u32, len: u32, prev: Option<u32>) -> bool {
    let per_sec = if f.nano { 1_000_000_000 } else { 1_000_000 };
    record::clean(caplen, len, f.snaplen)
        && caplen > 0
        && frac < per_sec
        && len < 1 << 20
        && prev.is_none_or(|p| sec.abs_diff(p) <= 3600)
}

/// Parses `p`'s records from offset `from` until one starts at or past its
/// range's end (or the file ends, or one is not clean).
fn parse(f: &RangeFile, p: &mut Piece, from: u64, route: &(dyn Fn(&[u8]) -> u32 + Sync)) {
    p.recs.clear();
    p.start = Some(from);
    let mut q = from;
    p.stop = loop {
        if q >= f.size {
            break Stop::End;
        }
        if q >= p.until {
            break Stop::Range;
        }
        let at = (q - p.base) as usize;
        if !fill(f, p, at + 16) {
            break Stop::Unclean;
        }
        let (sec, frac, caplen, len) = header(f, &p.data[at..at + 16]);
        if !record::clean(caplen, len, f.snaplen) {
            break Stop::Unclean;
        }
        let total = 16 + caplen as usize;
        if !fill(f, p, at + total) {
            break Stop::Unclean;
        }
        q += total as u64;
        let bytes = &p.data[at + 16..at + total];
        if let Some(Filter(prog)) = f.filter {
            // SAFETY: see `Filter`.
            let prog = unsafe { &*prog };
            if !record::keeps(prog, &record::header(sec, frac, caplen, len), bytes) {
                continue;
            }
        }
        p.recs.push(RangedFrame {
            at: (at + 16) as u32,
            caplen,
            len,
            ts: record::stamp(sec, frac, f.nano),
            route: route(bytes),
        });
    };
    p.end = q;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A classic pcap file of `records` (stamp, bytes).
    fn pcap(records: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&101u32.to_le_bytes());
        for (sec, bytes) in records {
            for w in [*sec, 0, bytes.len() as u32, bytes.len() as u32] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(bytes);
        }
        out
    }

    fn range_file(bytes: &[u8]) -> RangeFile {
        let mut t = tempfile::tempfile().unwrap();
        t.write_all(bytes).unwrap();
        RangeFile {
            file: Arc::new(t),
            size: bytes.len() as u64,
            first: 24,
            swapped: false,
            nano: false,
            snaplen: 65535,
            filter: None,
            limit: None,
        }
    }

    /// The records' stamps and first bytes, in the order taken.
    fn taken(f: &RangeFile, readers: usize, range: u64) -> (Vec<(i64, u8)>, Taken) {
        let mut got = Vec::new();
        let t = read(f, readers, range, &|b: &[u8]| u32::from(b[0]), &mut |p| {
            got.extend(p.frames.iter().map(|r| (r.ts.sec, r.route as u8)));
            true
        });
        (got, t)
    }

    /// Payloads that hold a chain of record headers one byte after
    /// every range boundary fool the guess, and the records still come out
    /// exactly as one reader reads them.
    #[test]
    fn a_payload_that_looks_like_records_is_parsed_again_not_believed() {
        // A payload of fake records of 4 bytes each.
        let mut fake = vec![0xEEu8];
        for _ in 0..10 {
            for w in [1_700_000_000u32, 0, 4, 4, 0] {
                fake.extend_from_slice(&w.to_le_bytes());
            }
        }
        let records: Vec<(u32, Vec<u8>)> = (0..200u32)
            .map(|i| {
                (
                    1_700_000_000 + i,
                    if i % 3 == 0 {
                        fake.clone()
                    } else {
                        vec![i as u8; 40]
                    },
                )
            })
            .collect();
        let bytes = pcap(&records);
        let f = range_file(&bytes);
        let want: Vec<(i64, u8)> = records.iter().map(|(s, b)| (i64::from(*s), b[0])).collect();
        let (one, t1) = taken(&f, 1, 1 << 30);
        assert_eq!(one, want);
        assert_eq!(t1.stop, Stop::End);
        let mut fooled = 0;
        for range in [64, 100, 177, 256, 1000] {
            for readers in [1, 2, 3] {
                let (got, t) = taken(&f, readers, range);
                assert_eq!(got, want, "range {range}, {readers} readers");
                assert_eq!((t.at, t.stop), (bytes.len() as u64, Stop::End));
                fooled += t.reparsed;
            }
        }
        assert!(fooled > 0, "the fake headers never fooled a guess");
    }

    /// A record cut by the end of the file stops the taking where it
    /// starts (the one reader takes it from there); `-c` stops it after
    /// the limit.
    #[test]
    fn a_cut_record_and_the_limit_stop_the_taking_where_one_reader_would() {
        let records: Vec<(u32, Vec<u8>)> =
            (0..50u32).map(|i| (100 + i, vec![i as u8; 60])).collect();
        let mut bytes = pcap(&records);
        let whole = bytes.len() as u64;
        bytes.truncate(bytes.len() - 10);
        let f = range_file(&bytes);
        let (got, t) = taken(&f, 2, 300);
        assert_eq!(got.len(), 49);
        assert_eq!((t.at, t.stop, t.frames), (whole - 76, Stop::Unclean, 49));
        let mut f = range_file(&pcap(&records));
        f.limit = Some(17);
        let (got, t) = taken(&f, 3, 200);
        assert_eq!(got.len(), 17);
        assert_eq!((t.at, t.stop, t.frames), (24 + 17 * 76, Stop::Unclean, 17));
    }
}
