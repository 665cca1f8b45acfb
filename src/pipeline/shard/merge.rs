//! The merge: the shards' connections numbered as one analyzer numbers
//! them and handed to the sink where one analyzer reports them, with the
//! packet records in capture order between them.

use super::collect::{Line, Lines, Report};
use crate::pipeline::event::{Sharded, Stats};
use crate::pipeline::summary::FlowSummary;
use std::io;

/// Numbers the shards' connections as one analyzer would (by first frame)
/// as soon as no shard can still report an earlier one, and hands them to
/// the sink in the order they were reported in the capture (by frame, then
/// id), as soon as no shard can still report one before; those still open
/// at the end of input by id, merged from the shards' chunks (each shard
/// reports them in id order: one is handed on when every shard still
/// running has one waiting, so the order is one analyzer's, run after run).
/// Memory: 4 bytes per connection for the numbering, and the connections
/// reported but not yet handed on (a few batches' or chunks' worth).
pub(super) struct Merge {
    /// Per shard: first frames of connections not yet numbered.
    pub(super) started: Vec<std::collections::VecDeque<u64>>,
    /// Per shard: how far it has analyzed.
    pub(super) progress: Vec<u64>,
    /// Per shard: its ids (index: own id − 1) to the whole's.
    pub(super) ids: Vec<Vec<u32>>,
    pub(super) next: u32,
    /// Per shard: reported connections waiting for their number.
    pub(super) waiting: Vec<Vec<(u64, Box<FlowSummary>)>>,
    /// Numbered, by where they were reported and id.
    /// (Boxed: a summary is large, and the tree moves its values.)
    pub(super) ready: std::collections::BTreeMap<(u64, u32), Box<FlowSummary>>,
    /// Connections handed to the sink so far.
    pub(super) reported: u64,
    /// Shards that ended, and their counters added up.
    pub(super) ended: usize,
    pub(super) stats: Stats,
    /// Packet records: per shard, those not yet written (and how far into
    /// the first chunk); written in capture order.
    pub(super) packets: bool,
    pub(super) lines: Vec<std::collections::VecDeque<(Lines, usize)>>,
    /// Per shard: a written buffer to give back (`Batch::lines`).
    pub(super) spare: Vec<Option<Lines>>,
    /// Per shard: it sent its last report.
    pub(super) done: Vec<bool>,
    /// Per shard: its connections still open at the end of input that are
    /// in `ready`; and whose each of those is (by id).
    pub(super) at_end: Vec<usize>,
    pub(super) end_owner: std::collections::BTreeMap<u32, usize>,
}

impl Merge {
    pub(super) fn new(shards: usize, packets: bool) -> Merge {
        Merge {
            started: vec![Default::default(); shards],
            progress: vec![0; shards],
            ids: vec![Vec::new(); shards],
            next: 0,
            waiting: vec![Vec::new(); shards],
            ready: Default::default(),
            reported: 0,
            ended: 0,
            stats: Stats::default(),
            packets,
            lines: (0..shards).map(|_| Default::default()).collect(),
            spare: (0..shards).map(|_| None).collect(),
            done: vec![false; shards],
            at_end: vec![0; shards],
            end_owner: Default::default(),
        }
    }

    /// The next packet record of shard `s` not yet written.
    pub(super) fn next_line(&self, s: usize) -> Option<Line> {
        let (lines, at) = self.lines[s].front()?;
        lines.items.get(*at).copied()
    }

    pub(super) fn absorb(&mut self, shard: usize, r: Report) {
        if let Some(s) = &r.end {
            add(&mut self.stats, s);
            self.ended += 1;
            self.done[shard] = true;
        }
        self.started[shard].extend(r.started);
        self.progress[shard] = r.upto;
        self.waiting[shard].extend(r.flows);
        if !r.lines.items.is_empty() {
            self.lines[shard].push_back((r.lines, 0));
        }
    }

    /// Numbers what can be, then hands on what no shard can precede.
    pub(super) fn emit(&mut self, sink: &mut impl Sharded) -> io::Result<()> {
        let safe = self.progress.iter().copied().min().unwrap_or(0);
        loop {
            let first = (0..self.started.len())
                .filter_map(|s| self.started[s].front().map(|&n| (n, s)))
                .min();
            match first {
                Some((n, s)) if n <= safe => {
                    self.started[s].pop_front();
                    self.next += 1;
                    self.ids[s].push(self.next);
                }
                _ => break,
            }
        }
        for s in 0..self.waiting.len() {
            if self.waiting[s].is_empty() {
                continue;
            }
            for (at, mut f) in std::mem::take(&mut self.waiting[s]) {
                match self.ids[s].get(f.id as usize - 1) {
                    Some(&id) => {
                        f.id = id;
                        if at == u64::MAX {
                            self.at_end[s] += 1;
                            self.end_owner.insert(id, s);
                        }
                        self.ready.insert((at, id), f);
                    }
                    None => self.waiting[s].push((at, f)),
                }
            }
        }
        // Packet records in capture order, each after the connections
        // reported before it (as one analyzer writes them): a run of one
        // shard's records at a time, up to the next of another shard's.
        while self.packets {
            let (mut first, mut second) = (None, u64::MAX);
            for s in 0..self.lines.len() {
                if let Some(l) = self.next_line(s) {
                    match first {
                        Some((n, _)) if n < l.n => second = second.min(l.n),
                        _ => {
                            second = second.min(first.map_or(u64::MAX, |(n, _)| n));
                            first = Some((l.n, s));
                        }
                    }
                }
            }
            let Some((n, s)) = first.filter(|&(n, _)| n <= safe) else {
                break;
            };
            let upto = second.min(safe.saturating_add(1));
            let mut flow_at = self.ready.first_key_value().map_or(u64::MAX, |(k, _)| k.0);
            let (lines, at) = self.lines[s].front_mut().expect("just seen");
            let mut n = n;
            loop {
                while flow_at <= n {
                    let (_, f) = self.ready.pop_first().expect("just seen");
                    sink.flow(&f)?;
                    self.reported += 1;
                    flow_at = self.ready.first_key_value().map_or(u64::MAX, |(k, _)| k.0);
                }
                let line = lines.items[*at];
                // Flow 0: a line of no connection (an IP fragment's).
                let id = match line.flow {
                    0 => 0,
                    f => self.ids[s][f as usize - 1],
                };
                let b = &lines.bytes;
                sink.formatted(
                    line.ts,
                    &b[line.start as usize..line.mid as usize],
                    id,
                    &b[line.mid as usize..line.end as usize],
                )?;
                *at += 1;
                match lines.items.get(*at) {
                    Some(next) if next.n < upto => n = next.n,
                    _ => break,
                }
            }
            if *at == lines.items.len() {
                let mut done = self.lines[s].pop_front().expect("just seen").0;
                done.bytes.clear();
                done.items.clear();
                self.spare[s] = Some(done);
            }
        }
        while let Some(entry) = self.ready.first_entry() {
            if entry.key().0 > safe {
                break;
            }
            let (_, f) = entry.remove_entry();
            self.handed(&f);
            sink.flow(&f)?;
        }
        // Those still open at the end of input go on by id as they come:
        // holding them until every shard has ended would hold every open
        // connection's summary at once. Not with packet records: they all
        // come before.
        if safe < u64::MAX && !self.packets {
            while let Some(entry) = self.ready.last_entry() {
                if entry.key().0 != u64::MAX
                    || !(0..self.done.len()).all(|s| self.done[s] || self.at_end[s] > 0)
                {
                    break;
                }
                let first = *self
                    .ready
                    .range((u64::MAX, 0)..)
                    .next()
                    .expect("just seen")
                    .0;
                let f = self.ready.remove(&first).expect("just seen");
                self.handed(&f);
                sink.flow(&f)?;
            }
        }
        Ok(())
    }

    /// A connection is handed to the sink.
    fn handed(&mut self, f: &FlowSummary) {
        self.reported += 1;
        if let Some(s) = self.end_owner.remove(&f.id) {
            self.at_end[s] -= 1;
        }
    }
}

/// Adds a shard's counters to the whole's.
fn add(to: &mut Stats, s: &Stats) {
    to.frames += s.frames;
    to.tcp_segments += s.tcp_segments;
    to.skipped += s.skipped;
    to.not_ip += s.not_ip;
    to.not_tcp += s.not_tcp;
    to.fragments += s.fragments;
    to.frag.add(&s.frag);
    to.truncated += s.truncated;
    to.malformed += s.malformed;
}
