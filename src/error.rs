//! Errors a user can cause, each one line on stderr with an exit status.
//!
//! Exit statuses: 0 success (also when the reader of our output goes away),
//! 1 an error while writing output (stdout or the `-w` file) or a lab
//! scenario that failed, 2 bad usage, unusable input, a live capture that
//! cannot start, or a network namespace or socket table that cannot be read.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// A capture file that cannot be read or is not a capture.
    Input { file: String, msg: String },
    /// A BPF filter expression libpcap rejects.
    Filter { expr: String, msg: String },
    /// A live capture that cannot start (permissions, unknown interface).
    Live { iface: String, msg: String },
    /// The `-w` file cannot be written.
    Save { file: String, msg: String },
    /// Another output file (`--diagram-svg`) cannot be written.
    Write { file: String, msg: String },
    /// Bad combination of arguments.
    Usage(String),
    /// A `kacap lab` scenario failed while it ran (its sockets, not the user).
    Lab(String),
    /// `--netns`, or the socket table, cannot be read (exit 2).
    Host(String),
    /// Already reported on stderr; only the exit status is left.
    Reported(i32),
    /// Writing our output failed (other than a closed pipe).
    Output(io::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. }
            | Error::Filter { .. }
            | Error::Live { .. }
            | Error::Usage(_)
            | Error::Host(_) => 2,
            Error::Output(_) | Error::Save { .. } | Error::Write { .. } | Error::Lab(_) => 1,
            Error::Reported(code) => *code,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input { file, msg } => write!(f, "{file}: {msg}"),
            Error::Filter { expr, msg } => write!(
                f,
                "bad filter expression '{expr}': {msg} (see 'man pcap-filter')"
            ),
            Error::Live { iface, msg } => write!(f, "cannot capture on {iface}: {msg}"),
            Error::Save { file, msg } => write!(
                f,
                "cannot write capture file {file}: {msg} (check the directory, its permissions and free space)"
            ),
            Error::Write { file, msg } => write!(f, "cannot write {file}: {msg}"),
            Error::Usage(msg) => write!(f, "{msg} (see 'kacap --help')"),
            Error::Lab(msg) => write!(f, "kacap lab: {msg}"),
            Error::Host(msg) => write!(f, "{msg}"),
            Error::Reported(_) => Ok(()),
            Error::Output(e) => write!(f, "cannot write output: {e}"),
        }
    }
}
