use clap::Parser;
use kacap::cli::Args;
use kacap::error::Error;
use kacap::plan::Plan;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse_from(kacap::cli::tcpdump_order(std::env::args_os().collect()));
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
