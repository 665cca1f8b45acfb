//! Carrying out a [`Plan`]: open the inputs, make the sink, analyze.

use crate::command::plan::{CapturePlan, Input, LabPlan, Output, Plan};
use crate::error::Error;
use crate::host::signal;
use crate::input::many as inputs;
use crate::input::source::{PipeSource, Source, list_interfaces};
use crate::lab;
use crate::pipeline::analyzer::{self, Analyzer, LookaheadPass};
use crate::pipeline::event::{FrameSource, ReadEnd, Sink};
use crate::report::json::JsonSink;
use crate::report::svg::SvgSink;
use crate::report::text::TextSink;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// `kacap sockets`: enter the namespace, read the table, print it.
fn run_sockets(plan: &crate::command::plan::SocketsPlan, mut out: impl Write) -> Result<(), Error> {
    use crate::host::sockets::{self, RealHost};
    // The host's own sysctls, before leaving its namespace.
    let host_sysctls = match &plan.netns {
        Some(ns) => {
            let host = sockets::proc::sysctls().ok();
            sockets::netns::enter(&ns.spec, &ns.path).map_err(Error::Host)?;
            host
        }
        None => None,
    };
    let (sysctls, found) = sockets::collect(&RealHost, &|d| plan.filter.matches(d))
        .map_err(|e| Error::Host(format!("cannot read the socket table (sock_diag): {e}")))?;
    let table = sockets::Table {
        sysctls,
        host_sysctls: host_sysctls.filter(|h| *h != sysctls),
        netns: sockets::proc::netns_id(),
        sockets: found,
    };
    let written = if plan.json {
        crate::report::sockets::json(&mut out, &table)
    } else {
        crate::report::sockets::text(&mut out, &table, &plan.filter_words, plan.width)
    };
    quiet_pipe(written.and_then(|()| out.flush()).map_err(Error::Output))
}

/// Inputs larger than this get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 100 * 1024 * 1024;

/// Carries out `plan`, writing to `out`, messages to `err`.
pub fn run(plan: &Plan, out: impl Write, err: &mut impl Write) -> Result<(), Error> {
    let result = dispatch(plan, out, err);
    // A file's analysis cut short by a signal: 128 + the signal's number.
    if result.is_ok() && signal::PARTIAL.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Error::Reported(signal::exit_status().unwrap_or(130)));
    }
    result
}

fn dispatch(plan: &Plan, mut out: impl Write, err: &mut impl Write) -> Result<(), Error> {
    match plan {
        Plan::ListInterfaces => {
            quiet_pipe(list_interfaces(&mut out).and_then(|()| out.flush().map_err(Error::Output)))
        }
        Plan::Lab(lab, capture) => run_lab(lab, capture, out, err),
        Plan::Sockets(plan) => run_sockets(plan, out),
        Plan::Completions(shell) => {
            use clap::CommandFactory;
            let mut cmd = crate::command::cli::Args::command();
            clap_complete::generate(*shell, &mut cmd, "kacap", &mut out);
            quiet_pipe(out.flush().map_err(Error::Output))
        }
        Plan::Man => {
            use clap::CommandFactory;
            let man = clap_mangen::Man::new(crate::command::cli::Args::command());
            quiet_pipe(
                man.render(&mut out)
                    .and_then(|()| out.flush())
                    .map_err(Error::Output),
            )
        }
        Plan::Capture(capture) => match &capture.input {
            Input::Live(iface) => {
                if let Some(ns) = &capture.netns {
                    let _ = HOST_SYSCTLS.set(crate::host::sockets::proc::sysctls().ok());
                    crate::host::sockets::netns::enter(&ns.spec, &ns.path).map_err(Error::Host)?;
                }
                let src = Source::live(iface, capture.filter.as_deref(), &capture.live)?;
                if let Some(addr) = capture.metrics {
                    // Bound now: a port in use fails before the capture runs.
                    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
                        Error::Host(format!(
                            "--metrics {addr}: cannot listen there: {e} (choose a free ADDR:PORT)"
                        ))
                    })?;
                    let metrics = std::sync::Arc::new(std::sync::Mutex::new(
                        crate::report::metrics::Metrics::default(),
                    ));
                    crate::report::metrics::serve(listener, metrics.clone());
                    let _ = METRICS.set(metrics);
                }
                run_capture(capture, src, None, out, err, true)
            }
            Input::Bundled(name) => {
                // An unlinked temporary file libpcap can open by name.
                let data = lab::bundled(name).unwrap_or_default();
                let mut tmp = tempfile::tempfile().map_err(|e| Error::Write {
                    file: "a temporary file".into(),
                    msg: e.to_string(),
                })?;
                tmp.write_all(data).map_err(|e| Error::Write {
                    file: "a temporary file".into(),
                    msg: e.to_string(),
                })?;
                use std::os::fd::AsRawFd;
                let path = PathBuf::from(format!("/proc/self/fd/{}", tmp.as_raw_fd()));
                let mut src = Source::file(&path, None)?;
                src.name = format!("{name} (the capture shipped inside kacap)");
                let _ = writeln!(
                    err,
                    "replaying {name}, recorded by `sudo kacap lab {name} --idle 2 --interval 1 --count 2 -w FILE`"
                );
                let result = run_capture(
                    capture,
                    src,
                    Some(std::slice::from_ref(&path)),
                    out,
                    err,
                    true,
                );
                drop(tmp);
                result
            }
            Input::Merged(files) => {
                let src = Source::merged(files, capture.filter.as_deref())?;
                run_capture(capture, src, Some(files), out, err, true)
            }
            Input::Files(files) => match &files[..] {
                [file] => {
                    let src = Source::file(file, capture.filter.as_deref())?;
                    run_capture(
                        capture,
                        src,
                        Some(std::slice::from_ref(file)),
                        out,
                        err,
                        true,
                    )
                }
                _ => {
                    if inputs::looks_like_rotation(files) {
                        let _ = writeln!(
                            err,
                            "kacap: note: these files look like pieces of one rotated capture (tcpdump -C/-G/-W); each is analyzed alone — --merge reads them as one, so that a connection spanning files is one connection"
                        );
                    }
                    run_many(capture, files, out, err)
                }
            },
        },
    }
}

/// Several files, in parallel, output in the order given.
fn run_many(
    plan: &CapturePlan,
    files: &[std::path::PathBuf],
    out: impl Write,
    err: &mut impl Write,
) -> Result<(), Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let json = matches!(plan.output, Output::Json(_));
    inputs::run_parallel(
        files,
        inputs::Parallel {
            threads,
            waiting_bytes: inputs::WAITING_BYTES,
        },
        |path, w, messages| {
            let src = Source::file(path, plan.filter.as_deref())?;
            let path = [path.to_path_buf()];
            run_capture(plan, src, Some(&path), w, messages, false)
        },
        |path| match plan.output {
            // Zeek logs carry no file records: each file's log is whole.
            Output::Zeek { .. } => String::new(),
            _ => file_header(path, json),
        },
        out,
        err,
    )
}

/// What precedes one file's output when several are analyzed.
fn file_header(path: &Path, json: bool) -> String {
    if json {
        let name = crate::core::text::escape(&path.to_string_lossy());
        format!("{{\"type\":\"file\",\"path\":\"{name}\"}}\n")
    } else {
        format!("==> {} <==\n", shown(&path.to_string_lossy()))
    }
}

/// A file name as a terminal may show it: control characters as `\e`,
/// `\n`, `\t` or `\xNN` (like `ls -b`), so a name cannot move the cursor or
/// change colors.
fn shown(name: &str) -> String {
    let mut o = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\x1b' => o.push_str("\\e"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => o.push_str(&format!("\\x{:02x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// `kacap lab`: a private network, real sockets, the live analysis explained.
fn run_lab(
    lab: &LabPlan,
    capture: &CapturePlan,
    out: impl Write,
    err: &mut impl Write,
) -> Result<(), Error> {
    lab::check_root()?;
    lab::enter_private_network()?;
    let _ = writeln!(err, "{}", lab::describe(lab.name, lab.scenario, lab.timers));
    let (src, traffic) = match lab.capture_after {
        None => {
            let src = Source::live("lo", capture.filter.as_deref(), &capture.live)?;
            (src, lab::start_traffic(lab.scenario, lab.timers)?)
        }
        Some(secs) => {
            // The connection starts (and goes idle) before the capture does.
            let traffic = lab::start_traffic(lab.scenario, lab.timers)?;
            std::thread::sleep(std::time::Duration::from_secs_f64(
                lab::SETTLE_SECS + f64::from(secs),
            ));
            (
                Source::live("lo", capture.filter.as_deref(), &capture.live)?,
                traffic,
            )
        }
    };
    let result = run_capture(capture, src, None, out, err, false);
    if !traffic.is_finished() {
        // Interrupted (Ctrl-C): the sockets and the namespace go with the process.
        return result;
    }
    let name = lab.name;
    match traffic.join() {
        Ok(Ok(_)) => result,
        Ok(Err(e)) => Err(Error::Lab(format!("the {name} scenario failed: {e}"))),
        Err(_) => Err(Error::Lab(format!("the {name} scenario crashed"))),
    }
}

/// Analyzes one opened source into the planned output. `path`: the file it
/// reads, when it can be read a second time (a lookahead pass for captures
/// that start mid-connection). `alone`: the only input (a progress bar for
/// a big file on a terminal).
fn run_capture(
    plan: &CapturePlan,
    mut src: Source,
    paths: Option<&[PathBuf]>,
    out: impl Write,
    err: &mut impl Write,
    alone: bool,
) -> Result<(), Error> {
    if let Some(path) = &plan.write {
        src.save_to(path)?;
    }
    // Opened now: before the analysis (a bad path fails at once) and before
    // privileges are dropped.
    let svg = match &plan.svg {
        Some(p) => Some((
            std::fs::File::create(p).map_err(|e| Error::Write {
                file: p.display().to_string(),
                msg: e.to_string(),
            })?,
            p.display().to_string(),
        )),
        None => None,
    };
    let html = match &plan.html {
        Some(p) => Some((
            std::fs::File::create(p).map_err(|e| Error::Write {
                file: p.display().to_string(),
                msg: e.to_string(),
            })?,
            p.display().to_string(),
        )),
        None => None,
    };
    if let Some(run_as) = &plan.privileges {
        for file in plan.write.iter().chain(&plan.svg).chain(&plan.html) {
            crate::host::privileges::give(file, run_as);
        }
        crate::host::privileges::drop(run_as)?;
    }
    src.limit = plan.count;
    if alone && src.size() > PROGRESS_MIN_BYTES && io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(src.size());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {eta} left",
        ) {
            bar.set_style(style);
        }
        src.progress = Some(bar);
    }
    signal::install();
    if src.is_live() {
        let _ = writeln!(err, "{}", src.banner());
    }
    // Stdin, a FIFO, process substitution: read as a stream.
    let stdin = src.stream;
    let (result, mut src) = if stdin {
        // A pipe: read in a thread of its own, so the analysis keeps a clock.
        let mut pipe = PipeSource::start(src);
        let result = analyze_output(&mut pipe, plan, None, out, svg, html);
        match pipe.finish() {
            Some((read, src)) => (result.and(read), *src),
            // Stopped (Ctrl-C, a closed output) while the reader waits on a
            // quiet pipe: it is left behind; only an output error is left.
            None => {
                return match result {
                    Err(ReadEnd::Output(e)) => quiet_pipe(Err(Error::Output(e))),
                    _ => Ok(()),
                };
            }
        }
    } else {
        let pass = paths.map(|p| lookahead_pass(plan, p));
        (analyze_output(&mut src, plan, pass, out, svg, html), src)
    };
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
    let result = result.and(src.close());
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
        Err(ReadEnd::Save(msg)) => Err(Error::Save {
            file: plan
                .write
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            msg,
        }),
        Err(ReadEnd::Capture(msg)) => Err(Error::Live {
            iface: src.name.clone(),
            msg,
        }),
    }
}

/// Analyzes `src` into the planned output.
fn analyze_output(
    src: &mut impl FrameSource,
    plan: &CapturePlan,
    pass: Option<LookaheadPass>,
    out: impl Write,
    svg: Option<(std::fs::File, String)>,
    html: Option<(std::fs::File, String)>,
) -> Result<(), ReadEnd> {
    match (&plan.output, svg) {
        (Output::Json(opts), None) => {
            analyze_html(src, plan, pass, html, JsonSink::new(out, *opts))
        }
        (Output::Json(opts), Some((file, name))) => analyze_html(
            src,
            plan,
            pass,
            html,
            (JsonSink::new(out, *opts), SvgSink::new(file, name)),
        ),
        (Output::Zeek { json, flush_each }, _) => analyze_html(
            src,
            plan,
            pass,
            html,
            crate::report::zeek::ZeekSink::new(out, *json, *flush_each),
        ),
        (Output::Text(opts), svg) => {
            let mut opts = opts.clone();
            if let Some(live) = opts.live.as_mut() {
                // The namespace the capture runs in (after --netns, its own).
                live.sysctls = crate::host::sysctls::Sysctls::read().ok();
            }
            analyze_html(
                src,
                plan,
                pass,
                html,
                TextSink::new(out, opts).with_svg(svg),
            )
        }
    }
}

/// The host's sysctls, read before `--netns` left its namespace.
static HOST_SYSCTLS: std::sync::OnceLock<Option<crate::host::sockets::Sysctls>> =
    std::sync::OnceLock::new();

/// `sink`, with the HTML report written beside it when `--html` asks.
fn analyze_html(
    src: &mut impl FrameSource,
    plan: &CapturePlan,
    pass: Option<LookaheadPass>,
    html: Option<(std::fs::File, String)>,
    sink: impl Sink,
) -> Result<(), ReadEnd> {
    match html {
        Some((file, name)) => {
            let style = match &plan.output {
                Output::Text(opts) => opts.style,
                _ => crate::report::tcpdump::Style::default(),
            };
            // Live: the sysctls of the namespace the capture runs in (with
            // `--netns`, the connections' own).
            let host = match plan.input {
                crate::command::plan::Input::Live(_) => crate::host::sysctls::Sysctls::read().ok(),
                _ => None,
            };
            analyze_measured(
                src,
                plan,
                pass,
                (
                    sink,
                    crate::report::html::HtmlSink::new(file, name, style, host),
                ),
            )
        }
        None => analyze_measured(src, plan, pass, sink),
    }
}

/// `--metrics`: what the endpoint serves, once it listens.
static METRICS: std::sync::OnceLock<
    std::sync::Arc<std::sync::Mutex<crate::report::metrics::Metrics>>,
> = std::sync::OnceLock::new();

/// `sink`, with the metrics kept beside it when `--metrics` asks.
fn analyze_measured(
    src: &mut impl FrameSource,
    plan: &CapturePlan,
    pass: Option<LookaheadPass>,
    sink: impl Sink,
) -> Result<(), ReadEnd> {
    match METRICS.get().filter(|_| plan.metrics.is_some()) {
        Some(m) => analyze_joined(
            src,
            plan,
            pass,
            crate::report::metrics::MetricsSink::new(sink, m.clone()),
        ),
        None => analyze_joined(src, plan, pass, sink),
    }
}

/// `sink`, with the host's socket table joined when `--sockets` asks.
fn analyze_joined(
    src: &mut impl FrameSource,
    plan: &CapturePlan,
    pass: Option<LookaheadPass>,
    sink: impl Sink,
) -> Result<(), ReadEnd> {
    use crate::host::sockets::join::Joiner;
    use crate::report::sockets::SocketJoin;
    if !plan.sockets {
        return analyze_into(src, plan, pass, sink);
    }
    let host = HOST_SYSCTLS.get().copied().flatten();
    let joiner = Joiner::new(Box::new(crate::host::sockets::RealHost), host);
    analyze_into(src, plan, pass, SocketJoin::new(sink, joiner))
}

fn analyze_into(
    src: &mut impl FrameSource,
    plan: &CapturePlan,
    mut pass: Option<LookaheadPass>,
    sink: impl Sink,
) -> Result<(), ReadEnd> {
    if let Some(format) = shardable(plan)
        && let Some(pass) = pass.take()
    {
        let controls = analyzer::Controls {
            stop: &signal::STOP,
            show: Some(&signal::SHOW),
            every: None,
            partial_on_stop: true,
            quit: Some(&signal::OUTPUT_GONE),
        };
        return crate::pipeline::shard::drive(
            src,
            plan.options,
            pass,
            sink,
            plan.threads,
            format,
            controls,
        );
    }
    let mut analyzer = Analyzer::new(src.link(), plan.options, sink);
    // A file read with a lookahead pass (not a stream, not live): stopping
    // early leaves a partial analysis.
    let partial_on_stop = pass.is_some();
    if let Some(pass) = pass {
        analyzer = analyzer.with_lookahead(pass);
    }
    let controls = analyzer::Controls {
        stop: &signal::STOP,
        show: Some(&signal::SHOW),
        every: plan.stats_every,
        partial_on_stop,
        quit: Some(&signal::OUTPUT_GONE),
    };
    analyzer::drive(src, analyzer, controls)
}

/// One file, read by one reader and analyzed on `plan.threads` shards
/// (see `shard`): where nothing needs one analyzer's order of events but
/// packet records and timeline lines, which the shards format and the
/// merge writes in capture order. `Some(format)`: shardable, with what the
/// shards format per packet (`None`: nothing). Not shardable: teaching,
/// HTML and SVG (one recorder of every connection's steps), metrics,
/// sockets, snapshots, live, streams (flushed records, "flow N ended"
/// lines), and a timeline folded to a terminal's width.
fn shardable(plan: &CapturePlan) -> Option<Option<crate::pipeline::shard::Format>> {
    use crate::pipeline::shard::Format;
    let format = match &plan.output {
        Output::Text(o) if o.teaching() || o.live.is_some() => return None,
        Output::Text(o) if !o.timeline => None,
        Output::Text(o) if o.width.is_none() && !o.flush_each => Some(Format::Text(Box::new((
            crate::report::tcpdump::Tcpdump::new(o.style),
            o.clone(),
        )))),
        Output::Json(o) if !o.packets => None,
        Output::Json(o) if !o.flush_each => Some(Format::Json(*o)),
        Output::Zeek { .. } => None,
        _ => return None,
    };
    (plan.threads > 1
        && plan.html.is_none()
        && plan.svg.is_none()
        && plan.metrics.is_none()
        && !plan.sockets
        && plan.stats_every.is_none()
        && !matches!(plan.input, crate::command::plan::Input::Live(_)))
    .then_some(format)
}

/// A second read of the file at `path`, with the same filter and `-c`.
fn lookahead_pass(plan: &CapturePlan, paths: &[PathBuf]) -> LookaheadPass {
    let (paths, filter) = (paths.to_vec(), plan.filter.clone());
    let (options, limit) = (plan.options, plan.count);
    Box::new(move || {
        let mut src = match &paths[..] {
            [one] => Source::file(one, filter.as_deref()),
            several => Source::merged(several, filter.as_deref()),
        }
        .ok()?;
        src.limit = limit;
        Some(analyzer::lookahead(&mut src, options))
    })
}

/// A closed pipe is not an error.
fn quiet_pipe(r: Result<(), Error>) -> Result<(), Error> {
    match r {
        Err(Error::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
