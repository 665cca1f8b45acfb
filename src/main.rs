use kacap::command::entry::run_argv;
use kacap::command::plan::Terminal;
use std::io::{self, BufWriter};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    ExitCode::from(run_argv(
        argv,
        &Terminal::of_stdout(),
        out,
        &mut io::stderr(),
    ))
}
