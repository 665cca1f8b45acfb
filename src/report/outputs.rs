//! The outputs of one run, as one sink: the main output (the text
//! timeline and table, JSON Lines or a Zeek log) and beside it what the
//! plan asks for — the SVG diagrams with JSON, the HTML report, the
//! Prometheus metrics, the host's sockets joined to each connection. Built
//! once, when the run starts (`command::capture`), from the plan: the
//! pipeline drives this one value (on several threads, through `Sharded`:
//! the main output's records are formatted by the analyzers).

use super::html::HtmlSink;
use super::json::{JsonFormat, JsonSink};
use super::metrics::MetricsSink;
use super::sockets::SocketJoin;
use super::svg::SvgSink;
use super::text::{TextFormat, TextSink};
use super::zeek::ZeekSink;
use crate::core::time::Timestamp;
use crate::pipeline::event::{
    FragmentEvent, PacketEvent, Revisions, ShardFormat, Sharded, Sink, Stats,
};
use crate::pipeline::summary::FlowSummary;
use std::io::{self, Write};

/// The main output.
pub enum Main<W: Write> {
    Text(Box<TextSink<W>>),
    /// JSON Lines, with `--diagram-svg` the diagrams beside them.
    Json(JsonSink<W>, Option<Box<SvgSink>>),
    Zeek(ZeekSink<W>),
}

/// Every output of a run.
pub struct Outputs<W: Write> {
    pub main: Main<W>,
    /// `--html FILE`.
    pub html: Option<HtmlSink>,
    /// `--metrics`: what the endpoint serves, counted as connections go.
    pub metrics: Option<MetricsSink>,
    /// `--sockets`: each connection's sockets on this host, joined to its
    /// first packet and its summary before any output sees them.
    pub sockets: Option<SocketJoin>,
    /// `--kernel`: the kernel's account of each connection's end.
    pub kernel: Option<super::kernel::KernelJoin>,
    /// `--annotate`: the words for each frame, gathered.
    pub annotate: Option<super::pcapng::AnnotateSink>,
    /// `--parquet FILE`: a row per connection.
    pub parquet: Option<super::parquet::ParquetSink>,
}

impl<W: Write> Outputs<W> {
    pub fn new(main: Main<W>) -> Outputs<W> {
        Outputs {
            main,
            html: None,
            metrics: None,
            sockets: None,
            kernel: None,
            annotate: None,
            parquet: None,
        }
    }
}

impl<W: Write> Sink for Outputs<W> {
    #[inline(always)]
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        let with;
        let ev = match &mut self.sockets {
            Some(join) => {
                with = PacketEvent {
                    socket: join.packet(ev),
                    ..*ev
                };
                &with
            }
            None => ev,
        };
        if let Some(m) = &mut self.metrics {
            m.packet(ev);
        }
        match &mut self.main {
            Main::Text(s) => s.packet(ev)?,
            Main::Json(s, svg) => {
                s.packet(ev)?;
                if let Some(svg) = svg {
                    svg.packet(ev)?;
                }
            }
            Main::Zeek(s) => s.packet(ev)?,
        }
        if let Some(h) = &mut self.html {
            h.packet(ev)?;
        }
        if let Some(a) = &mut self.annotate {
            a.packet(ev)?;
        }
        Ok(())
    }

    fn fragment(&mut self, fe: &FragmentEvent) -> io::Result<()> {
        if let Main::Text(s) = &mut self.main {
            s.fragment(fe)?;
        }
        if let Some(a) = &mut self.annotate {
            a.fragment(fe)?;
        }
        Ok(())
    }

    fn revise(&mut self, r: &Revisions) -> io::Result<()> {
        match &mut self.main {
            Main::Text(s) => s.revise(r)?,
            Main::Json(s, svg) => {
                s.revise(r)?;
                if let Some(svg) = svg {
                    svg.revise(r)?;
                }
            }
            Main::Zeek(s) => s.revise(r)?,
        }
        if let Some(h) = &mut self.html {
            h.revise(r)?;
        }
        if let Some(a) = &mut self.annotate {
            a.revise(r)?;
        }
        Ok(())
    }

    fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        let joined;
        let f = match &mut self.sockets {
            Some(join) => {
                joined = join.flow(f);
                &joined
            }
            None => f,
        };
        let told;
        let f = match &self.kernel {
            Some(kernel) => {
                told = kernel.flow(f);
                &told
            }
            None => f,
        };
        if let Some(m) = &mut self.metrics {
            m.flow(f);
        }
        match &mut self.main {
            Main::Text(s) => s.flow(f)?,
            Main::Json(s, svg) => {
                s.flow(f)?;
                if let Some(svg) = svg {
                    svg.flow(f)?;
                }
            }
            Main::Zeek(s) => s.flow(f)?,
        }
        if let Some(h) = &mut self.html {
            h.flow(f)?;
        }
        if let Some(a) = &mut self.annotate {
            a.flow(f)?;
        }
        if let Some(p) = &mut self.parquet {
            p.flow(f)?;
        }
        Ok(())
    }

    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        if let Some(p) = &mut self.parquet {
            p.finish(stats)?;
        }
        if let Some(m) = &mut self.metrics {
            m.frames(stats);
        }
        match &mut self.main {
            Main::Text(s) => s.finish(stats)?,
            Main::Json(s, svg) => {
                s.finish(stats)?;
                if let Some(svg) = svg {
                    svg.finish(stats)?;
                }
            }
            Main::Zeek(s) => s.finish(stats)?,
        }
        if let Some(h) = &mut self.html {
            h.finish(stats)?;
        }
        Ok(())
    }

    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        let joined;
        let open = match &mut self.sockets {
            Some(join) => {
                joined = join.snapshot(open);
                &joined[..]
            }
            None => open,
        };
        if let Some(m) = &mut self.metrics {
            m.frames(stats);
        }
        match &mut self.main {
            Main::Text(s) => s.snapshot(open, stats)?,
            Main::Json(s, svg) => {
                s.snapshot(open, stats)?;
                if let Some(svg) = svg {
                    svg.snapshot(open, stats)?;
                }
            }
            Main::Zeek(s) => s.snapshot(open, stats)?,
        }
        if let Some(h) = &mut self.html {
            h.snapshot(open, stats)?;
        }
        Ok(())
    }
}

/// What the analyzers format for the main output.
#[derive(Clone)]
pub enum Format {
    Text(Box<TextFormat>),
    Json(JsonFormat),
}

impl ShardFormat for Format {
    fn format(&mut self, out: &mut Vec<u8>, ev: &PacketEvent) -> io::Result<usize> {
        match self {
            Format::Text(f) => f.format(out, ev),
            Format::Json(f) => f.format(out, ev),
        }
    }

    fn format_revision(&mut self, out: &mut Vec<u8>, r: &Revisions, item: usize) -> Option<usize> {
        match self {
            Format::Text(f) => f.format_revision(out, r, item),
            Format::Json(f) => f.format_revision(out, r, item),
        }
    }

    fn format_fragment(&mut self, out: &mut Vec<u8>, fe: &FragmentEvent) -> bool {
        match self {
            Format::Text(f) => f.format_fragment(out, fe),
            Format::Json(f) => f.format_fragment(out, fe),
        }
    }

    fn forget(&mut self, flow: u32) {
        match self {
            Format::Text(f) => f.forget(flow),
            Format::Json(f) => f.forget(flow),
        }
    }
}

impl<W: Write> Sharded for Outputs<W> {
    type Format = Format;

    fn shard_format(&self) -> Option<Format> {
        match &self.main {
            Main::Text(s) => s.shard_format().map(|f| Format::Text(Box::new(f))),
            Main::Json(s, _) => s.shard_format().map(Format::Json),
            Main::Zeek(_) => None,
        }
    }

    fn formatted(&mut self, ts: Timestamp, head: &[u8], flow: u32, tail: &[u8]) -> io::Result<()> {
        match &mut self.main {
            Main::Text(s) => s.formatted(ts, head, flow, tail),
            Main::Json(s, _) => s.formatted(ts, head, flow, tail),
            Main::Zeek(_) => Ok(()),
        }
    }
}
