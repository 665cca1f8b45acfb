//! Wiring: arguments → source → analyzer → sink.

use crate::analyzer::{Analyzer, Options};
use crate::cli::{Args, ColorChoice};
use crate::error::Error;
use crate::report::Sink;
use crate::report::json::JsonSink;
use crate::report::tcpdump::{Tcpdump, TsFormat};
use crate::report::text::TextSink;
use crate::source::{FileSource, ReadEnd};
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

/// Runs kacap with parsed arguments, writing to `out`, warnings to `err`.
pub fn run(args: &Args, out: impl Write, err: &mut impl Write) -> Result<(), Error> {
    let mut src = FileSource::open(&args.read, args.filter_expr().as_deref())?;
    let options = Options {
        linger: args.linger,
        idle_timeout: args.idle_timeout,
    };
    let result = if args.json {
        let sink = JsonSink::new(out, !args.summary, args.nano, false);
        analyze(&mut src, options, sink)
    } else {
        let color = use_color(args.color, io::stdout().is_terminal());
        let tcpdump = Tcpdump::new(TsFormat::from_count(args.t), args.nano, args.absolute);
        let sink = TextSink::new(out, tcpdump, color, !args.summary, false);
        analyze(&mut src, options, sink)
    };
    match result {
        Ok(None) => Ok(()),
        Ok(Some(warning)) => {
            let _ = writeln!(err, "kacap: warning: {}: {warning}", src.name);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Output(e)),
    }
}

/// Reads the whole source through the analyzer. Returns a warning when the
/// file ended in the middle of a packet.
fn analyze<S: Sink>(src: &mut FileSource, options: Options, sink: S) -> io::Result<Option<String>> {
    let mut analyzer = Analyzer::new(src.link, options, sink);
    let warning = match src.run(|frame| analyzer.frame(frame)) {
        Ok(()) => None,
        Err(ReadEnd::Output(e)) => return Err(e),
        Err(ReadEnd::Truncated(msg)) => Some(format!(
            "capture ends in the middle of a packet ({msg}); analyzed every complete packet before it"
        )),
    };
    analyzer.finish()?;
    Ok(warning)
}
