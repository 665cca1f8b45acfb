//! The default output: a tcpdump-style timeline, annotated, then the table.

use super::tcpdump::Tcpdump;
use super::{FlowSummary, PacketEvent, Sink, annotate, table};
use crate::analyzer::Stats;
use crate::classify::Kind;
use crate::flows::Flow;
use crate::keepalive::{Note, SystemDefaults};
use crate::time::Timestamp;
use std::io::{self, Write};

/// ANSI colors for flow labels, cycled by flow number.
const FLOW_COLORS: [&str; 6] = ["36", "35", "34", "33", "32", "96"];

/// What only a live capture shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveInfo {
    /// This host's keepalive sysctls, to compare with the inferred values.
    pub defaults: Option<SystemDefaults>,
}

pub struct TextOptions {
    pub color: bool,
    /// Print the timeline (false with `--summary`).
    pub timeline: bool,
    /// Live capture: flush every line, say when the next probe is due.
    pub live: Option<LiveInfo>,
}

pub struct TextSink<W: Write> {
    out: W,
    tcpdump: Tcpdump,
    opts: TextOptions,
    flows: Vec<FlowSummary>,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, tcpdump: Tcpdump, opts: TextOptions) -> Self {
        TextSink {
            out,
            tcpdump,
            opts,
            flows: Vec::new(),
        }
    }

    /// Live: when the prober's next probe is due, after a probe or its answer.
    fn expectation(&mut self, ev: &PacketEvent, flow: &Flow) -> io::Result<()> {
        if !matches!(ev.note, Note::Probe { .. } | Note::ProbeAnswered { .. }) {
            return Ok(());
        }
        if let Some(due) = flow.keepalive.next_probe_due(ev.ts) {
            write!(
                self.out,
                "; next probe expected in ~{}",
                annotate::Secs(due.since(ev.ts).max(0.0))
            )?;
        }
        Ok(())
    }

    fn note_color(ev: &PacketEvent) -> &'static str {
        match (ev.kind, ev.note) {
            (_, Note::GaveUp { .. }) | (_, Note::PeerReset { .. }) => "1;31",
            (Kind::Rst, _) => "31",
            (Kind::Keepalive, _) => "1;33",
            (_, Note::ProbeAnswered { .. }) => "1;32",
            (Kind::ZeroWindowProbe, _) | (Kind::ZeroWindowProbeAck, _) => "33",
            (Kind::Retransmission, _) => "35",
            _ => "2",
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn packet(&mut self, ev: &PacketEvent, flow: &Flow) -> io::Result<()> {
        if !self.opts.timeline {
            return Ok(());
        }
        self.tcpdump.write_line(&mut self.out, ev)?;
        if self.opts.color {
            let c = FLOW_COLORS[(ev.flow_id as usize - 1) % FLOW_COLORS.len()];
            write!(
                self.out,
                "  \x1b[{c}mflow {}:\x1b[0m \x1b[{}m",
                ev.flow_id,
                Self::note_color(ev)
            )?;
        } else {
            write!(self.out, "  flow {}: ", ev.flow_id)?;
        }
        annotate::write(&mut self.out, ev, flow)?;
        if self.opts.live.is_some() {
            self.expectation(ev, flow)?;
        }
        if self.opts.color {
            self.out.write_all(b"\x1b[0m")?;
        }
        self.out.write_all(b"\n")?;
        if self.opts.live.is_some() {
            self.out.flush()?;
        }
        Ok(())
    }

    fn flow(&mut self, flow: &Flow) -> io::Result<()> {
        self.flows.push(FlowSummary::of(flow));
        Ok(())
    }

    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        self.flows.sort_by_key(|f| f.id);
        if self.opts.timeline {
            self.out.write_all(b"\n")?;
        }
        table::write(&mut self.out, &self.flows, stats)?;
        if let Some(live) = self.opts.live {
            table::write_live_notes(&mut self.out, &self.flows, live.defaults, Timestamp::now())?;
        }
        self.out.flush()
    }
}
