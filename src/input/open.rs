//! Opening what kacap reads with libpcap: a capture file (pcap, pcapng,
//! compressed; stdin or a FIFO), a live interface, several files merged;
//! and what libpcap's errors mean, in one line each.

use crate::core::decode::LinkType;
use crate::error::Error;
use crate::input::merge::Merge;
use crate::input::source::{Handle, LIVE_TIMEOUT_MS, Source, describe_dlt, pcap_msg};
use crate::input::unpack::{Format, Unpacking};
use pcap::{Capture, Precision};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

unsafe extern "C" {
    /// libpcap: the FILE an offline capture reads from.
    fn pcap_file(p: *mut libc::c_void) -> *mut libc::FILE;
    /// libpcap: "libpcap version 1.10.3 (with TPACKET_V3)".
    fn pcap_lib_version() -> *const libc::c_char;
    /// libpcap: a capture's snapshot length.
    fn pcap_snapshot(p: *mut libc::c_void) -> libc::c_int;
}

/// The libpcap kacap runs with, as libpcap names itself.
pub fn libpcap_version() -> String {
    // SAFETY: pcap_lib_version returns a static NUL-terminated string.
    unsafe {
        let p = pcap_lib_version();
        if p.is_null() {
            return "libpcap (version unknown)".into();
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Snapshot length for live captures: every header, and then some.
pub const LIVE_SNAPLEN: i32 = 262_144;

/// How a live capture is opened (`-s`, `-B`, `-Q`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveOptions {
    /// Bytes kept of each packet (0 or none: [`LIVE_SNAPLEN`]).
    pub snaplen: Option<u32>,
    /// The kernel buffer in KiB (none: libpcap's default).
    pub buffer_kib: Option<u32>,
    pub direction: Option<pcap::Direction>,
}

impl LiveOptions {
    fn snaplen(&self) -> i32 {
        match self.snaplen {
            Some(n) if n > 0 => n.min(LIVE_SNAPLEN as u32) as i32,
            _ => LIVE_SNAPLEN,
        }
    }
}
/// The kernel buffer of a live capture without `-B` (libpcap's default is
/// 2 MiB): room for a burst while the analysis catches up. (Packets come in
/// TPACKET_V3 blocks, handed over at least every LIVE_TIMEOUT_MS, packed
/// by size: immediate mode, which kacap used before, gives every packet a
/// slot the size of the MTU — ~30 slots of 2 MiB on `lo` — and dropped
/// 212 k of a 200 k-packet burst that tcpdump kept whole.)
pub const LIVE_BUFFER_KIB: u32 = 16 * 1024;

/// Whether libpcap accepts `expr` as a filter (for Ethernet frames).
pub fn filter_compiles(expr: &str) -> bool {
    Capture::dead(pcap::Linktype::ETHERNET).is_ok_and(|c| c.compile(expr, true).is_ok())
}

/// Compiles and installs a BPF filter (tcpdump's trailing words).
fn apply_filter<T: pcap::Activated + ?Sized>(
    cap: &mut Capture<T>,
    filter: Option<&str>,
) -> Result<(), Error> {
    match filter {
        Some(expr) => cap.filter(expr, true).map_err(|e| Error::Filter {
            expr: expr.to_string(),
            msg: pcap_msg(&e),
        }),
        None => Ok(()),
    }
}

fn supported(dlt: i32, input: impl Fn(String) -> Error) -> Result<LinkType, Error> {
    LinkType::from_dlt(dlt).ok_or_else(|| {
        input(format!(
            "link type {} is not supported; kacap reads Ethernet, Linux cooked (SLL, SLL2), NULL/LOOP and raw IP captures",
            describe_dlt(dlt)
        ))
    })
}

impl Source {
    /// A source over `handle`, nothing read yet (the fields the kinds of
    /// source share; each constructor sets what differs).
    fn base(handle: Handle, link: LinkType, dlt: i32, name: String) -> Source {
        Source {
            handle,
            link,
            dlt,
            name,
            nano: true,
            limit: None,
            captured: 0,
            file: None,
            snaplen: LIVE_SNAPLEN,
            stream: false,
            unpacking: None,
            fast: None,
            fast_dropped: None,
            ended: false,
        }
    }

    /// Opens `path` (`-` for stdin) and applies `filter` (BPF syntax).
    pub fn file(path: &Path, filter: Option<&str>) -> Result<Source, Error> {
        let name = if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        let input = |msg: String| Error::Input {
            file: name.clone(),
            msg,
        };
        let not_capture = |e: pcap::Error| {
            let msg = pcap_msg(&e);
            input(if msg.contains("unknown file format") {
                "not a readable pcap or pcapng capture: it starts with no pcap, pcapng, gzip, \
                 zstd, xz or bzip2 magic number"
                    .to_string()
            } else {
                format!("not a readable pcap or pcapng capture ({msg})")
            })
        };
        let mut size = 0;
        let mut stream = path == Path::new("-");
        let mut unpacking = None;
        let mut cap = if stream {
            // libpcap reads stdin itself for "-".
            Capture::from_file_with_precision("-", Precision::Nano).map_err(not_capture)?
        } else {
            // Opened here first, for clear messages and the size.
            let file = File::open(path).map_err(|e| input(open_error(&e)))?;
            let meta = file.metadata().map_err(|e| input(open_error(&e)))?;
            let kind = meta.file_type();
            stream = kind.is_fifo() || kind.is_char_device() || kind.is_socket();
            if meta.is_dir() {
                return Err(input("is a directory, not a capture file".into()));
            }
            if !stream && meta.len() == 0 {
                return Err(input("empty file, not a pcap or pcapng capture".into()));
            }
            let mut head = [0u8; 6];
            let format = if stream {
                None
            } else {
                let n = file
                    .read_at(&mut head, 0)
                    .map_err(|e| input(open_error(&e)))?;
                Format::sniff(&head[..n])
            };
            if stream || format.is_some() {
                let fd = match format {
                    Some(format) => {
                        let (fd, u) = Unpacking::start(file, format)
                            .map_err(|e| input(format!("cannot decompress: {e}")))?;
                        unpacking = Some(u);
                        fd.into_raw_fd()
                    }
                    None => file.into_raw_fd(),
                };
                let inside = |e: pcap::Error| match format {
                    Some(f) => input(format!(
                        "{}-compressed, but what it holds is not a pcap or pcapng capture ({})",
                        f.name(),
                        pcap_msg(&e)
                    )),
                    None => not_capture(e),
                };
                // SAFETY: a descriptor we own; libpcap takes it over.
                unsafe { Capture::from_raw_fd_with_precision(fd, Precision::Nano) }
                    .map_err(inside)?
            } else {
                size = meta.len();
                // libpcap opens it again by a name that is always UTF-8 (and
                // closes it itself when the file is not a capture); only where
                // /proc is missing and the name is not UTF-8 does it get our
                // descriptor, which it then keeps on failure.
                let by_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
                if Path::new(&by_fd).exists() {
                    Capture::from_file_with_precision(&by_fd, Precision::Nano)
                        .map_err(not_capture)?
                } else if path.to_str().is_some() {
                    Capture::from_file_with_precision(path, Precision::Nano).map_err(not_capture)?
                } else {
                    // SAFETY: an open descriptor we own; libpcap takes it over.
                    unsafe {
                        Capture::from_raw_fd_with_precision(file.into_raw_fd(), Precision::Nano)
                    }
                    .map_err(not_capture)?
                }
            }
        };
        // The descriptor libpcap reads, for the progress bar.
        // SAFETY: pcap_file returns the FILE of an offline capture (or null).
        let fd = unsafe {
            let f = pcap_file(cap.as_ptr().cast());
            if f.is_null() { -1 } else { libc::fileno(f) }
        };
        let dlt = cap.get_datalink().0;
        let link = supported(dlt, input)?;
        apply_filter(&mut cap, filter)?;
        // A regular uncompressed file: the fast path, when its header is
        // classic pcap (libpcap has checked it, the link type and the filter).
        let fast = if stream || unpacking.is_some() || size == 0 {
            None
        } else {
            let program = match filter {
                Some(expr) => cap.compile(expr, true).ok(),
                None => None,
            };
            if filter.is_some() && program.is_none() {
                None
            } else {
                File::open(path)
                    .ok()
                    .and_then(|f| crate::input::fastread::FastFile::open(f, program))
            }
        };
        // SAFETY: the handle is open; pcap_snapshot only reads it.
        let snaplen = unsafe { pcap_snapshot(cap.as_ptr().cast()) };
        Ok(Source {
            file: (fd >= 0).then_some((fd, size)),
            snaplen,
            stream,
            unpacking,
            fast,
            fast_dropped: None,
            ..Source::base(Handle::File(cap), link, dlt, name)
        })
    }

    /// Opens interface `iface` for live capture: packets handed over in
    /// blocks within LIVE_TIMEOUT_MS (as tcpdump, not immediate mode).
    pub fn live(iface: &str, filter: Option<&str>, opts: &LiveOptions) -> Result<Source, Error> {
        let live = |msg: String| Error::Live {
            iface: iface.to_string(),
            msg,
        };
        let inactive = Capture::from_device(iface).map_err(|e| live(pcap_msg(&e)))?;
        let mut inactive = inactive
            .immediate_mode(false)
            .snaplen(opts.snaplen())
            .timeout(LIVE_TIMEOUT_MS)
            .promisc(false);
        let kib = opts.buffer_kib.unwrap_or(LIVE_BUFFER_KIB);
        inactive = inactive.buffer_size(kib.saturating_mul(1024).min(i32::MAX as u32) as i32);
        let mut cap = inactive
            .open()
            .map_err(|e| classify_open_error(iface, &pcap_msg(&e)))?;
        if let Some(d) = opts.direction {
            cap.direction(d).map_err(|e| live(pcap_msg(&e)))?;
        }
        // Like tcpdump, prefer Linux cooked v2 where offered (`-i any`): it
        // names the interface and direction of each packet.
        if cap.get_datalink().0 == 113
            && cap
                .list_datalinks()
                .is_ok_and(|l| l.contains(&pcap::Linktype(276)))
        {
            let _ = cap.set_datalink(pcap::Linktype(276));
        }
        let dlt = cap.get_datalink().0;
        let link = supported(dlt, live)?;
        apply_filter(&mut cap, filter)?;
        // Immediate mode ignores the read timeout: read without blocking and
        // wait in poll(2), which a signal interrupts.
        let cap = cap.setnonblock().map_err(|e| live(pcap_msg(&e)))?;
        Ok(Source {
            nano: false,
            snaplen: opts.snaplen(),
            ..Source::base(Handle::Live(cap), link, dlt, iface.to_string())
        })
    }

    /// `--merge`: `paths` read as one capture, packets in time order.
    pub fn merged(paths: &[std::path::PathBuf], filter: Option<&str>) -> Result<Source, Error> {
        let limit = open_files_for(paths.len());
        let mut sources = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            let mut s = Source::file(p, filter).map_err(|e| match (&e, limit) {
                (Error::Input { msg, .. }, Some(limit))
                    if msg.to_lowercase().contains("too many open files") =>
                {
                    Error::Usage(format!(
                        "--merge: out of open files at file {} of {} (limit {limit}, \
                         `ulimit -n`; compressed pieces hold two each): merge them in batches, \
                         or raise the limit",
                        i + 1,
                        paths.len()
                    ))
                }
                _ => e,
            })?;
            // Read on the fast path, a piece holds no descriptor between
            // its chunks: a thousand pieces fit the default limit.
            if let Some(fast) = s.fast.as_mut() {
                fast.park(p);
                s.handle = Handle::Parked {
                    path: p.clone(),
                    filter: filter.map(str::to_string),
                };
                s.file = None;
            }
            sources.push(s);
        }
        let first = &sources[0];
        for s in &sources {
            let msg = if s.stream {
                "--merge reads files, not pipes or FIFOs".to_string()
            } else if s.dlt != first.dlt {
                format!(
                    "link type {} differs from {}'s ({}): --merge reads captures of one link type",
                    describe_dlt(s.dlt),
                    first.name,
                    describe_dlt(first.dlt)
                )
            } else {
                continue;
            };
            return Err(Error::Input {
                file: s.name.clone(),
                msg,
            });
        }
        let (link, dlt, snaplen) = (first.link, first.dlt, first.snaplen);
        let name = format!("{} (and {} more, merged)", first.name, sources.len() - 1);
        let parts = sources
            .into_iter()
            .map(|s| {
                let name = s.name.clone();
                (s, name)
            })
            .collect();
        Ok(Source {
            snaplen,
            ..Source::base(Handle::Merge(Box::new(Merge::new(parts))), link, dlt, name)
        })
    }
}

/// Turns libpcap's open error into one message with the fix.
fn classify_open_error(iface: &str, msg: &str) -> Error {
    let lower = msg.to_lowercase();
    let msg = if lower.contains("permission") || lower.contains("not permitted") {
        format!(
            "{msg}: capturing needs privileges; run with sudo, or once: sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v kacap)\""
        )
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        format!("{msg}: no interface named '{iface}'; 'kacap -D' lists them")
    } else {
        msg.to_string()
    };
    Error::Live {
        iface: iface.to_string(),
        msg,
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

/// `kacap -D`: the interfaces libpcap can capture on, as `tcpdump -D` lists them.
pub fn list_interfaces(out: &mut impl io::Write) -> Result<(), Error> {
    let devices = pcap::Device::list().map_err(|e| Error::Live {
        iface: "any".to_string(),
        msg: pcap_msg(&e),
    })?;
    for (i, d) in devices.iter().enumerate() {
        use pcap::{ConnectionStatus, IfFlags};
        let mut flags = Vec::new();
        let f = &d.flags;
        if f.if_flags.contains(IfFlags::UP) {
            flags.push("Up");
        }
        if f.if_flags.contains(IfFlags::RUNNING) {
            flags.push("Running");
        }
        if f.if_flags.contains(IfFlags::WIRELESS) {
            flags.push("Wireless");
        }
        if f.if_flags.contains(IfFlags::LOOPBACK) {
            flags.push("Loopback");
        }
        match f.connection_status {
            ConnectionStatus::Connected => flags.push("Connected"),
            ConnectionStatus::Disconnected => flags.push("Disconnected"),
            _ => {}
        }
        let desc = d
            .desc
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let flags = if flags.is_empty() {
            "none".to_string()
        } else {
            flags.join(", ")
        };
        writeln!(out, "{}.{}{desc} [{flags}]", i + 1, d.name).map_err(Error::Output)?;
    }
    Ok(())
}

/// Descriptors a merged file may hold open (libpcap's and the fast
/// reader's) while it is opened; a parked piece then holds none.
const FDS_PER_MERGED_FILE: u64 = 2;

/// Makes room for `files` merged files: the soft limit on open files is
/// raised towards the hard one as far as they could need (mergecap does the
/// same). Pieces read on the fast path hold no descriptor once opened, so
/// the limit matters only for those that cannot be (compressed ones); the
/// limit is returned for the message if one runs out.
fn open_files_for(files: usize) -> Option<u64> {
    let need = files as u64 * FDS_PER_MERGED_FILE + 64;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < need {
        let soft = lim.rlim_cur;
        lim.rlim_cur = need.min(lim.rlim_max);
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            lim.rlim_cur = soft;
        }
    }
    Some(lim.rlim_cur)
}
