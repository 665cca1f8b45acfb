//! A shard's side: what it collects as it analyzes its frames (the
//! connections it saw begin and end, its packet records formatted but for
//! the connection's number) and reports to the reader after each batch.

use crate::core::time::Timestamp;
use crate::pipeline::event::{FragmentEvent, PacketEvent, Revisions, ShardFormat, Sink, Stats};
use crate::pipeline::summary::FlowSummary;
use std::io;
use std::sync::mpsc::SyncSender;

/// What a shard tells the reader after each batch.
#[derive(Default)]
pub(super) struct Report {
    /// The first frames of the connections it saw begin (in order).
    pub(super) started: Vec<u64>,
    /// Connections reported, with the shard's own ids, each with the frame
    /// at which it was reported (`u64::MAX`: at the end of input).
    pub(super) flows: Vec<(u64, Box<FlowSummary>)>,
    /// `--json` packet records, formatted but for the connection's number.
    pub(super) lines: Lines,
    /// It has analyzed every frame of its own up to this one.
    pub(super) upto: u64,
    /// The end: its counters.
    pub(super) end: Option<Stats>,
}

/// Packet records of one shard, in its capture order: each is
/// `bytes[start..mid]`, the connection's number, `bytes[mid..end]`.
#[derive(Default)]
pub(super) struct Lines {
    pub(super) bytes: Vec<u8>,
    pub(super) items: Vec<Line>,
}

#[derive(Clone, Copy)]
pub(super) struct Line {
    pub(super) n: u64,
    pub(super) ts: Timestamp,
    /// The shard's own id of the connection.
    pub(super) flow: u32,
    pub(super) start: u32,
    pub(super) mid: u32,
    pub(super) end: u32,
}

/// A shard sends its packet records when they reach this many bytes.
pub(super) const LINES_BYTES: usize = 1 << 20;

/// A shard's sink: the connections begun and reported since its last
/// report, sent on every [`CHUNK_FLOWS`] reported (the end of input reports
/// every connection still open at once).
pub(super) struct Collect<F> {
    pub(super) shard: usize,
    pub(super) to: SyncSender<(usize, Report)>,
    pub(super) flows: Vec<(u64, Box<FlowSummary>)>,
    pub(super) started: Vec<u64>,
    /// Connections begun so far (ids are dense, in first-frame order).
    pub(super) seen: u32,
    /// The frame being analyzed (or swept at): where a report comes in the
    /// capture.
    pub(super) at: u64,
    /// The shard's progress as its last report said it.
    pub(super) upto: u64,
    /// Packet records or timeline lines: how to format them.
    pub(super) format: Option<F>,
    pub(super) lines: Lines,
    /// A written buffer given back (`Batch::lines`), for the next report.
    pub(super) spare: Option<Lines>,
}

/// Reported connections sent at once, at most.
pub(super) const CHUNK_FLOWS: usize = 1024;

impl<F> Collect<F> {
    /// Sends what was collected; `upto`: how far the shard has got.
    pub(super) fn report(&mut self, upto: u64, end: Option<Stats>) -> bool {
        self.upto = upto;
        let r = Report {
            started: std::mem::take(&mut self.started),
            flows: std::mem::take(&mut self.flows),
            lines: std::mem::replace(&mut self.lines, self.spare.take().unwrap_or_default()),
            upto,
            end,
        };
        self.to.send((self.shard, r)).is_ok()
    }
}

impl<F: ShardFormat> Sink for Collect<F> {
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        if ev.flow_id > self.seen {
            self.seen = ev.flow_id;
            self.started.push(ev.n);
        }
        if let Some(format) = &mut self.format {
            let l = &mut self.lines;
            let start = l.bytes.len();
            let mid = format.format(&mut l.bytes, ev)?;
            l.items.push(Line {
                n: ev.n,
                ts: ev.ts,
                flow: ev.flow_id,
                start: start as u32,
                mid: mid as u32,
                end: l.bytes.len() as u32,
            });
            if l.bytes.len() >= LINES_BYTES {
                // Mid-batch: the progress is still the last batch's.
                self.report(self.upto, None);
            }
        }
        Ok(())
    }

    /// A fragment's line, with no connection (flow 0: the merge writes
    /// no number).
    fn fragment(&mut self, fe: &FragmentEvent) -> io::Result<()> {
        if let Some(format) = &mut self.format {
            let l = &mut self.lines;
            let start = l.bytes.len();
            if format.format_fragment(&mut l.bytes, fe) {
                l.items.push(Line {
                    n: fe.ev.n,
                    ts: fe.ev.ts,
                    flow: 0,
                    start: start as u32,
                    mid: l.bytes.len() as u32,
                    end: l.bytes.len() as u32,
                });
            }
        }
        Ok(())
    }

    /// A revision's records, after the packet that made it (same frame
    /// number: the merge keeps a shard's order).
    fn revise(&mut self, r: &Revisions) -> io::Result<()> {
        let (Some(format), Some(after)) = (&mut self.format, self.lines.items.last().copied())
        else {
            return Ok(());
        };
        for item in 0..r.items.len() {
            let l = &mut self.lines;
            let start = l.bytes.len();
            if let Some(mid) = format.format_revision(&mut l.bytes, r, item) {
                l.items.push(Line {
                    start: start as u32,
                    mid: mid as u32,
                    end: l.bytes.len() as u32,
                    ..after
                });
            }
        }
        Ok(())
    }

    fn flow(&mut self, flow: &FlowSummary) -> io::Result<()> {
        if let Some(format) = &mut self.format {
            format.forget(flow.id);
        }
        self.flows.push((self.at, Box::new(flow.clone())));
        if self.flows.len() >= CHUNK_FLOWS {
            // Mid-batch: the progress is still the last batch's.
            self.report(self.upto, None);
        }
        Ok(())
    }

    fn finish(&mut self, _stats: &Stats) -> io::Result<()> {
        Ok(())
    }
}
