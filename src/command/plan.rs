//! The plan: the command line resolved and checked once, before anything
//! happens — no file is created, no capture opened, no signal handler
//! installed until every option is known to fit. `run` carries it out.

use crate::command::cli::{Args, ColorChoice, Command, Direction, LabScenario};
use crate::core::flows::Options;
use crate::error::Error;
use crate::host::privileges::RunAs;
use crate::input::many as inputs;
use crate::input::open::LiveOptions;
use crate::lab::traffic::{Scenario, Timers};
use crate::report::json::JsonOptions;
use crate::report::tcpdump::{Dump, Style, TsFormat};
use crate::report::text::{LiveInfo, TextOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// What kacap was asked to do.
#[derive(Clone, Debug)]
pub enum Plan {
    /// `-D`: list the interfaces.
    ListInterfaces,
    /// Analyze files or a live capture.
    Capture(CapturePlan),
    /// `kacap lab`: a scenario in a private network, captured live on its `lo`.
    Lab(LabPlan, CapturePlan),
    /// `kacap completions SHELL`.
    Completions(clap_complete::Shell),
    /// `kacap man`.
    Man,
    /// `kacap sockets`: the host's TCP sockets and their keepalive settings.
    Sockets(SocketsPlan),
    /// `kacap watch`: connections' ends as the kernel tells them.
    Watch(WatchPlan),
}

/// `kacap watch`, resolved.
#[derive(Clone, Debug)]
pub struct WatchPlan {
    /// Only connections with this port at either end.
    pub port: Option<u16>,
    pub json: bool,
    /// Clean closes too.
    pub verbose: bool,
    /// `--metrics`: where to serve the ends' counters.
    pub metrics: Option<std::net::SocketAddr>,
    /// `--netns`: only that namespace's connections (joined through its
    /// socket table).
    pub netns: Option<Netns>,
}

/// `--netns`: a namespace to enter, checked to exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netns {
    pub spec: String,
    pub path: PathBuf,
}

/// `kacap sockets`, resolved.
#[derive(Clone, Debug)]
pub struct SocketsPlan {
    pub netns: Option<Netns>,
    pub filter: crate::host::sockets::filter::Filter,
    /// The filter as written (for "no socket matches …").
    pub filter_words: String,
    pub json: bool,
    pub width: Option<u16>,
}

/// Where packets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Capture files (`-` is stdin), expanded from directories and globs;
    /// several are analyzed in parallel.
    Files(Vec<PathBuf>),
    /// A live interface.
    Live(String),
    /// `--merge`: several files read as one capture, in time order.
    Merged(Vec<PathBuf>),
    /// `kacap lab NAME --replay`: the capture of a scenario shipped inside
    /// kacap.
    Bundled(&'static str),
}

/// What the output is: built once, a sink made from it per input.
#[derive(Clone, Debug)]
pub enum Output {
    /// The timeline and the table (`--summary`: the table only), with
    /// `--explain` / `--diagram` / `--diagram-svg`.
    Text(TextOptions),
    /// JSON Lines (`--summary`: flow and summary records only).
    Json(JsonOptions),
    /// `--log-format zeek|zeek-json`: one record per connection.
    Zeek { json: bool, flush_each: bool },
}

/// One analysis run, fully resolved.
#[derive(Clone, Debug)]
pub struct CapturePlan {
    pub input: Input,
    /// BPF filter (tcpdump's trailing words).
    pub filter: Option<String>,
    /// `-w`: also write the packets (single input only).
    pub write: Option<PathBuf>,
    /// `-c`: stop after this many packets.
    pub count: Option<u64>,
    /// `-s`, `-B`, `-Q` for a live capture.
    pub live: LiveOptions,
    pub options: Options,
    pub output: Output,
    /// `--stats-every`: show how the run stands this often (SIGUSR1 always can).
    pub stats_every: Option<std::time::Duration>,
    /// `--diagram-svg FILE` (with text or JSON output).
    pub svg: Option<PathBuf>,
    /// `--html FILE` (with any output).
    pub html: Option<PathBuf>,
    /// `--parquet FILE` (with any output).
    pub parquet: Option<PathBuf>,
    /// `--annotate FILE` (with any output).
    pub annotate: Option<PathBuf>,
    /// Live: who to become once the capture is open (`-Z`).
    pub privileges: Option<RunAs>,
    /// Live: the network namespace to capture in (`--netns`).
    pub netns: Option<Netns>,
    /// Live: join the host's socket table (`--sockets`).
    pub sockets: bool,
    /// Live and lab: the kernel's account of each end (`--kernel`).
    pub kernel: bool,
    /// Live: serve Prometheus metrics here (`--metrics`).
    pub metrics: Option<std::net::SocketAddr>,
    /// `--threads`: analyzers for one file (see `shard`); 1 for several
    /// files (they run in parallel already) and for live captures.
    pub threads: usize,
    /// `--readers`: threads reading that file in byte ranges (1: the
    /// analyzers' feeder reads it alone).
    pub readers: usize,
}

/// A lab scenario with its timers.
#[derive(Clone, Copy, Debug)]
pub struct LabPlan {
    pub name: &'static str,
    pub scenario: Scenario,
    pub timers: Timers,
    /// Seconds into the idle period to start capturing (`--capture-after`).
    pub capture_after: Option<u32>,
}

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

impl Plan {
    /// Resolves and checks every option. Reads the file system (to expand
    /// directories and globs, and to tell files from filter words) but
    /// changes nothing.
    pub fn from_args(args: &Args) -> Result<Plan, Error> {
        Plan::from_args_on(args, &Terminal::of_stdout())
    }

    /// The plan for output going to `term` (a run in-process, into a
    /// buffer: `Terminal::default()`, not a terminal).
    pub fn from_args_on(args: &Args, term: &Terminal) -> Result<Plan, Error> {
        if args.list_interfaces {
            return Ok(Plan::ListInterfaces);
        }
        let netns = match &args.netns {
            Some(spec) => Some(Netns {
                spec: spec.clone(),
                path: crate::host::sockets::netns::check(spec).map_err(Error::Host)?,
            }),
            None => None,
        };
        match &args.command {
            Some(Command::Completions { shell }) => return Ok(Plan::Completions(*shell)),
            Some(Command::Man) => return Ok(Plan::Man),
            Some(Command::Sockets(s)) => {
                if args.write.is_some() || args.diagram_svg.is_some() {
                    return Err(Error::Usage(
                        "kacap sockets writes no capture: -w and --diagram-svg do not apply".into(),
                    ));
                }
                return Ok(Plan::Sockets(SocketsPlan {
                    netns,
                    filter: crate::host::sockets::filter::Filter::parse(&s.filter)
                        .map_err(Error::Usage)?,
                    filter_words: s.filter.join(" "),
                    json: args.json,
                    width: terminal_width(args.wide, term),
                }));
            }
            Some(Command::Watch(w)) => {
                if args.write.is_some() || args.diagram_svg.is_some() {
                    return Err(Error::Usage(
                        "kacap watch captures no packets: -w and --diagram-svg do not apply".into(),
                    ));
                }
                let port = match w.filter.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    [] => None,
                    ["port", n] => Some(n.parse::<u16>().map_err(|_| {
                        Error::Usage(format!(
                            "kacap watch: port {n:?} is not a port number (0 to 65535)"
                        ))
                    })?),
                    _ => {
                        return Err(Error::Usage(format!(
                            "kacap watch: unknown filter {:?}: it takes 'port N' (see kacap watch --help)",
                            w.filter.join(" ")
                        )));
                    }
                };
                return Ok(Plan::Watch(WatchPlan {
                    port,
                    json: args.json,
                    verbose: args.verbose > 0,
                    metrics: args.metrics,
                    netns,
                }));
            }
            Some(Command::Lab(_)) if netns.is_some() => {
                return Err(Error::Usage(
                    "kacap lab makes a private network namespace of its own: --netns does not apply".into(),
                ));
            }
            _ => {}
        }
        if let Some(Command::Lab(lab)) = &args.command {
            let (name, scenario) = match lab.scenario {
                LabScenario::Healthy => ("healthy", Scenario::Healthy { answered: 2 }),
                LabScenario::DeadPeer => ("dead-peer", Scenario::DeadPeer),
                LabScenario::PeerReboot => ("peer-reboot", Scenario::PeerReboot),
                LabScenario::ServerSide => ("server-side", Scenario::ServerSide { answered: 2 }),
                LabScenario::AcksDropped => ("acks-dropped", Scenario::AcksDropped),
                LabScenario::RetransmitTimeout => {
                    ("retransmit-timeout", Scenario::RetransmitTimeout)
                }
                LabScenario::StalePool => ("stale-pool", Scenario::StalePool),
                LabScenario::IdleTimeout => ("idle-timeout", Scenario::IdleTimeout),
            };
            if lab.replay && args.kernel {
                return Err(Error::Usage(
                    "--kernel reads the kernel as connections end: not with --replay (a capture shipped inside kacap)".into(),
                ));
            }
            if lab.replay {
                if crate::lab::bundled(name).is_none() {
                    return Err(Error::Usage(format!(
                        "no capture of {name} ships with kacap: run it live (sudo kacap lab {name})"
                    )));
                }
                return Ok(Plan::Capture(CapturePlan {
                    input: Input::Bundled(name),
                    filter: None,
                    write: args.write.clone(),
                    count: None,
                    live: LiveOptions::default(),
                    options: options(args),
                    output: output(args, false, false, true, term),
                    stats_every: None,
                    svg: args.diagram_svg.clone(),
                    html: args.html.clone(),
                    parquet: args.parquet.clone(),
                    annotate: args.annotate.clone(),
                    privileges: None,
                    netns: None,
                    sockets: false,
                    kernel: false,
                    metrics: None,
                    threads: 1,
                    readers: 1,
                }));
            }
            let timers = Timers {
                idle: lab.idle,
                interval: lab.interval,
                count: lab.count,
            };
            let capture = CapturePlan {
                input: Input::Live("lo".into()),
                filter: Some(format!("tcp port {}", crate::lab::PORT)),
                write: args.write.clone(),
                count: None,
                live: LiveOptions::default(),
                options: options(args),
                // The lab explains what it shows.
                output: output(args, true, true, true, term),
                stats_every: None,
                svg: args.diagram_svg.clone(),
                html: args.html.clone(),
                parquet: args.parquet.clone(),
                annotate: args.annotate.clone(),
                // The lab's traffic runs beside the capture: it keeps root.
                privileges: None,
                netns: None,
                sockets: false,
                kernel: args.kernel,
                metrics: None,
                threads: 1,
                readers: 1,
            };
            return Ok(Plan::Lab(
                LabPlan {
                    name,
                    scenario,
                    timers,
                    capture_after: lab.capture_after,
                },
                capture,
            ));
        }
        // `kacap -r caps/*.pcap`: the shell expanded the glob, and the files
        // after the first landed among the filter words — when those words
        // are no filter libpcap accepts (`tcp port 2333` stays a filter even
        // beside a file named 2333).
        if !args.read.is_empty()
            && let Some(file) = args.filter.iter().find(|w| Path::new(w).is_file())
            && !crate::input::open::filter_compiles(&args.filter.join(" "))
        {
            return Err(Error::Usage(format!(
                "'{file}' is a file, not a filter word: give each file its own -r, a directory, or a quoted glob (-r 'caps/*.pcap')"
            )));
        }
        let input = match (&args.read[..], &args.interface) {
            ([], Some(iface)) => Input::Live(iface.clone()),
            ([_, ..], None) => {
                let files = inputs::expand(&args.read)?;
                if args.merge && files.len() > 1 {
                    if let Some(f) = files.iter().find(|f| is_stream(f)) {
                        return Err(Error::Usage(format!(
                            "--merge reads files, and {} is a pipe: merge files, or give the stream alone",
                            f.display()
                        )));
                    }
                    Input::Merged(files)
                } else {
                    Input::Files(files)
                }
            }
            _ => return Err(Error::Usage("give -r FILE or -i IFACE".into())),
        };
        let live = matches!(input, Input::Live(_));
        if args.metrics.is_some() && !live {
            return Err(Error::Usage(
                "--metrics serves a live capture's counters (-i) or kacap watch's, not a file's"
                    .into(),
            ));
        }
        if args.kernel && !live {
            return Err(Error::Usage(
                "--kernel reads the kernel's tracepoints as connections end: it takes a live capture (-i) or kacap lab, not a file".into(),
            ));
        }
        if netns.is_some() && !live {
            return Err(Error::Usage(
                "--netns applies to live captures (-i) and kacap sockets: a capture file is read as it is".into(),
            ));
        }
        let stream = live
            || args.line_buffered
            || matches!(&input, Input::Files(f) if f.len() == 1 && is_stream(&f[0]));
        let filter = match &args.filter_file {
            Some(_) if !args.filter.is_empty() => {
                return Err(Error::Usage(
                    "give the filter either with -F FILE or as words after the options, not both"
                        .into(),
                ));
            }
            Some(file) => filter_from(file)?,
            None => args.filter_expr(),
        };
        match &input {
            Input::Files(files) => super::outfiles::check(args, files, false)?,
            Input::Merged(files) => super::outfiles::check(args, files, true)?,
            _ => super::outfiles::check(args, &[], false)?,
        }
        let privileges = match &input {
            // --sockets reads other processes' sockets all along: it keeps
            // root unless told otherwise.
            Input::Live(_) if args.sockets && args.run_as.is_none() => {
                Some(crate::host::privileges::resolve(Some("root"))?)
            }
            Input::Live(_) => Some(crate::host::privileges::resolve(args.run_as.as_deref())?),
            _ if args.run_as.is_some() => {
                return Err(Error::Usage(
                    "-Z applies to live captures (-i): reading files needs no privileges to drop"
                        .into(),
                ));
            }
            _ => None,
        };
        let threads = match (&input, args.threads) {
            (Input::Files(files), _) if files.len() > 1 => 1,
            (Input::Live(_), _) => 1,
            (_, Some(n)) if n > 0 => usize::from(n),
            _ => default_threads(std::thread::available_parallelism().map_or(1, usize::from)),
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let readers = match args.readers {
            Some(n) if n > 0 => usize::from(n),
            _ => default_readers(cores),
        };
        Ok(Plan::Capture(CapturePlan {
            threads,
            readers,
            stats_every: args.stats_every.map(std::time::Duration::from_secs_f64),
            svg: args.diagram_svg.clone(),
            html: args.html.clone(),
            parquet: args.parquet.clone(),
            annotate: args.annotate.clone(),
            privileges,
            netns,
            sockets: args.sockets,
            kernel: args.kernel,
            metrics: args.metrics,
            input,
            filter,
            write: args.write.clone(),
            count: args.count,
            live: LiveOptions {
                snaplen: args.snaplen,
                buffer_kib: args.buffer_kib,
                direction: args.direction.map(|d| match d {
                    Direction::In => pcap::Direction::In,
                    Direction::Out => pcap::Direction::Out,
                    Direction::Inout => pcap::Direction::InOut,
                }),
            },
            options: options(args),
            output: output(args, live, stream, false, term),
        }))
    }
}

/// `-F FILE`: the filter expression in a file, `#` comments removed, lines
/// joined; `None` when nothing is left.
fn filter_from(file: &Path) -> Result<Option<String>, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::Input {
        file: file.display().to_string(),
        msg: format!("cannot read the filter file: {e}"),
    })?;
    let words: Vec<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect();
    Ok((!words.is_empty()).then(|| words.join(" ")))
}

/// The width of the terminal stdout is, from `COLUMNS` or the terminal
/// itself; `None` with `--wide` or when stdout is not a terminal.
/// Analyzers for one file by default on `cores` cores: one core, one (no
/// reader thread beside it); else two per core, at most 8. The reader is a
/// thread beside the analyzers, so one analyzer per core leaves cores idle
/// while it waits for a busy one (2 cores: 4 analyzers took 0.87× the wall
/// time of 2, same CPU — docs/performance.md); one reader keeps about two
/// or three cores busy, so more analyzers only cost memory.
fn default_threads(cores: usize) -> usize {
    if cores <= 1 { 1 } else { (2 * cores).min(8) }
}

/// Range readers for one file by default on `cores` cores: one per three
/// (the reader's share of the work is about a third — docs/performance.md),
/// so one (no range readers) up to five cores.
fn default_readers(cores: usize) -> usize {
    (cores / 3).max(1)
}

fn terminal_width(wide: bool, term: &Terminal) -> Option<u16> {
    if wide || !term.is_terminal {
        return None;
    }
    let width = term.columns?;
    // Narrower than this, nothing fits anyway: keep the natural layout.
    (width >= 40).then_some(width)
}

/// Where the output goes: a terminal (and how wide), or not.
#[derive(Clone, Copy, Debug, Default)]
pub struct Terminal {
    pub is_terminal: bool,
    pub columns: Option<u16>,
}

impl Terminal {
    /// This process's stdout: a terminal, its width from `COLUMNS` or the
    /// terminal itself.
    pub fn of_stdout() -> Terminal {
        if !std::io::stdout().is_terminal() {
            return Terminal::default();
        }
        let from_env = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok());
        let columns = from_env.or_else(|| {
            // SAFETY: TIOCGWINSZ fills a `winsize`; the result is checked.
            let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
            let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
            (ok && ws.ws_col > 0).then_some(ws.ws_col)
        });
        Terminal {
            is_terminal: true,
            columns,
        }
    }
}

/// Stdin, a FIFO, process substitution, a character device: read as it
/// comes (each record flushed), not as a file.
fn is_stream(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    path == Path::new("-")
        || std::fs::metadata(path).is_ok_and(|m| {
            let t = m.file_type();
            t.is_fifo() || t.is_char_device() || t.is_socket()
        })
}

fn options(args: &Args) -> Options {
    Options {
        linger: args.linger,
        idle_timeout: args.idle_timeout,
        ..Options::default()
    }
}

/// The output the arguments ask for (`--json` and the teaching options
/// exclude each other in `cli`).
/// `stream`: live, or a pipe — every record is flushed as it is written.
fn output(args: &Args, live: bool, stream: bool, lab: bool, term: &Terminal) -> Output {
    if let Some(format) = args.log_format {
        return Output::Zeek {
            json: format == crate::command::cli::LogFormat::ZeekJson,
            flush_each: stream,
        };
    }
    if args.json {
        return Output::Json(JsonOptions {
            packets: !args.summary,
            nano: args.nano(),
            flush_each: stream,
            community_id: args.verbose > 0,
        });
    }
    Output::Text(TextOptions {
        color: use_color(args.color, term.is_terminal),
        timeline: !args.summary,
        // The sysctls are read when the capture starts, in its namespace.
        live: live.then(LiveInfo::default),
        explain: args.explain || lab,
        diagram: args.diagram,
        svg: args.diagram_svg.clone(),
        style: Style {
            ts_format: TsFormat::from_count(args.t),
            nano: args.nano(),
            absolute: args.absolute,
            quiet: args.quiet,
            verbose: args.verbose,
            link_header: args.link_header,
            dump: Dump::from_counts(args.hex, args.hex_ascii, args.ascii),
        },
        flush_each: stream,
        width: terminal_width(args.wide, term),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn analyzers_by_default_two_per_core_at_most_eight() {
        let got: Vec<usize> = [1, 2, 3, 4, 64].map(super::default_threads).to_vec();
        assert_eq!(got, [1, 4, 6, 8, 8]);
    }
}
