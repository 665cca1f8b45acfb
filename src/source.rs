//! Source: libpcap reading pcap and pcapng files (or stdin), with an
//! optional BPF filter, handing out borrowed frames.

use crate::analyzer::Frame;
use crate::decode::LinkType;
use crate::error::Error;
use crate::time::Timestamp;
use pcap::{Capture, Offline, Precision};
use std::fs::File;
use std::io;
use std::os::fd::IntoRawFd;
use std::path::Path;

/// How reading a capture ended, when it did not simply reach the end.
pub enum ReadEnd {
    /// The sink failed (e.g. a closed pipe).
    Output(io::Error),
    /// The file ends in the middle of a packet (tcpdump killed hard, a copy
    /// in progress); everything before it was analyzed.
    Truncated(String),
}

/// An opened capture file.
pub struct FileSource {
    cap: Capture<Offline>,
    pub link: LinkType,
    pub dlt: i32,
    /// The name to use in messages (`-` is `stdin`).
    pub name: String,
}

/// Describes a data link type for messages: `105 (IEEE802_11)`.
pub fn describe_dlt(dlt: i32) -> String {
    match pcap::Linktype(dlt).get_name() {
        Ok(name) => format!("{dlt} ({name})"),
        Err(_) => dlt.to_string(),
    }
}

impl FileSource {
    /// Opens `path` (`-` for stdin) and applies `filter` (BPF syntax).
    pub fn open(path: &Path, filter: Option<&str>) -> Result<FileSource, Error> {
        let name = if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        let input = |msg: String| Error::Input {
            file: name.clone(),
            msg,
        };
        let fd = if path == Path::new("-") {
            // SAFETY: dup of our own stdin; the capture owns the copy.
            let fd = unsafe { libc::dup(0) };
            if fd < 0 {
                return Err(input(format!(
                    "cannot read stdin: {}",
                    io::Error::last_os_error()
                )));
            }
            fd
        } else {
            let file = File::open(path).map_err(|e| input(open_error(&e)))?;
            let meta = file.metadata().map_err(|e| input(open_error(&e)))?;
            if meta.is_dir() {
                return Err(input("is a directory, not a capture file".into()));
            }
            if meta.len() == 0 {
                return Err(input("empty file, not a pcap or pcapng capture".into()));
            }
            file.into_raw_fd()
        };
        // SAFETY: `fd` is an open descriptor we own; libpcap takes it over.
        let cap =
            unsafe { Capture::from_raw_fd_with_precision(fd, Precision::Nano) }.map_err(|e| {
                input(format!(
                    "not a readable pcap or pcapng capture ({})",
                    pcap_msg(&e)
                ))
            })?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_dlt(dlt).ok_or_else(|| {
            input(format!(
                "link type {} is not supported; kacap reads Ethernet, Linux cooked (SLL, SLL2), NULL/LOOP and raw IP captures",
                describe_dlt(dlt)
            ))
        })?;
        let mut src = FileSource {
            cap,
            link,
            dlt,
            name,
        };
        if let Some(expr) = filter {
            src.cap.filter(expr, true).map_err(|e| Error::Filter {
                expr: expr.to_string(),
                msg: pcap_msg(&e),
            })?;
        }
        Ok(src)
    }

    /// Feeds every frame to `each`, numbering them from 1.
    pub fn run(&mut self, mut each: impl FnMut(&Frame) -> io::Result<()>) -> Result<(), ReadEnd> {
        let mut n = 0u64;
        loop {
            match self.cap.next_packet() {
                Ok(p) => {
                    n += 1;
                    // time_t is 32 bits on some targets.
                    #[allow(clippy::useless_conversion)]
                    let sec = i64::from(p.header.ts.tv_sec);
                    let frame = Frame {
                        n,
                        ts: Timestamp::new(sec, p.header.ts.tv_usec.clamp(0, 999_999_999) as u32),
                        len: p.header.len,
                        data: p.data,
                    };
                    each(&frame).map_err(ReadEnd::Output)?;
                }
                Err(pcap::Error::NoMorePackets) => return Ok(()),
                Err(e) => return Err(ReadEnd::Truncated(pcap_msg(&e))),
            }
        }
    }
}

fn open_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file (check the path)".to_string(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (try sudo, or check the file mode)".to_string()
        }
        _ => format!("cannot open: {e}"),
    }
}

/// libpcap's message without the wrapper.
pub fn pcap_msg(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}
