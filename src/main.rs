use clap::{CommandFactory, FromArgMatches};
use kacap::command::cli::Args;
use kacap::command::plan::Plan;
use kacap::error::Error;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

/// What bare `kacap` says.
const USAGE: &str = "\
usage: kacap -r FILE [FILTER...]   analyze a capture (pcap or pcapng; - for stdin)
       kacap -i IFACE [FILTER...]  capture live (needs root or: setcap cap_net_raw,cap_net_admin=eip)
       kacap lab SCENARIO          the keepalive walkthrough, live, in a private network namespace
       kacap --help                every option, with examples";

/// A command-line error as one line (help and version pass through).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .unwrap_or("bad usage")
        .trim_start_matches("error: ");
    // clap's own hint, when it helps (not "use '-- -1'": negative values
    // are refused by range, not taken for options).
    let tip: String = lines
        .filter(|l| {
            (l.starts_with("tip:") && !l.contains("'-- ")) || l.starts_with("[possible values")
        })
        .map(|t| format!("; {t}"))
        .collect();
    eprintln!("kacap: {first}{tip} (see 'kacap --help')");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.len() == 1 {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    // `--version` also says which libpcap.
    let version = format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        kacap::input::open::libpcap_version()
    );
    let argv = kacap::command::argv::tcpdump_order(argv);
    if let Some(msg) = kacap::command::argv::unsupported(&argv) {
        eprintln!("kacap: {msg}");
        return ExitCode::from(2);
    }
    let parsed = Args::command()
        .version(&*Box::leak(version.into_boxed_str()))
        .try_get_matches_from(argv)
        .and_then(|m| Args::from_arg_matches(&m));
    let args = match parsed {
        Ok(args) => args,
        Err(e) => return usage_error(e),
    };
    let mut stderr = io::stderr();
    let result = Plan::from_args(&args).and_then(|plan| {
        let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
        kacap::command::run::run(&plan, out, &mut stderr)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !matches!(e, Error::Reported(_)) {
                let _ = writeln!(stderr, "kacap: {e}");
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
