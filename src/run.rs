//! Wiring: arguments → source → analyzer → sink.

use crate::analyzer::{Analyzer, Options};
use crate::cli::{Args, ColorChoice, Command, LabArgs, LabScenario};
use crate::error::Error;
use crate::inputs;
use crate::keepalive::SystemDefaults;
use crate::lab;
use crate::report::Sink;
use crate::report::json::JsonSink;
use crate::report::tcpdump::{Tcpdump, TsFormat};
use crate::report::text::{LiveInfo, TextOptions, TextSink};
use crate::signal;
use crate::source::{ReadEnd, Source, list_interfaces};
use crate::traffic::{Scenario, Timers};
use std::io::{self, IsTerminal, Write};

/// Inputs larger than this get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 100 * 1024 * 1024;

/// Whether to color: `--color`, NO_COLOR (any non-empty value), a terminal.
pub fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Runs kacap with parsed arguments, writing to `out`, messages to `err`.
pub fn run(args: &Args, mut out: impl Write, err: &mut impl Write) -> Result<(), Error> {
    if args.list_interfaces {
        return quiet_pipe(
            list_interfaces(&mut out).and_then(|()| out.flush().map_err(Error::Output)),
        );
    }
    if let Some(Command::Lab(lab_args)) = &args.command {
        return run_lab(args, lab_args, out, err);
    }
    // `kacap -r caps/*.pcap`: the shell expanded the glob, and the files after
    // the first landed among the filter words.
    if !args.read.is_empty()
        && let Some(file) = args
            .filter
            .iter()
            .find(|w| std::path::Path::new(w).is_file())
    {
        return Err(Error::Usage(format!(
            "'{file}' is a file, not a filter word: give each file its own -r, a directory, or a quoted glob (-r 'caps/*.pcap')"
        )));
    }
    let filter = args.filter_expr();
    let filter = filter.as_deref();
    match (&args.read[..], &args.interface) {
        ([], Some(iface)) => capture(args, Source::live(iface, filter)?, out, err, Mode::Single),
        ([_, ..], None) => {
            let files = inputs::expand(&args.read)?;
            if let [file] = &files[..] {
                capture(args, Source::file(file, filter)?, out, err, Mode::Single)
            } else {
                run_many(args, &files, filter, out, err)
            }
        }
        _ => Err(Error::Usage("give -r FILE or -i IFACE".into())),
    }
}

/// Several files, in parallel, output in the order given.
fn run_many(
    args: &Args,
    files: &[std::path::PathBuf],
    filter: Option<&str>,
    out: impl Write,
    err: &mut impl Write,
) -> Result<(), Error> {
    if args.write.is_some() || args.diagram_svg.is_some() {
        return Err(Error::Usage(
            "-w and --diagram-svg take a single input file".into(),
        ));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let json = args.json;
    inputs::run_parallel(
        files,
        threads,
        |path, w, messages| capture(args, Source::file(path, filter)?, w, messages, Mode::Many),
        |path| {
            if json {
                let name = path
                    .to_string_lossy()
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"");
                format!("{{\"type\":\"file\",\"path\":\"{name}\"}}\n")
            } else {
                format!("==> {} <==\n", path.display())
            }
        },
        out,
        err,
    )
}

/// How a capture is run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One input, to stdout.
    Single,
    /// One of several files analyzed in parallel (no progress bar).
    Many,
    /// `kacap lab`: the explanation and the diagram come with the text.
    Lab,
}

/// `kacap lab`: a private network, real sockets, the live analysis explained.
fn run_lab(
    args: &Args,
    lab_args: &LabArgs,
    out: impl Write,
    err: &mut impl Write,
) -> Result<(), Error> {
    lab::check_root()?;
    let timers = Timers {
        idle: lab_args.idle,
        interval: lab_args.interval,
        count: lab_args.count,
    };
    let (name, scenario) = match lab_args.scenario {
        LabScenario::Healthy => ("healthy", Scenario::Healthy { answered: 2 }),
        LabScenario::DeadPeer => ("dead-peer", Scenario::DeadPeer),
        LabScenario::PeerReboot => ("peer-reboot", Scenario::PeerReboot),
        LabScenario::ServerSide => ("server-side", Scenario::ServerSide { answered: 2 }),
    };
    lab::enter_private_network()?;
    let _ = writeln!(err, "{}", lab::describe(name, scenario, timers));
    let filter = format!("tcp port {}", lab::PORT);
    let src = Source::live("lo", Some(&filter))?;
    let traffic = lab::start_traffic(scenario, timers)?;
    let result = capture(args, src, out, err, Mode::Lab);
    if !traffic.is_finished() {
        // Interrupted (Ctrl-C): the sockets and the namespace go with the process.
        return result;
    }
    match traffic.join() {
        Ok(Ok(_)) => result,
        Ok(Err(e)) => Err(Error::Usage(format!(
            "kacap lab: the {name} scenario failed: {e}"
        ))),
        Err(_) => Err(Error::Usage(format!(
            "kacap lab: the {name} scenario crashed"
        ))),
    }
}

/// Analyzes `src` into the output the arguments ask for.
fn capture(
    args: &Args,
    mut src: Source,
    out: impl Write,
    err: &mut impl Write,
    mode: Mode,
) -> Result<(), Error> {
    let lab = mode == Mode::Lab;
    if let Some(path) = &args.write {
        src.save_to(path)?;
    }
    src.limit = args.count;
    if mode == Mode::Single && src.size() > PROGRESS_MIN_BYTES && io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(src.size());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {eta} left",
        ) {
            bar.set_style(style);
        }
        src.progress = Some(bar);
    }
    signal::install();
    let live = src.is_live();
    if live {
        let _ = writeln!(err, "{}", src.banner());
    }
    let options = Options {
        linger: args.linger,
        idle_timeout: args.idle_timeout,
    };
    if args.json && (args.explain || args.diagram || args.diagram_svg.is_some()) {
        return Err(Error::Usage(
            "--explain, --diagram and --diagram-svg go with the text output, not --json".into(),
        ));
    }
    let result = if args.json {
        let sink = JsonSink::new(out, !args.summary, args.nano, live);
        analyze(&mut src, options, sink)
    } else {
        let color = use_color(args.color, io::stdout().is_terminal());
        let tcpdump = Tcpdump::new(TsFormat::from_count(args.t), args.nano, args.absolute);
        let opts = TextOptions {
            color,
            timeline: !args.summary,
            live: live.then(|| LiveInfo {
                defaults: SystemDefaults::read(),
            }),
            explain: args.explain || lab,
            diagram: args.diagram,
            svg: args.diagram_svg.clone(),
        };
        analyze(&mut src, options, TextSink::new(out, tcpdump, opts))
    };
    src.close_save();
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
            let what = if msg.contains("truncated") {
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
            file: args
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

/// A closed pipe is not an error.
fn quiet_pipe(r: Result<(), Error>) -> Result<(), Error> {
    match r {
        Err(Error::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Reads the whole source through the analyzer; the flows and the summary
/// are reported even when reading ended early (truncated file, Ctrl-C).
fn analyze<S: Sink>(src: &mut Source, options: Options, sink: S) -> Result<(), ReadEnd> {
    let mut analyzer = Analyzer::new(src.link, options, sink);
    let analyzer_cell = std::cell::RefCell::new(&mut analyzer);
    let read = src.run(
        &signal::STOP,
        |frame| analyzer_cell.borrow_mut().frame(frame),
        |now| analyzer_cell.borrow_mut().tick(now),
    );
    if let Err(ReadEnd::Output(_)) = read {
        return read;
    }
    analyzer.finish().map_err(ReadEnd::Output)?;
    read
}
