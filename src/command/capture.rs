//! One capture, analyzed: the opened source, the outputs built from the
//! plan (their files opened and privileges dropped first), the analysis
//! driven — on one thread, on several (`pipeline::shard`), or behind a
//! pipe's reader thread — and how the reading ended, said.

use crate::command::plan::{CapturePlan, Output};
use crate::error::Error;
use crate::host::signal;
use crate::host::sysctls::Sysctls;
use crate::input::pipe::PipeSource;
use crate::input::save::Save;
use crate::input::source::{Reopen, Source};
use crate::input::tap::Tapped;
use crate::pipeline::analyzer::{Analyzer, LookaheadPass};
use crate::pipeline::drive::{self, Controls};
use crate::pipeline::event::{FrameSource, ReadEnd};
use crate::report::html::HtmlSink;
use crate::report::json::JsonSink;
use crate::report::metrics::{Metrics, MetricsSink};
use crate::report::outputs::{Main, Outputs};
use crate::report::sockets::SocketJoin;
use crate::report::svg::SvgSink;
use crate::report::text::TextSink;
use crate::report::zeek::ZeekSink;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Inputs larger than this get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 100 * 1024 * 1024;

/// What a run got from the host before the capture started.
#[derive(Default)]
pub struct Host {
    /// `--metrics`: what the endpoint (already listening) serves.
    pub metrics: Option<Arc<Mutex<Metrics>>>,
    /// `--netns`: the sysctls of the namespace kacap started in, read
    /// before it entered the other.
    pub sysctls_outside: Option<Sysctls>,
}

/// Analyzes one opened source into the planned outputs. `path`: the file it
/// reads, when it can be read a second time (a lookahead pass for captures
/// that start mid-connection). `alone`: the only input (a progress bar for
/// a big file on a terminal).
pub fn run_capture(
    plan: &CapturePlan,
    mut src: Source,
    paths: Option<&[PathBuf]>,
    host: &Host,
    out: impl Write,
    err: &mut impl Write,
    alone: bool,
) -> Result<(), Error> {
    let live = src.is_live();
    let save = match &plan.write {
        Some(path) => Some(Save::create(path, src.save_header(), live)?),
        None => None,
    };
    // Opened now: before the analysis (a bad path fails at once) and before
    // privileges are dropped.
    let svg = plan.svg.as_deref().map(create).transpose()?;
    let html = plan.html.as_deref().map(create).transpose()?;
    let parquet = match plan.parquet.as_deref().map(create).transpose()? {
        Some((file, name)) => Some(
            crate::report::parquet::ParquetSink::new(file, name.clone()).map_err(|e| {
                Error::Write {
                    file: name,
                    msg: e.to_string(),
                }
            })?,
        ),
        None => None,
    };
    let annotate = plan
        .annotate
        .as_deref()
        .map(Annotating::create)
        .transpose()?;
    // `--kernel`: the tracepoints opened as root, read on a thread.
    let kernel = if plan.kernel && live {
        let watch = crate::host::kernel::Watch::open().map_err(Error::Host)?;
        Some(watch.spawn())
    } else {
        None
    };
    if let Some(run_as) = &plan.privileges {
        let opened = save.iter().map(Save::file);
        let annotated = annotate.iter().map(|a| &a.file);
        for file in opened
            .chain(svg.iter().chain(&html).map(|(file, _)| file))
            .chain(annotated)
        {
            crate::host::privileges::give(file, run_as);
        }
        crate::host::privileges::drop(run_as)?;
    }
    src.limit = plan.count;
    let progress =
        (alone && src.size() > PROGRESS_MIN_BYTES && io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(src.size());
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {eta} left",
            ) {
                bar.set_style(style);
            }
            bar
        });
    let mut outputs = outputs(plan, out, svg, html, host);
    outputs.parquet = parquet;
    outputs.kernel = kernel.map(crate::report::kernel::KernelJoin::new);
    let (annotate, spool) = match annotate {
        Some(a) => {
            outputs.annotate = Some(crate::report::pcapng::AnnotateSink {
                comments: a.comments.clone(),
            });
            (Some((a.file, a.name, a.comments)), Some(a.spool))
        }
        None => (None, None),
    };
    let mut spooled = None;
    signal::install();
    if src.is_live() {
        let _ = writeln!(err, "{}", src.banner());
    }
    // Stdin, a FIFO, process substitution: read as a stream.
    let stdin = src.stream;
    let (result, src) = if stdin {
        // A pipe: read in a thread of its own, so the analysis keeps a clock.
        let mut input = Tapped::new(PipeSource::start(src), save, progress).with_spool(spool);
        let result = analyze(&mut input, plan, None, outputs);
        spooled = input.take_spool();
        let (pipe, closed) = input.close();
        match pipe.finish() {
            Some((read, src)) => (result.and(read).and(closed), *src),
            // Stopped (Ctrl-C, a closed output) while the reader waits on a
            // quiet pipe: it is left behind; only an output error is left.
            None => {
                return match result.and(closed) {
                    Err(ReadEnd::Output(e)) => quiet_pipe(Err(Error::Output(e))),
                    Err(ReadEnd::Save(msg)) => Err(save_error(plan, msg)),
                    _ => Ok(()),
                };
            }
        }
    } else {
        let pass = paths.map(|p| lookahead_pass(plan, p));
        if save.is_none() && progress.is_none() && spool.is_none() {
            // Nothing to do with each frame but analyze it: the source as
            // it is (one layer less on the per-frame path).
            let mut src = src;
            (analyze(&mut src, plan, pass, outputs), src)
        } else {
            let mut input = Tapped::new(src, save, progress).with_spool(spool);
            let result = analyze(&mut input, plan, pass, outputs);
            spooled = input.take_spool();
            let (src, closed) = input.close();
            (result.and(closed), src)
        }
    };
    let mut src = src;
    if let (Some((file, name, comments)), Some(frames)) = (annotate, spooled) {
        let ifname = match &plan.input {
            crate::command::plan::Input::Live(iface) => Some(iface.as_str()),
            _ => None,
        };
        let fail = |msg: String| Error::Write {
            file: name.clone(),
            msg,
        };
        let comments = std::sync::Arc::try_unwrap(comments)
            .ok()
            .and_then(|m| m.into_inner().ok())
            .ok_or_else(|| fail("the analysis still held its words".into()))?;
        frames
            .read_back()
            .and_then(|frames| {
                let header = crate::pipeline::event::SaveHeader {
                    nano: src.native_nano(),
                    ..src.save_header()
                };
                crate::report::pcapng::write(file, header, ifname, frames, comments)
            })
            .map_err(|e| fail(e.to_string()))?;
    }
    // Stopped by a signal while reading a pipe: libpcap's read was
    // interrupted, which is not a damaged file.
    let interrupted = signal::STOP.load(std::sync::atomic::Ordering::Relaxed);
    let result = match result {
        Err(ReadEnd::Truncated(_)) if stdin && interrupted => Ok(()),
        other => other,
    };
    if interrupted && !stdin && !src.is_live() && !src.ended && result.is_ok() {
        // A file cut short by SIGINT / SIGTERM: say so; the run's exit
        // status says it too (130 / 143), and JSON has "complete":false.
        let read = match (src.position(), src.size()) {
            (Some(at), size) if size > 0 => {
                format!(" ({}% of the file read)", (at.min(size) * 100) / size)
            }
            _ => String::new(),
        };
        let _ = writeln!(
            err,
            "kacap: {}: interrupted after {}{read}: partial analysis",
            src.name,
            crate::core::text::plural(src.captured, "frame")
        );
        signal::PARTIAL.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(s) = src.stats() {
        let _ = writeln!(
            err,
            "{} packets captured\n{} packets received by filter\n{} packets dropped by kernel",
            s.captured, s.received, s.dropped
        );
    }
    match result {
        Ok(()) => Ok(()),
        Err(ReadEnd::Truncated(msg)) => {
            let what = if msg.contains("data is damaged") {
                "the compressed file is damaged"
            } else if msg.contains("truncated") {
                "the capture ends in the middle of a packet (cut short, or still being written)"
            } else {
                "damaged packet record"
            };
            let _ = writeln!(
                err,
                "kacap: warning: {}: {what}: {msg}; analyzed the {} packets before it",
                src.name, src.captured
            );
            Ok(())
        }
        Err(ReadEnd::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(ReadEnd::Output(e)) => Err(Error::Output(e)),
        Err(ReadEnd::Save(msg)) => Err(save_error(plan, msg)),
        Err(ReadEnd::Capture(msg)) => Err(Error::Live {
            iface: src.name.clone(),
            msg,
        }),
    }
}

/// `--annotate`: its file, created now, and the frames and words kept
/// beside it (unlinked temporary files in its directory) until the end.
struct Annotating {
    file: std::fs::File,
    name: String,
    spool: crate::input::spool::FrameSpool,
    comments: std::sync::Arc<std::sync::Mutex<crate::report::pcapng::Comments>>,
}

impl Annotating {
    fn create(p: &std::path::Path) -> Result<Annotating, Error> {
        let (file, name) = create(p)?;
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let fail = |e: std::io::Error| Error::Write {
            file: name.clone(),
            msg: format!("cannot keep its frames meanwhile in {}: {e}", dir.display()),
        };
        let spool = crate::input::spool::FrameSpool::create(dir).map_err(fail)?;
        let comments = crate::report::pcapng::Comments::create(dir).map_err(fail)?;
        Ok(Annotating {
            file,
            name,
            spool,
            comments: std::sync::Arc::new(std::sync::Mutex::new(comments)),
        })
    }
}

/// An output file (`--diagram-svg`, `--html`), created now, and its name
/// for messages.
fn create(p: &std::path::Path) -> Result<(std::fs::File, String), Error> {
    let name = p.display().to_string();
    match std::fs::File::create(p) {
        Ok(file) => Ok((file, name)),
        Err(e) => Err(Error::Write {
            file: name,
            msg: e.to_string(),
        }),
    }
}

/// Writing the `-w` file failed.
fn save_error(plan: &CapturePlan, msg: String) -> Error {
    Error::Save {
        file: plan
            .write
            .as_ref()
            .filter(|_| !msg.starts_with("(--annotate"))
            .or(plan.annotate.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        msg,
    }
}

/// The outputs the plan asks for, as one sink (see `report::outputs`);
/// `svg` and `html`: their files, opened already.
fn outputs<W: Write>(
    plan: &CapturePlan,
    out: W,
    svg: Option<(std::fs::File, String)>,
    html: Option<(std::fs::File, String)>,
    host: &Host,
) -> Outputs<W> {
    // Live: the sysctls of the namespace the capture runs in (with
    // `--netns`, the connections' own).
    let live = matches!(plan.input, crate::command::plan::Input::Live(_));
    let sysctls = live.then(|| Sysctls::read().ok()).flatten();
    let main = match &plan.output {
        Output::Json(opts) => Main::Json(
            JsonSink::new(out, *opts),
            svg.map(|(file, name)| Box::new(SvgSink::new(file, name))),
        ),
        Output::Zeek { json, flush_each } => Main::Zeek(ZeekSink::new(out, *json, *flush_each)),
        Output::Text(opts) => {
            let mut opts = opts.clone();
            if let Some(live) = opts.live.as_mut() {
                live.sysctls = sysctls;
            }
            Main::Text(Box::new(TextSink::new(out, opts).with_svg(svg)))
        }
    };
    let style = match &plan.output {
        Output::Text(opts) => opts.style,
        _ => crate::report::tcpdump::Style::default(),
    };
    Outputs {
        main,
        html: html.map(|(file, name)| HtmlSink::new(file, name, style, sysctls)),
        parquet: None,
        metrics: host
            .metrics
            .clone()
            .filter(|_| plan.metrics.is_some())
            .map(MetricsSink::new),
        sockets: plan.sockets.then(|| {
            SocketJoin::new(crate::host::sockets::join::Joiner::new(
                Box::new(crate::host::sockets::RealHost),
                host.sysctls_outside,
            ))
        }),
        kernel: None,
        annotate: None,
    }
}

/// Analyzes `src` into `outputs`: on `plan.threads` analyzers when it can
/// (`shardable`), else on this one.
fn analyze<W: Write>(
    src: &mut impl FrameSource,
    plan: &CapturePlan,
    pass: Option<LookaheadPass>,
    outputs: Outputs<W>,
) -> Result<(), ReadEnd> {
    // A file read with a lookahead pass (not a stream, not live): stopping
    // early leaves a partial analysis.
    let partial_on_stop = pass.is_some();
    let controls = Controls {
        stop: &signal::STOP,
        show: Some(&signal::SHOW),
        every: plan.stats_every,
        partial_on_stop,
        quit: Some(&signal::OUTPUT_GONE),
    };
    match pass {
        Some(pass) if shardable(plan) => crate::pipeline::shard::drive(
            src,
            plan.options,
            pass,
            outputs,
            plan.threads,
            crate::pipeline::shard::Readers::new(plan.readers),
            Controls {
                every: None,
                ..controls
            },
        ),
        pass => {
            let mut analyzer = Analyzer::new(src.link(), plan.options, outputs);
            if let Some(pass) = pass {
                analyzer = analyzer.with_lookahead(pass);
            }
            drive::drive(src, analyzer, controls)
        }
    }
}

/// One file, read by one reader and analyzed on `plan.threads` shards
/// (see `shard`): where nothing needs one analyzer's order of events but
/// packet records and timeline lines, which the shards format and the
/// merge writes in capture order (`event::Sharded`). Not shardable:
/// teaching, HTML, SVG and `--annotate` (one recorder of every connection's steps),
/// metrics, sockets, snapshots, live, streams (flushed records, "flow N
/// ended" lines), and a timeline folded to a terminal's width.
fn shardable(plan: &CapturePlan) -> bool {
    let output = match &plan.output {
        Output::Text(o) if o.teaching() || o.live.is_some() => false,
        Output::Text(o) => !o.timeline || (o.width.is_none() && !o.flush_each),
        Output::Json(o) => !o.packets || !o.flush_each,
        Output::Zeek { .. } => true,
    };
    output
        && plan.threads > 1
        && plan.html.is_none()
        && plan.annotate.is_none()
        && plan.svg.is_none()
        && plan.metrics.is_none()
        && !plan.sockets
        && plan.stats_every.is_none()
        && !matches!(plan.input, crate::command::plan::Input::Live(_))
}

/// A second read of the files at `paths`, with the same filter and `-c`.
fn lookahead_pass(plan: &CapturePlan, paths: &[PathBuf]) -> LookaheadPass {
    let again = Reopen {
        paths: paths.to_vec(),
        filter: plan.filter.clone(),
        limit: plan.count,
    };
    LookaheadPass::new(Box::new(again), plan.options)
}

/// A closed pipe is not an error.
pub fn quiet_pipe(r: Result<(), Error>) -> Result<(), Error> {
    match r {
        Err(Error::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
