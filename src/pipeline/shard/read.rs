//! The reader: frames to shards in batches, with what one analyzer shares
//! across connections (the clock, its sweeps, frame numbers, IP fragments)
//! kept here for all. Frames come from the source one by one (`frames`)
//! or, `--readers N`, first from range readers that read the file on N
//! threads (`FrameSource::read_ranges`, `input::ranges`): they find the
//! records and each record's shard; this thread takes them in file order
//! and goes on as it would.

use super::merge::Merge;
use super::{
    Batch, COPIED, FLUSH_FRAMES, Item, Readers, shard_of_ends, shard_of_keyed, shard_state,
};
use crate::core::clock::Clock;
use crate::core::decode::{self, LinkType, Skip, decode};
use crate::core::frag::{Fate, Reassembler};
use crate::core::keyed::KeyedState;
use crate::core::time::Timestamp;
use crate::pipeline::drive::Controls;
use crate::pipeline::event::{Frame, FrameSource, Next, ReadEnd};
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// Hands the shards' reports on (`wait`: for one, a while); false when
/// none can come any more.
pub(super) type Take<'t> = dyn FnMut(&mut Merge, bool) -> io::Result<bool> + 't;

/// A range reader's word for a record: an IP fragment (this thread
/// reassembles it) …
const ROUTE_FRAGMENT: u32 = u32::MAX;
/// … not a TCP segment (the first shard counts it) — else its shard.
const ROUTE_OTHER: u32 = u32::MAX - 1;

/// What the reader keeps across frames.
struct Reader<'a> {
    link: LinkType,
    shards: usize,
    state: KeyedState,
    to: Vec<SyncSender<Batch>>,
    free: &'a Receiver<Batch>,
    batches: Vec<Batch>,
    clock: Clock,
    second: Option<i64>,
    /// Frames read.
    n: u64,
    next_flush: u64,
    frags: Reassembler,
}

/// The reader: frames to shards, a sweep to every shard when the clock
/// enters a new second; `take` hands the shards' reports on as they come.
/// Returns whether a signal stopped it, and the clock's outliers.
#[allow(clippy::too_many_arguments)]
pub(super) fn read_into(
    src: &mut impl FrameSource,
    link: LinkType,
    readers: Readers,
    to: Vec<SyncSender<Batch>>,
    free: &Receiver<Batch>,
    controls: &Controls,
    take: &mut Take,
    merge: &mut Merge,
) -> (Result<bool, ReadEnd>, u64) {
    let shards = to.len();
    let mut r = Reader {
        link,
        shards,
        state: *shard_state(),
        batches: (0..shards)
            .map(|_| free.try_recv().unwrap_or_default())
            .collect(),
        to,
        free,
        clock: Clock::default(),
        second: None,
        n: 0,
        next_flush: FLUSH_FRAMES,
        frags: Reassembler::default(),
    };
    let stopped = match readers.count {
        0 | 1 => None,
        _ => r.ranges(src, readers, controls, take, merge),
    };
    let result = match stopped {
        Some(stopped) => stopped,
        None => r.frames(src, controls, take, merge),
    };
    r.frags.finish();
    merge.stats.frag.add(&r.frags.counts);
    let outliers = r.clock.outliers;
    if let Err(e) = r.finish(merge, take) {
        return (Err(ReadEnd::Output(e)), outliers);
    }
    (result, outliers)
}

impl Reader<'_> {
    /// Frames from the source, one by one, to its end (or a stop).
    fn frames(
        &mut self,
        src: &mut impl FrameSource,
        controls: &Controls,
        take: &mut Take,
        merge: &mut Merge,
    ) -> Result<bool, ReadEnd> {
        let mut cached: Option<Arc<Vec<u8>>> = src.current_chunk().cloned();
        loop {
            if let Some(stop) = self.stopped(controls, merge) {
                return stop;
            }
            let frame = match src.next_frame() {
                Ok(Next::Frame(frame)) => frame,
                Ok(Next::Idle(_)) => continue,
                Ok(Next::End) => return Ok(false),
                Err(e) => return Err(e),
            };
            self.n = frame.n;
            // Where the frame's bytes are in the shared buffer, if they are.
            let shared = cached.as_ref().and_then(|c| {
                let base = c.as_ptr() as usize;
                let p = frame.data.as_ptr() as usize;
                (p >= base && p + frame.data.len() <= base + c.len()).then(|| (c, p - base))
            });
            // The segment's ends only: its shard's analyzer decodes it whole.
            let (shard, now) = match decode::ends(self.link, frame.data) {
                Ok(ends) => {
                    let now = self.tick(&frame);
                    (shard_of_ends(ends, self.shards, &self.state), Some(now))
                }
                Err(Skip::Fragment) => self.fragment(&frame),
                // Counted (as skipped) by the first shard.
                Err(_) => (0, None),
            };
            let full = self.push(shard, &frame, now, shared);
            // The source read into another buffer: share that one from now
            // on (holding it makes the source read the next into a new one).
            if src.current_chunk().map(Arc::as_ptr) != cached.as_ref().map(Arc::as_ptr) {
                cached = src.current_chunk().cloned();
            }
            if let Some(end) = self.flush(full, shard, merge, take) {
                return end;
            }
        }
    }

    /// `--readers`: the file's frames from the range readers, as far as
    /// they go (the source then goes on from there); `Some` when the
    /// reading stopped there (a signal, the output gone).
    fn ranges(
        &mut self,
        src: &mut impl FrameSource,
        readers: Readers,
        controls: &Controls,
        take: &mut Take,
        merge: &mut Merge,
    ) -> Option<Result<bool, ReadEnd>> {
        let (link, shards, state) = (self.link, self.shards, self.state);
        let route = move |bytes: &[u8]| match decode::ends(link, bytes) {
            Ok(ends) => shard_of_ends(ends, shards, &state) as u32,
            Err(Skip::Fragment) => ROUTE_FRAGMENT,
            Err(_) => ROUTE_OTHER,
        };
        let mut stopped = None;
        src.read_ranges(readers.count, readers.range, &route, &mut |ranged| {
            for f in ranged.frames {
                if let Some(stop) = self.stopped(controls, merge) {
                    stopped = Some(stop);
                    return false;
                }
                self.n += 1;
                let frame = Frame {
                    n: self.n,
                    ts: f.ts,
                    len: f.len,
                    data: ranged.bytes(f),
                };
                let (shard, now) = match f.route {
                    ROUTE_FRAGMENT => self.fragment(&frame),
                    ROUTE_OTHER => (0, None),
                    shard => (shard as usize, Some(self.tick(&frame))),
                };
                let full = self.push(shard, &frame, now, Some((ranged.data, f.at as usize)));
                if let Some(end) = self.flush(full, shard, merge, take) {
                    stopped = Some(end);
                    return false;
                }
            }
            true
        });
        stopped
    }

    /// After a push: the batches sent when the shard's is `full` or it is
    /// time to flush them all; `Some` when the reading ends there (the
    /// output gone, or failed).
    #[inline(always)]
    fn flush(
        &mut self,
        full: bool,
        shard: usize,
        merge: &mut Merge,
        take: &mut Take,
    ) -> Option<Result<bool, ReadEnd>> {
        if !full && self.n < self.next_flush {
            return None;
        }
        match self.send(shard, merge, take) {
            Ok(true) => None,
            Ok(false) => Some(Ok(false)),
            Err(e) => Some(Err(ReadEnd::Output(e))),
        }
    }

    /// A signal or the output's end stops the reading (`Some(Ok(true))`:
    /// stopped by a signal); SIGUSR1 says how far it got.
    #[inline(always)]
    fn stopped(&self, controls: &Controls, merge: &Merge) -> Option<Result<bool, ReadEnd>> {
        if controls.stop.load(Ordering::Relaxed) {
            return Some(Ok(true));
        }
        if controls.quit.is_some_and(|q| q.load(Ordering::Relaxed)) {
            return Some(Ok(false));
        }
        if let Some(show) = controls.show
            && show.load(Ordering::Relaxed)
            && show.swap(false, Ordering::Relaxed)
        {
            // SIGUSR1: how far the reading got (the table so far lives in
            // the shards: one thread prints it).
            eprintln!(
                "kacap: so far: {} frames read, {} connections begun, {} reported \
                 (on {} threads the table so far is not printed: --threads 1 prints it)",
                self.n, merge.next, merge.reported, self.shards
            );
        }
        None
    }

    /// The frame into its shard's batch (its bytes where they are when
    /// `shared`, else copied); true when the batch is full.
    #[inline(always)]
    fn push(
        &mut self,
        shard: usize,
        frame: &Frame,
        now: Option<Timestamp>,
        shared: Option<(&Arc<Vec<u8>>, usize)>,
    ) -> bool {
        let b = &mut self.batches[shard];
        let (chunk, at) = match shared {
            Some((c, at)) => {
                if b.chunks.last().is_none_or(|last| !Arc::ptr_eq(last, c)) {
                    b.chunks.push(c.clone());
                }
                ((b.chunks.len() - 1) as u16, at)
            }
            None => {
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
        b.full()
    }

    /// Sends shard `shard`'s batch, or every shard's when a flush is due
    /// (a quiet shard's progress must not hold back the numbering), then
    /// takes the reports so far; false when a shard is gone.
    #[cold]
    #[inline(never)]
    fn send(&mut self, shard: usize, merge: &mut Merge, take: &mut Take) -> io::Result<bool> {
        let flush = self.n >= self.next_flush;
        let all = if flush {
            self.next_flush = self.n + FLUSH_FRAMES;
            0..self.shards
        } else {
            shard..shard + 1
        };
        for i in all {
            let fresh = self.free.try_recv().unwrap_or_default();
            let mut full = std::mem::replace(&mut self.batches[i], fresh);
            full.upto = self.n;
            full.lines = merge.spare[i].take();
            if !put(&self.to[i], full, merge, take)? {
                take(merge, false)?;
                return Ok(false);
            }
        }
        take(merge, false)?;
        Ok(true)
    }

    /// Every frame has been read: the last batches cover them all (each
    /// shard's last report, after its connections still open, says
    /// `u64::MAX`).
    fn finish(&mut self, merge: &mut Merge, take: &mut Take) -> io::Result<()> {
        let batches = std::mem::take(&mut self.batches);
        for (i, mut b) in batches.into_iter().enumerate() {
            b.upto = self.n;
            b.end = Some((self.clock.now(), self.clock.outliers));
            put(&self.to[i], b, merge, take)?;
        }
        Ok(())
    }

    /// The capture clock after a TCP segment's frame; a sweep in every
    /// shard's stream when it enters a new second.
    #[inline(always)]
    fn tick(&mut self, frame: &Frame) -> Timestamp {
        let now = self.clock.frame(frame.ts);
        if self.second != Some(now.sec) {
            self.second = Some(now.sec);
            for b in self.batches.iter_mut() {
                b.items.push(Item::Sweep { now, n: frame.n });
            }
        }
        now
    }

    /// An IP fragment, reassembled here once for every shard: its shard and
    /// the clock after it, as for a frame. A completed datagram goes to its
    /// connection's shard (a segment: the clock sees it), a first fragment
    /// too (its line's numbers are its connection's), any other to the
    /// first shard. The shard is told the fragment's fate (and given the
    /// datagram) in an `Item::Told` before the frame.
    #[cold]
    #[inline(never)]
    fn fragment(&mut self, frame: &Frame) -> (usize, Option<Timestamp>) {
        let Some((first, view, piece)) = decode::fragment(self.link, frame.data) else {
            return (0, None);
        };
        let fate = self.frags.offer(&piece, frame.ts);
        let (shard, now) = match fate {
            Fate::Complete { .. } => match decode(LinkType::Raw, self.frags.datagram()) {
                Ok(seg) => {
                    let shard = shard_of_keyed(&seg, self.shards, &self.state);
                    (shard, Some(self.tick(frame)))
                }
                Err(_) => (0, None),
            },
            _ if matches!(view.tcp, decode::FragTcp::None | decode::FragTcp::Cut) => (0, None),
            _ => (shard_of_keyed(&first, self.shards, &self.state), None),
        };
        let b = &mut self.batches[shard];
        let datagram = b.data.len() as u32;
        if matches!(fate, Fate::Complete { .. }) {
            b.data.extend_from_slice(self.frags.datagram());
        }
        let len = b.data.len() as u32 - datagram;
        b.items.push(Item::Told {
            fate,
            datagram,
            len,
        });
        (shard, now)
    }
}

/// Puts `batch` in a shard's queue, taking the shards' reports while the
/// queue is full; false when the shard is gone.
fn put(
    to: &SyncSender<Batch>,
    mut batch: Batch,
    merge: &mut Merge,
    take: &mut Take,
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
