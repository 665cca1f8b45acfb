//! kacap's command line, start to end: the words as tcpdump users type
//! them, clap's arguments, the plan, the run, and the error as one line
//! with its exit status. The binary is this with the process's argv and
//! streams; tests run it in-process with buffers (`run_argv`).

use crate::command::cli::Args;
use crate::command::plan::{Plan, Terminal};
use crate::error::Error;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::io::Write;

/// What bare `kacap` says.
const USAGE: &str = "\
usage: kacap -r FILE [FILTER...]   analyze a capture (pcap or pcapng; - for stdin)
       kacap -i IFACE [FILTER...]  capture live (needs root or: setcap cap_net_raw,cap_net_admin=eip)
       kacap lab SCENARIO          the keepalive walkthrough, live, in a private network namespace
       kacap --help                every option, with examples";

/// Runs kacap with `argv` (its first word the program's name), writing to
/// `out` (going to `term`) and messages to `err`; the exit status.
pub fn run_argv(argv: Vec<OsString>, term: &Terminal, out: impl Write, err: &mut impl Write) -> u8 {
    if argv.len() == 1 {
        let _ = writeln!(err, "{USAGE}");
        return 2;
    }
    // `--version` also says which libpcap.
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let version = VERSION.get_or_init(|| {
        format!(
            "{} ({})",
            env!("CARGO_PKG_VERSION"),
            crate::input::open::libpcap_version()
        )
    });
    let argv = crate::command::argv::tcpdump_order(argv);
    if let Some(msg) = crate::command::argv::unsupported(&argv) {
        let _ = writeln!(err, "kacap: {msg}");
        return 2;
    }
    let parsed = Args::command()
        .version(version.as_str())
        .try_get_matches_from(argv)
        .and_then(|m| Args::from_arg_matches(&m));
    let args = match parsed {
        Ok(args) => args,
        Err(e) => return usage_error(e, err),
    };
    let result =
        Plan::from_args_on(&args, term).and_then(|plan| crate::command::run::run(&plan, out, err));
    match result {
        Ok(()) => 0,
        Err(e) => {
            if !matches!(e, Error::Reported(_)) {
                let _ = writeln!(err, "kacap: {e}");
            }
            e.exit_code() as u8
        }
    }
}

/// A command-line error as one line; help and version as clap prints them
/// (on the process's own streams, styled for a terminal).
fn usage_error(e: clap::Error, err: &mut impl Write) -> u8 {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return e.exit_code() as u8;
    }
    let text = e.render().to_string();
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    let mut first = lines
        .next()
        .unwrap_or("bad usage")
        .trim_start_matches("error: ")
        .to_string();
    // "the following required arguments were not provided:" lists them on
    // the lines after it: they are the message.
    if first.ends_with(':') {
        let mut missing = Vec::new();
        while let Some(l) = lines.next_if(|l| l.starts_with('<') || l.starts_with('-')) {
            missing.push(l);
        }
        first = format!("{first} {}", missing.join(", "));
    }
    // clap's own hint, when it helps (not "use '-- -1'": negative values
    // are refused by range, not taken for options).
    let tip: String = lines
        .filter(|l| {
            (l.starts_with("tip:") && !l.contains("'-- ")) || l.starts_with("[possible values")
        })
        .map(|t| format!("; {t}"))
        .collect();
    // The help that covers it: the subcommand's, when it was one.
    let help = match e
        .context()
        .find_map(|(k, v)| (k == clap::error::ContextKind::Usage).then(|| v.to_string()))
    {
        Some(usage) if usage.contains("kacap lab") => "kacap lab --help",
        Some(usage) if usage.contains("kacap sockets") => "kacap sockets --help",
        _ => "kacap --help",
    };
    let _ = writeln!(err, "kacap: {first}{tip} (see '{help}')");
    2
}
