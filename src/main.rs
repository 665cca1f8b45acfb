use clap::{CommandFactory, FromArgMatches};
use kacap::cli::Args;
use kacap::error::Error;
use kacap::plan::Plan;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

/// What bare `kacap` says.
const USAGE: &str = "\
usage: kacap -r FILE [FILTER...]   analyze a capture (pcap or pcapng; - for stdin)
       kacap -i IFACE [FILTER...]  capture live (needs root or: setcap cap_net_raw,cap_net_admin=eip)
       kacap lab SCENARIO          the keepalive walkthrough, live, in a private network namespace
       kacap --help                every option, with examples";

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
        kacap::source::libpcap_version()
    );
    let argv = kacap::cli::tcpdump_order(argv);
    if let Some(msg) = kacap::cli::unsupported(&argv) {
        eprintln!("kacap: {msg}");
        return ExitCode::from(2);
    }
    let matches = Args::command()
        .version(&*Box::leak(version.into_boxed_str()))
        .get_matches_from(argv);
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let mut stderr = io::stderr();
    let result = Plan::from_args(&args).and_then(|plan| {
        let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
        kacap::run::run(&plan, out, &mut stderr)
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
