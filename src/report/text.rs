//! The default output: a tcpdump-style timeline, annotated, then the table.

use super::tcpdump::{Dump, Style, Tcpdump};
use super::teach::{self, FlowSteps, Recorder};
use super::{Kept, annotate, caveats, table};
use crate::analyses::registry::{Evidence, Findings, Notes};
use crate::core::emit::Emit;
use crate::core::text::join_and;
use crate::core::time::Timestamp;
use crate::host::sysctls::Sysctls;
use crate::pipeline::event::{
    FragmentEvent, PacketEvent, Revisions, ShardFormat, Sharded, Sink, Stats, Why,
};
use crate::pipeline::summary::FlowSummary;
use std::io::{self, Write};

/// Most rows in the table. Beyond, flows are only counted, so a long live
/// capture or a capture of a busy host stays small; dead and reset
/// connections are kept first, then those with keepalive, then the rest.
const MAX_ROWS: usize = 1_000;

/// Most connections `--explain`, `--diagram` and `--diagram-svg` tell
/// about, chosen as the table's rows are; the rest are counted.
pub const MAX_TAUGHT: usize = 200;

/// ANSI colors for flow labels, cycled by flow number.
const FLOW_COLORS: [&str; 6] = ["36", "35", "34", "33", "32", "96"];

/// What only a live capture shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveInfo {
    /// The keepalive sysctls of the namespace captured in, to compare with
    /// the inferred values.
    pub sysctls: Option<Sysctls>,
}

#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    pub color: bool,
    /// Print the timeline (false with `--summary`).
    pub timeline: bool,
    /// Live capture: flush every line, say when the next probe is due.
    pub live: Option<LiveInfo>,
    /// `--explain`: an account of each flow (with its diagram).
    pub explain: bool,
    /// `--diagram`: a sequence diagram of each flow.
    pub diagram: bool,
    /// `--diagram-svg FILE`: all diagrams as one SVG.
    pub svg: Option<std::path::PathBuf>,
    /// tcpdump's line: `-t` family, `--nano`, `-S`, `-q`, `-v`, `-e`, `-x`…
    pub style: Style,
    /// Flush every line (live captures and pipes).
    pub flush_each: bool,
    /// A terminal's width: the table fits it, and a packet's words go on
    /// their own lines when the line would wrap. `None` (a pipe, a file,
    /// `--wide`): one line per packet, the table at its natural width.
    pub width: Option<u16>,
}

impl TextOptions {
    pub fn teaching(&self) -> bool {
        self.explain || self.diagram || self.svg.is_some()
    }
}

pub struct TextSink<W: Write> {
    out: W,
    tcpdump: Tcpdump,
    opts: TextOptions,
    /// Table rows, the most telling kept.
    rows: Kept<FlowSummary>,
    /// Steps of open flows, and finished flows to explain, when teaching.
    recorder: Recorder,
    taught: Kept<(FlowSummary, FlowSteps)>,
    /// The line being built (reused: no allocation per packet).
    line: Vec<u8>,
    /// What the analyses' advice after the table needs, from every
    /// connection reported.
    evidence: Evidence,
    /// The `--diagram-svg` file, opened before the capture started.
    svg_file: Option<(std::fs::File, String)>,
    /// `--kernel`: connections whose verdict the kernel's account agreed
    /// with, contradicted, or said nothing about.
    kernel: [u64; 3],
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, opts: TextOptions) -> Self {
        TextSink {
            out,
            tcpdump: Tcpdump::new(opts.style),
            opts,
            rows: Kept::new(MAX_ROWS),
            recorder: Recorder::default(),
            taught: Kept::new(MAX_TAUGHT),
            line: Vec::with_capacity(512),
            evidence: Evidence::default(),
            svg_file: None,
            kernel: [0; 3],
        }
    }

    /// Writes the SVG into `file` (already open) instead of creating it.
    pub fn with_svg(mut self, file: Option<(std::fs::File, String)>) -> Self {
        self.svg_file = file;
        self
    }

    /// After the table: explanations and diagrams, and the SVG file.
    fn write_teaching(&mut self) -> io::Result<()> {
        let omitted = self.taught.omitted();
        let mut taught = self.taught.take();
        taught.sort_by_key(|(f, _)| f.id);
        if self.opts.explain || self.opts.diagram {
            for (f, steps) in &taught {
                self.out.write_all(b"\n")?;
                if self.opts.explain {
                    let all = steps.all();
                    let text = super::wrap_prose(&teach::explain(f, &all), self.opts.width);
                    self.out.write_all(text.as_bytes())?;
                    self.out.write_all(b"\n")?;
                }
                self.out.write_all(teach::diagram(f, steps).as_bytes())?;
            }
            if self.opts.explain {
                let summaries: Vec<&FlowSummary> = taught.iter().map(|(f, _)| f).collect();
                for bound in Findings::afterword(&summaries) {
                    let text = super::wrap_prose(&bound, self.opts.width);
                    writeln!(self.out, "{text}\n")?;
                }
                for note in Findings::footnotes(&summaries) {
                    writeln!(self.out, "{note}")?;
                }
            }
        }
        if let Some(left_out) = &omitted
            && (self.opts.explain || self.opts.diagram)
        {
            writeln!(
                self.out,
                "\n(told about the {} most telling connections; left out: {left_out}; --json lists every flow)",
                taught.len()
            )?;
        }
        if let Some((mut file, name)) = self.svg_file.take() {
            file.write_all(teach::svg(&taught).as_bytes())
                .and_then(|()| file.flush())
                .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?;
        } else if let Some(path) = &self.opts.svg {
            std::fs::write(path, teach::svg(&taught))
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for TextSink<W> {
    #[inline]
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        if self.opts.teaching() {
            let shown = !self.taught.closed_to(ev.flow_id);
            self.recorder.offer(ev, shown);
        }
        if !self.opts.timeline {
            return Ok(());
        }
        self.timeline_line(ev)
    }

    fn revise(&mut self, r: &Revisions) -> io::Result<()> {
        self.revision(r)
    }

    fn fragment(&mut self, fe: &FragmentEvent) -> io::Result<()> {
        if !self.opts.timeline {
            return Ok(());
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        self.tcpdump.write_fragment_line(&mut line, &fe.ev, fe.view);
        let words_at = line.len();
        fragment_words(&mut line, fe, self.opts.color);
        if let Some(width) = self.opts.width {
            fold(&mut line, words_at, usize::from(width));
        }
        dump(&mut self.tcpdump, &mut line, &fe.ev, &self.opts);
        self.end_line(line)
    }

    fn flow(&mut self, summary: &FlowSummary) -> io::Result<()> {
        self.add_flow(summary)
    }

    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        self.finish_all(stats)
    }

    /// The table so far (reported connections and open ones) on stderr.
    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        self.out.flush()?;
        let mut flows: Vec<FlowSummary> = self.rows.iter().cloned().collect();
        flows.extend(open.iter().cloned());
        flows.sort_by_key(|f| f.id);
        let still_open = open
            .iter()
            .filter(|f| f.close == crate::pipeline::summary::Close::Open)
            .count();
        let mut err = io::stderr().lock();
        writeln!(
            err,
            "\nkacap: so far ({still_open} open, {} closed and not yet reported):",
            open.len() - still_open
        )?;
        table::write(&mut err, &flows, stats, self.opts.width)?;
        err.flush()
    }
}

/// A timeline line's connection label: `  flow 3: ` (colored by number,
/// then the note's color opened: `words` names it).
fn flow_label(line: &mut Vec<u8>, flow_id: u32, color: bool) {
    if color {
        let c = FLOW_COLORS[(flow_id as usize - 1) % FLOW_COLORS.len()];
        line.s("  \x1b[")
            .s(c)
            .s("mflow ")
            .n(flow_id)
            .s(":\x1b[0m \x1b[");
    } else {
        line.s("  flow ").n(flow_id).s(": ");
    }
}

/// An IP fragment's words, after its tcpdump line (no connection label:
/// the segment its datagram makes carries it).
fn fragment_words(line: &mut Vec<u8>, fe: &FragmentEvent, color: bool) {
    line.s("  ");
    if color {
        line.s("\x1b[2m");
    }
    annotate::fragment(line, fe);
}

/// What the segment is, after the label (the note's color first).
fn words(line: &mut Vec<u8>, ev: &PacketEvent, opts: &TextOptions) -> io::Result<()> {
    if opts.color {
        line.s(annotate::color(ev)).s("m");
    }
    annotate::write(line, ev)?;
    if opts.live.is_some() {
        Notes::expect(ev, line)?;
    }
    Ok(())
}

/// `-v`'s text-protocol lines, `-x`, `-X`, `-A`: the packet's bytes after
/// its line (the colour reset before them only when there are some).
fn dump(tcpdump: &mut Tcpdump, line: &mut Vec<u8>, ev: &PacketEvent, opts: &TextOptions) {
    if opts.style.dump != Dump::None || opts.style.verbose > 0 {
        let before = line.len();
        if opts.color {
            line.s("\x1b[0m");
        }
        let reset = line.len();
        tcpdump.write_dump(line, ev);
        if line.len() == reset {
            line.truncate(before);
        }
    }
}

/// The text timeline's lines formatted on the analyzer threads, in two
/// parts around what only the merge knows (the stamp, the connection's
/// number): the tcpdump line after its stamp, then the words and dump.
/// Its own printer keeps the relative-sequence bases of its analyzer's
/// connections. Terminal folding and live notes are not done here
/// (`run::shardable`).
#[derive(Clone)]
pub struct TextFormat {
    tcpdump: Tcpdump,
    opts: TextOptions,
}

impl ShardFormat for TextFormat {
    fn format_revision(&mut self, out: &mut Vec<u8>, r: &Revisions, item: usize) -> Option<usize> {
        if item > 0 || r.items.is_empty() {
            return None;
        }
        revision_head(out, self.opts.color);
        let mid = out.len();
        revision_tail(out, r);
        Some(mid)
    }

    fn format(&mut self, out: &mut Vec<u8>, ev: &PacketEvent) -> io::Result<usize> {
        self.tcpdump.write_rest(out, ev);
        let mid = out.len();
        words(out, ev, &self.opts)?;
        dump(&mut self.tcpdump, out, ev, &self.opts);
        Ok(mid)
    }

    fn format_fragment(&mut self, out: &mut Vec<u8>, fe: &FragmentEvent) -> bool {
        self.tcpdump.write_fragment_rest(out, &fe.ev, fe.view);
        fragment_words(out, fe, self.opts.color);
        dump(&mut self.tcpdump, out, &fe.ev, &self.opts);
        true
    }

    fn forget(&mut self, flow: u32) {
        self.tcpdump.forget(flow);
    }
}

impl<W: Write> Sharded for TextSink<W> {
    type Format = TextFormat;

    /// The timeline's lines, unless there is none (`--summary`), it is
    /// folded to a terminal's width, or it is streamed (live, pipes).
    fn shard_format(&self) -> Option<TextFormat> {
        let o = &self.opts;
        (o.timeline && o.width.is_none() && !o.flush_each).then(|| TextFormat {
            tcpdump: Tcpdump::new(o.style),
            opts: o.clone(),
        })
    }

    /// A line formatted by an analyzer: the stamp and the connection's
    /// label are written here, in capture order.
    fn formatted(&mut self, ts: Timestamp, head: &[u8], flow: u32, tail: &[u8]) -> io::Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        if head.starts_with(b"  ") {
            // A note line (a revision): no stamp, the bare number.
            line.extend_from_slice(head);
            line.s("flow ").n(flow);
            line.extend_from_slice(tail);
            return self.end_line(line);
        }
        if Tcpdump::stamped(head) {
            self.tcpdump.write_stamp(&mut line, ts);
        }
        line.extend_from_slice(head);
        if flow > 0 {
            flow_label(&mut line, flow, self.opts.color);
        }
        line.extend_from_slice(tail);
        self.end_line(line)
    }
}

impl<W: Write> TextSink<W> {
    /// One timeline line: the tcpdump line, then what the segment is.
    fn timeline_line(&mut self, ev: &PacketEvent) -> io::Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        self.tcpdump.write_line(&mut line, ev);
        let words_at = line.len();
        flow_label(&mut line, ev.flow_id, self.opts.color);
        words(&mut line, ev, &self.opts)?;
        if let Some(width) = self.opts.width {
            fold(&mut line, words_at, usize::from(width));
        }
        dump(&mut self.tcpdump, &mut line, ev, &self.opts);
        self.end_line(line)
    }

    /// Ends a timeline line (color reset, newline), writes it (flushed when
    /// streaming) and keeps its buffer for the next one.
    fn end_line(&mut self, mut line: Vec<u8>) -> io::Result<()> {
        if self.opts.color {
            line.s("\x1b[0m");
        }
        line.s("\n");
        let written = self.out.write_all(&line);
        self.line = line;
        written?;
        if self.opts.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    fn revision(&mut self, r: &Revisions) -> io::Result<()> {
        if self.opts.teaching() {
            self.recorder.revise(r);
        }
        if !self.opts.timeline || r.items.is_empty() {
            return Ok(());
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        revision_line(&mut line, r, self.opts.color);
        self.end_line(line)
    }

    fn add_flow(&mut self, summary: &FlowSummary) -> io::Result<()> {
        self.tcpdump.forget(summary.id);
        let closed = summary.close != crate::pipeline::summary::Close::Open;
        if closed && self.opts.timeline && (self.opts.live.is_some() || self.opts.flush_each) {
            // Streaming: say so as each connection that closed is reported.
            let mut line = std::mem::take(&mut self.line);
            line.clear();
            if self.opts.color {
                line.s("\x1b[1m");
            }
            line.s(&ended_line(summary));
            self.end_line(line)?;
        }
        self.evidence.gather(summary);
        if let Some(e) = summary.kernel.as_deref().and_then(|k| k.telling()) {
            let i = match crate::report::kernel::agrees(summary.verdict, e.cause) {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            };
            self.kernel[i] += 1;
        }
        if self.opts.teaching() {
            let steps = self.recorder.take(summary.id);
            self.taught
                .push_with(summary.verdict, summary.id, || (summary.clone(), steps));
        }
        self.rows
            .push_with(summary.verdict, summary.id, || summary.clone());
        Ok(())
    }

    fn finish_all(&mut self, stats: &Stats) -> io::Result<()> {
        let omitted = self.rows.omitted();
        let mut flows: Vec<FlowSummary> = self.rows.take();
        flows.sort_by_key(|f| f.id);
        if self.opts.timeline {
            self.out.write_all(b"\n")?;
        }
        table::write(&mut self.out, &flows, stats, self.opts.width)?;
        if let Some(parts) = omitted {
            writeln!(
                self.out,
                "(table limited to {} rows; not shown: {parts}; --json lists every flow)",
                flows.len(),
            )?;
        }
        if let Some(note) = caveats::drops_note(stats, &flows) {
            writeln!(self.out, "{note}")?;
        }
        if let Some(note) = caveats::kernel_tally(self.kernel) {
            writeln!(self.out, "{note}")?;
        }
        if let Some(live) = self.opts.live {
            for note in Findings::live_notes(&flows, live.sysctls, Timestamp::now()) {
                writeln!(self.out, "{note}")?;
            }
        }
        let advice = self.evidence.advice();
        if !advice.is_empty() {
            write!(
                self.out,
                "\n{}",
                super::wrap_prose(&advice, self.opts.width)
            )?;
        }
        self.write_teaching()?;
        self.out.flush()
    }
}

/// `  ↳ flow 1: frames 1 and 2 were keepalive probes #1 and #2 (why)`.
fn revision_line(out: &mut Vec<u8>, r: &Revisions, color: bool) {
    revision_head(out, color);
    out.s("flow ").n(r.flow_id);
    revision_tail(out, r);
}

/// A revision in words, without the line's mark: `flow 3: frames 12 and
/// 14 were …` (`--annotate`).
pub fn revision_words(r: &Revisions) -> String {
    let mut out = Vec::new();
    out.s("flow ").n(r.flow_id);
    revision_tail(&mut out, r);
    String::from_utf8_lossy(&out).into_owned()
}

/// A revision line up to its connection's number (a note line: it starts
/// with two spaces, which no tcpdump line does).
fn revision_head(out: &mut Vec<u8>, color: bool) {
    out.s(if color { "  \x1b[2m↳ " } else { "  ↳ " });
}

/// A revision line after its connection's number.
fn revision_tail(out: &mut Vec<u8>, r: &Revisions) {
    let frames: Vec<String> = r.items.iter().map(|i| i.n.to_string()).collect();
    let now: Vec<String> = r.items.iter().filter_map(|i| i.notes.revised()).collect();
    let (who, peer) = (r.from.name(), r.from.other().name());
    let one = r.items.len() == 1;
    if r.why == Why::Rhythm {
        let _ = write!(
            out,
            ": frames {} were the {who}'s first two keepalive exchanges ({}): a third of the same sizes at the same period established the rhythm",
            join_and(&frames),
            now.join(", "),
        );
        return;
    }
    let why = match r.why {
        Why::PeerAck => {
            format!("the {peer}'s ACK number shows the {who}'s next byte, one above them")
        }
        Why::OwnRst => "the RST's sequence number shows the next byte, one above them".to_string(),
        Why::OwnSegment => format!("the {who}'s next segment shows its next byte, one above them"),
        Why::Repeated | Why::Rhythm => format!(
            "the same segment came again, with nothing from the {peer} in between: a keepalive repeats"
        ),
    };
    let _ = write!(
        out,
        ": frame{} {} {} keepalive probe{} {} ({why})",
        if one { "" } else { "s" },
        join_and(&frames),
        if one { "was a" } else { "were" },
        if one { "" } else { "s" },
        join_and(&now),
    );
}

/// `flow 3 ended: dead-peer after 9 unanswered probes (RST by client)`:
/// the verdict's owner says what it means here.
pub fn ended_line(f: &FlowSummary) -> String {
    format!(
        "flow {} ended: {}{} ({}){}",
        f.id,
        f.verdict.as_str(),
        Findings::ended(f),
        f.ending(),
        caveats::kernel_words(f)
    )
}

/// Columns `text` takes on a terminal: characters, less color escapes.
fn visible_width(text: &str) -> usize {
    let mut n = 0;
    let mut escape = false;
    for c in text.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, '\n') => n = 0,
            (false, _) => n += 1,
        }
    }
    n
}

/// A line wider than the terminal: the words after the tcpdump part (at
/// `at`, after two spaces) go on their own lines, indented by four, folded
/// at spaces with a six-space hanging indent; the tcpdump part stays whole,
/// as tcpdump prints it.
fn fold(line: &mut Vec<u8>, at: usize, width: usize) {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    if visible_width(text) <= width || !text[at..].starts_with("  ") {
        return;
    }
    let words = &text[at + 2..];
    let mut folded = String::with_capacity(words.len() + 16);
    folded.push_str("\n    ");
    let mut column = 4;
    for (i, word) in words.split(' ').enumerate() {
        let w = visible_width(word);
        if i > 0 {
            if column + 1 + w > width && column > 6 {
                folded.push_str("\n      ");
                column = 6;
            } else {
                folded.push(' ');
                column += 1;
            }
        }
        folded.push_str(word);
        column += w;
    }
    line.truncate(at);
    line.extend_from_slice(folded.as_bytes());
}
