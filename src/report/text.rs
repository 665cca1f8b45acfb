//! The default output: a tcpdump-style timeline, annotated, then the table.

use super::tcpdump::Tcpdump;
use super::{FlowSummary, PacketEvent, Sink, annotate, table};
use crate::analyzer::Stats;
use crate::classify::Kind;
use crate::flows::Flow;
use crate::keepalive::Note;
use std::io::{self, Write};

/// ANSI colors for flow labels, cycled by flow number.
const FLOW_COLORS: [&str; 6] = ["36", "35", "34", "33", "32", "96"];

pub struct TextSink<W: Write> {
    out: W,
    tcpdump: Tcpdump,
    color: bool,
    /// Print the timeline (false with `--summary`).
    timeline: bool,
    /// Flush after every line (live capture).
    flush_each: bool,
    flows: Vec<FlowSummary>,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, tcpdump: Tcpdump, color: bool, timeline: bool, flush_each: bool) -> Self {
        TextSink {
            out,
            tcpdump,
            color,
            timeline,
            flush_each,
            flows: Vec::new(),
        }
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
        if !self.timeline {
            return Ok(());
        }
        self.tcpdump.write_line(&mut self.out, ev)?;
        if self.color {
            let c = FLOW_COLORS[(ev.flow_id as usize - 1) % FLOW_COLORS.len()];
            write!(
                self.out,
                "  \x1b[{c}mflow {}:\x1b[0m \x1b[{}m",
                ev.flow_id,
                Self::note_color(ev)
            )?;
            annotate::write(&mut self.out, ev, flow)?;
            self.out.write_all(b"\x1b[0m\n")?;
        } else {
            write!(self.out, "  flow {}: ", ev.flow_id)?;
            annotate::write(&mut self.out, ev, flow)?;
            self.out.write_all(b"\n")?;
        }
        if self.flush_each {
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
        if self.timeline {
            self.out.write_all(b"\n")?;
        }
        table::write(&mut self.out, &self.flows, stats)?;
        self.out.flush()
    }
}
