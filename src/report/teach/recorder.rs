//! The steps `--explain`, `--diagram`, `--diagram-svg` and `--html` keep
//! of each connection: its first and last segments (the middle of a long
//! one is elided), each with what the analyses mark on it, and with
//! `--html` each one's tcpdump line and words.

use crate::analyses::registry::FlowStep;
use crate::core::tcp::Kind;
use crate::pipeline::event::PacketEvent;
use std::collections::HashMap;

/// Most steps kept per flow; the middle of longer flows is elided.
const MAX_STEPS: usize = 400;

/// `Recorder::with_lines`: a flow's first segments that keep their line
/// even when they are plain data or ACKs.
pub const LINE_HEAD: u64 = 16;

/// The steps of every open flow, until the flow is reported.
#[derive(Debug, Default)]
pub struct Recorder {
    flows: HashMap<u32, FlowSteps>,
    /// `with_lines`: the printer of each kept step's tcpdump line (it owns
    /// the relative-sequence bases, as tcpdump's printer does), and the
    /// buffer lines are written into.
    lines: Option<(crate::report::tcpdump::Tcpdump, Vec<u8>)>,
}

#[derive(Debug, Default)]
pub struct FlowSteps {
    pub head: Vec<FlowStep>,
    /// The latest steps once `head` is full (a ring of MAX_STEPS / 2).
    pub tail: Vec<FlowStep>,
    tail_at: usize,
    pub elided: u64,
    /// With `Recorder::with_lines`: each kept step's tcpdump line and
    /// annotation, by the step's slot (head steps first, then the ring).
    lines: Vec<Box<str>>,
}

impl FlowSteps {
    /// Keeps `s` (and its line, when there is one) in the head or the ring.
    fn push(&mut self, mut s: FlowStep, line: Option<Box<str>>) {
        let slot = if self.head.len() < MAX_STEPS / 2 {
            s.slot = self.head.len() as u16;
            self.head.push(s);
            s.slot
        } else if self.tail.len() < MAX_STEPS / 2 {
            s.slot = (MAX_STEPS / 2 + self.tail.len()) as u16;
            self.tail.push(s);
            s.slot
        } else {
            s.slot = (MAX_STEPS / 2 + self.tail_at) as u16;
            self.tail[self.tail_at] = s;
            self.tail_at = (self.tail_at + 1) % self.tail.len();
            self.elided += 1;
            s.slot
        };
        if let Some(line) = line {
            let slot = usize::from(slot);
            if self.lines.len() <= slot {
                self.lines.resize(slot + 1, Box::from(""));
            }
            self.lines[slot] = line;
        }
    }

    /// The tcpdump line and, after a newline, its annotation, kept for a
    /// step ("" without).
    pub fn line(&self, s: &FlowStep) -> &str {
        self.lines.get(usize::from(s.slot)).map_or("", |l| l)
    }

    /// All kept steps in order, with the count of elided ones between.
    pub fn ordered(&self) -> (Vec<FlowStep>, Vec<FlowStep>) {
        let mut tail = self.tail[self.tail_at..].to_vec();
        tail.extend_from_slice(&self.tail[..self.tail_at]);
        (self.head.clone(), tail)
    }

    /// All kept steps in order (the elided ones left out).
    pub fn all(&self) -> Vec<FlowStep> {
        let (mut head, tail) = self.ordered();
        head.extend(tail);
        head
    }
}

impl Recorder {
    /// A recorder that also keeps each kept step's tcpdump line and
    /// annotation (`--html`: a mark shows them).
    pub fn with_lines(style: crate::report::tcpdump::Style) -> Recorder {
        Recorder {
            lines: Some((crate::report::tcpdump::Tcpdump::new(style), Vec::new())),
            ..Recorder::default()
        }
    }

    /// `record`, or, for a connection whose steps would never be shown
    /// (`Kept::closed_to`), only what later lines of other connections
    /// depend on (the stamps' clock); its steps so far are dropped.
    pub fn offer(&mut self, ev: &PacketEvent, shown: bool) {
        if shown {
            return self.record(ev);
        }
        if self.flows.remove(&ev.flow_id).is_some()
            && let Some((printer, _)) = self.lines.as_mut()
        {
            printer.forget(ev.flow_id);
        }
        if let Some((printer, _)) = self.lines.as_mut() {
            printer.pass_time(ev.ts);
        }
    }

    pub fn record(&mut self, ev: &PacketEvent) {
        let fs = self.flows.entry(ev.flow_id).or_default();
        let line = self.lines.as_mut().and_then(|(printer, buf)| {
            // Lines are kept for a connection's first segments and for every
            // segment that is not plain data or a plain ACK: the marks
            // people click. The rest only move the printer's state.
            let seen = fs.head.len() as u64 + fs.tail.len() as u64 + fs.elided;
            let plain = matches!(ev.kind, Kind::Data | Kind::Ack) && !ev.notes.telling();
            if plain && seen >= LINE_HEAD {
                printer.skip(ev);
                return None;
            }
            buf.clear();
            printer.write_line(buf, ev);
            buf.push(b'\n');
            let _ = crate::report::annotate::write(buf, ev);
            std::str::from_utf8(buf).ok().map(Box::from)
        });
        let step = FlowStep {
            n: ev.n,
            ts: ev.ts,
            from: ev.from,
            kind: ev.kind,
            marks: ev.notes.marks(),
            flags: ev.seg.flags,
            len: ev.seg.len,
            late: ev.late,
            injected: ev.injected.is_some(),
            slot: 0,
            revised: false,
        };
        fs.push(step, line);
    }

    /// Earlier steps of a flow turned out to be of another kind.
    pub fn revise(&mut self, r: &crate::pipeline::event::Revisions) {
        let Some(fs) = self.flows.get_mut(&r.flow_id) else {
            return;
        };
        for item in r.items {
            for s in fs.head.iter_mut().chain(fs.tail.iter_mut()) {
                if s.n == item.n {
                    s.kind = item.kind;
                    s.marks = item.notes.marks();
                    s.revised = true;
                }
            }
        }
    }

    /// The steps of a flow still open, left where they are.
    pub fn peek(&self, flow: u32) -> Option<&FlowSteps> {
        self.flows.get(&flow)
    }

    pub fn take(&mut self, flow: u32) -> FlowSteps {
        if let Some((printer, _)) = self.lines.as_mut() {
            printer.forget(flow);
        }
        self.flows.remove(&flow).unwrap_or_default()
    }
}
