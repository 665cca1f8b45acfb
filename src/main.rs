use clap::Parser;
use kacap::cli::Args;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse();
    let stdout = io::stdout();
    let out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut stderr = io::stderr();
    match kacap::run::run(&args, out, &mut stderr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !matches!(e, kacap::error::Error::Reported(_)) {
                let _ = writeln!(stderr, "kacap: {e}");
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
