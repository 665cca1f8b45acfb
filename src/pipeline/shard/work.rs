//! A shard's thread: its frames (and the reader's sweeps and reassembled
//! fragments) through one analyzer, reporting after each batch.

use super::collect::{Collect, Lines, Report};
use super::{Batch, COPIED, Item};
use crate::core::decode::LinkType;
use crate::core::flows::Options;
use crate::pipeline::analyzer::{Analyzer, LookaheadPass};
use crate::pipeline::event::{Frame, ShardFormat};
use std::io;
use std::sync::mpsc::{Receiver, SyncSender};

/// Frames ahead whose headers a shard asks the core to fetch.
const PREFETCH_AHEAD: usize = 4;

/// Asks the core to fetch the two cache lines at `bytes[at..]` (a hint:
/// nothing happens past the end).
#[inline(always)]
fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at + 64 < bytes.len() {
        // SAFETY: the addresses are inside `bytes`; a prefetch reads nothing.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p = bytes.as_ptr().add(at).cast::<i8>();
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// A shard: analyzes its frames, reporting after each batch what it saw
/// begin and end; at the end, its counters.
#[allow(clippy::too_many_arguments)]
pub(super) fn work<F: ShardFormat>(
    shard: usize,
    format: Option<F>,
    link: LinkType,
    options: Options,
    pass: LookaheadPass,
    rx: Receiver<Batch>,
    free: std::sync::mpsc::Sender<Batch>,
    report: SyncSender<(usize, Report)>,
) -> io::Result<()> {
    let collect = Collect {
        shard,
        to: report,
        flows: Vec::new(),
        started: Vec::new(),
        seen: 0,
        at: 0,
        upto: 0,
        format,
        lines: Lines::default(),
        spare: None,
    };
    let mut a = Analyzer::new(link, options, collect).with_lookahead(pass);
    for mut batch in rx.iter() {
        if let Some(spare) = batch.lines.take() {
            a.sink_mut().spare = Some(spare);
        }
        // An IP fragment's fate, for the frame that follows.
        let mut told = None;
        for (i, item) in batch.items.iter().enumerate() {
            // The headers of a frame a few ahead, on their way into this
            // core's cache while this one is analyzed (the reader read
            // them on another core).
            if let Some(&Item::Frame { at, chunk, .. }) = batch.items.get(i + PREFETCH_AHEAD) {
                let bytes = match chunk {
                    COPIED => &batch.data[..],
                    c => &batch.chunks[usize::from(c)][..],
                };
                prefetch(bytes, at as usize);
            }
            match *item {
                Item::Frame {
                    n,
                    ts,
                    len,
                    at,
                    caplen,
                    now,
                    chunk,
                } => {
                    a.sink_mut().at = n;
                    let bytes = match chunk {
                        COPIED => &batch.data[..],
                        c => &batch.chunks[usize::from(c)][..],
                    };
                    let data = &bytes[at as usize..(at + caplen) as usize];
                    let frame = Frame { n, ts, len, data };
                    if let Some((fate, d)) = told.take() {
                        a.tell(fate, &batch.data[d]);
                    }
                    match now {
                        Some(now) => a.frame_at(&frame, now)?,
                        None => a.frame(&frame)?,
                    }
                }
                Item::Sweep { now, n } => {
                    a.sink_mut().at = n;
                    a.expire_at(now)?;
                }
                Item::Told {
                    fate,
                    datagram,
                    len,
                } => told = Some((fate, datagram as usize..(datagram + len) as usize)),
            }
        }
        if let Some((now, outliers)) = batch.end {
            let stats = a.stats;
            let sink = a.sink_mut();
            // The connections still open, reported in chunks: the shard has
            // analyzed every frame, but only its last report may say it is
            // done (then nothing can come before what it reported).
            (sink.at, sink.upto) = (u64::MAX, batch.upto);
            let mut collect = a.finish_at(now, outliers)?;
            collect.report(u64::MAX, Some(stats));
            return Ok(());
        }
        if !a.sink_mut().report(batch.upto, None) {
            return Ok(());
        }
        batch.items.clear();
        batch.data.clear();
        batch.chunks.clear();
        let _ = free.send(batch);
    }
    Ok(())
}
