//! Wiring: arguments → source → analyzer → sink.

use crate::analyzer::{Analyzer, Options};
use crate::cli::{Args, ColorChoice};
use crate::error::Error;
use crate::keepalive::SystemDefaults;
use crate::report::Sink;
use crate::report::json::JsonSink;
use crate::report::tcpdump::{Tcpdump, TsFormat};
use crate::report::text::{LiveInfo, TextOptions, TextSink};
use crate::signal;
use crate::source::{ReadEnd, Source, list_interfaces};
use std::io::{self, IsTerminal, Write};

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
    let filter = args.filter_expr();
    let mut src = match (&args.read, &args.interface) {
        (Some(path), None) => Source::file(path, filter.as_deref())?,
        (None, Some(iface)) => Source::live(iface, filter.as_deref())?,
        _ => return Err(Error::Usage("give -r FILE or -i IFACE".into())),
    };
    if let Some(path) = &args.write {
        src.save_to(path)?;
    }
    src.limit = args.count;
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
            explain: args.explain,
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
            let _ = writeln!(
                err,
                "kacap: warning: {}: capture ends in the middle of a packet ({msg}); analyzed every complete packet before it",
                src.name
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
