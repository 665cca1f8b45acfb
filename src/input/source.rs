//! Source: libpcap, reading pcap / pcapng files (or stdin) or capturing live,
//! with an optional BPF filter and an optional `-w` copy of every packet,
//! handing out borrowed frames.

use crate::core::decode::LinkType;
use crate::core::time::Timestamp;
use crate::error::Error;
use crate::input::merge::{self, Merge};
use crate::input::unpack::{Format, Unpacking};
use crate::pipeline::event::{CaptureStats, Frame, FrameSource, Next, ReadEnd};
use pcap::{Active, Capture, Offline, Precision, Savefile};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;
use std::sync::atomic::Ordering;

unsafe extern "C" {
    /// libpcap: the FILE an offline capture reads from.
    fn pcap_file(p: *mut libc::c_void) -> *mut libc::FILE;
    /// libpcap: "libpcap version 1.10.3 (with TPACKET_V3)".
    fn pcap_lib_version() -> *const libc::c_char;
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

/// How often a live capture's `-w` file is flushed (and at the end): the
/// file stays usable while the capture runs, without a write per packet.
const SAVE_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often a live capture wakes up without packets (ticks, Ctrl-C).
const LIVE_TIMEOUT_MS: i32 = 100;

enum Handle {
    File(Capture<Offline>),
    Live(Capture<Active>),
    /// `--merge`: files read as one capture.
    Merge(Box<Merge<Source>>),
}

/// An opened capture: a file or an interface.
pub struct Source {
    handle: Handle,
    pub link: LinkType,
    pub dlt: i32,
    /// The name to use in messages (`stdin` for `-`, the interface name).
    pub name: String,
    /// Timestamps come in nanoseconds (files) or microseconds (live).
    nano: bool,
    save: Option<(Savefile, String)>,
    /// The `-w` path, to reopen on SIGHUP.
    save_path: Option<std::path::PathBuf>,
    /// Stop after this many frames (`-c`).
    pub limit: Option<u64>,
    pub captured: u64,
    /// A file's descriptor (owned by libpcap) and size, for progress.
    file: Option<(std::os::fd::RawFd, u64)>,
    /// A progress bar on stderr for big files (see `run::capture`).
    pub progress: Option<indicatif::ProgressBar>,
    /// The live snapshot length (the banner says it).
    snaplen: i32,
    /// Read as it comes, not as a file: stdin, a FIFO, process
    /// substitution (`-r <(zcat f.pcap.gz)`), a character device.
    pub stream: bool,
    /// A compressed file being decompressed into libpcap.
    unpacking: Option<Unpacking>,
    /// Read to its end (or to `-c`).
    pub ended: bool,
    /// When the `-w` file of a live capture was last flushed.
    flushed: Option<std::time::Instant>,
    /// A classic pcap file read on the fast path (`fastread`); libpcap's
    /// handle stays open beside it, at the start, to take over.
    fast: Option<crate::input::fastread::FastFile>,
}

/// Describes a data link type for messages: `1 (EN10MB)`.
pub fn describe_dlt(dlt: i32) -> String {
    match pcap::Linktype(dlt).get_name() {
        Ok(name) => format!("{dlt} ({name})"),
        Err(_) => dlt.to_string(),
    }
}

/// tcpdump's banner form: `EN10MB (Ethernet)`.
pub fn banner_dlt(dlt: i32) -> String {
    let l = pcap::Linktype(dlt);
    match (l.get_name(), l.get_description()) {
        (Ok(n), Ok(d)) => format!("{n} ({d})"),
        (Ok(n), Err(_)) => n,
        _ => dlt.to_string(),
    }
}

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
            save: None,
            save_path: None,
            limit: None,
            captured: 0,
            file: None,
            progress: None,
            snaplen: LIVE_SNAPLEN,
            stream: false,
            unpacking: None,
            fast: None,
            ended: false,
            flushed: None,
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
        Ok(Source {
            file: (fd >= 0).then_some((fd, size)),
            stream,
            unpacking,
            fast,
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
        let sources = paths
            .iter()
            .map(|p| Source::file(p, filter))
            .collect::<Result<Vec<_>, _>>()?;
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
        let (link, dlt) = (first.link, first.dlt);
        let name = format!("{} (and {} more, merged)", first.name, sources.len() - 1);
        let parts = sources
            .into_iter()
            .map(|s| {
                let name = s.name.clone();
                (s, name)
            })
            .collect();
        Ok(Source::base(
            Handle::Merge(Box::new(Merge::new(parts))),
            link,
            dlt,
            name,
        ))
    }

    /// Size of the input file in bytes (0 for stdin and live captures).
    pub fn size(&self) -> u64 {
        self.file.map_or(0, |(_, size)| size)
    }

    /// How far into the file libpcap has read, in bytes (files only).
    pub fn position(&self) -> Option<u64> {
        if let Some(fast) = &self.fast {
            return Some(fast.position());
        }
        let (fd, _) = self.file?;
        // SAFETY: lseek(SEEK_CUR, 0) only reads the offset of an open fd.
        let at = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
        (at >= 0).then_some(at as u64)
    }

    /// Moves the progress bar to libpcap's position in the file.
    fn show_progress(
        progress: &Option<indicatif::ProgressBar>,
        file: Option<(std::os::fd::RawFd, u64)>,
    ) {
        if let (Some(bar), Some((fd, _))) = (progress, file) {
            // SAFETY: `fd` stays open while libpcap owns it; lseek only reads
            // the offset (SEEK_CUR, 0).
            let at = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
            if at >= 0 {
                bar.set_position(at as u64);
            }
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.handle, Handle::Live(_))
    }

    /// tcpdump's banner: `listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes`.
    pub fn banner(&self) -> String {
        format!(
            "listening on {}, link-type {}, snapshot length {} bytes",
            self.name,
            banner_dlt(self.dlt),
            self.snaplen
        )
    }

    /// Also writes every packet read to `path` as a pcap file (`-w`).
    pub fn save_to(&mut self, path: &Path) -> Result<(), Error> {
        let shown = path.display().to_string();
        let fail = |msg: String| Error::Save {
            file: shown.clone(),
            msg,
        };
        let file = File::create(path).map_err(|e| fail(e.to_string()))?;
        let fd = file.into_raw_fd();
        // SAFETY: `fd` is an open descriptor we own; libpcap takes it over.
        let saved = unsafe {
            match &self.handle {
                Handle::File(c) => c.savefile_raw_fd(fd),
                Handle::Live(c) => c.savefile_raw_fd(fd),
                Handle::Merge(_) => {
                    Capture::dead_with_precision(pcap::Linktype(self.dlt), Precision::Nano)
                        .map_err(|e| fail(pcap_msg(&e)))?
                        .savefile_raw_fd(fd)
                }
            }
        }
        .map_err(|e| fail(pcap_msg(&e)))?;
        self.save = Some((saved, shown));
        self.save_path = Some(path.to_path_buf());
        Ok(())
    }

    /// SIGHUP on a live capture: `-w` starts a new file at its path (the
    /// old one, moved away by logrotate, is flushed and closed). When the
    /// new file cannot be made, the old one goes on, with one line why.
    fn reopen_save(&mut self) {
        let (Some(path), Handle::Live(c)) = (&self.save_path, &self.handle) else {
            return;
        };
        let made = File::create(path)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                let fd = file.into_raw_fd();
                // SAFETY: `fd` is an open descriptor we own; libpcap takes it over.
                unsafe { c.savefile_raw_fd(fd) }.map_err(|e| pcap_msg(&e))
            });
        match made {
            Ok(new) => {
                if let Some((mut old, _)) = self.save.take() {
                    let _ = old.flush();
                }
                self.save = Some((new, path.display().to_string()));
            }
            Err(e) => eprintln!(
                "kacap: SIGHUP: cannot reopen -w {}: {e}; still writing to the file it had open",
                path.display()
            ),
        }
    }

    /// Ends reading: clears the progress bar, flushes and closes the `-w` file.
    pub fn close(&mut self) -> Result<(), ReadEnd> {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        if let Some((mut save, name)) = self.save.take() {
            save.flush()
                .map_err(|e| ReadEnd::Save(format!("{name}: {e}")))?;
        }
        Ok(())
    }

    /// libpcap takes over from the fast path: it skips the frames already
    /// read (its filter is the same) and goes on from there.
    fn leave_fast_path(&mut self) -> Result<(), ReadEnd> {
        self.fast = None;
        let Handle::File(c) = &mut self.handle else {
            return Ok(());
        };
        for _ in 0..self.captured {
            if let Err(e) = c.next_packet() {
                return Err(ReadEnd::Truncated(pcap_msg(&e)));
            }
        }
        Ok(())
    }

    /// Waits up to the live timeout for packets; returns poll's result
    /// (0 on timeout, -1 when a signal interrupted it).
    fn wait_readable(fd: Option<std::os::fd::RawFd>) -> i32 {
        let Some(fd) = fd else {
            return 0;
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, LIVE_TIMEOUT_MS) }
    }
}

impl FrameSource for Source {
    fn link(&self) -> LinkType {
        self.link
    }

    /// The next frame, numbered from 1, until the end of the file or `-c`;
    /// a live capture without a packet waits up to 100 ms in poll(2) and
    /// reports the wall clock when nothing came.
    fn current_chunk(&self) -> Option<&std::sync::Arc<Vec<u8>>> {
        self.fast.as_ref().map(|f| f.chunk())
    }

    fn next_frame(&mut self) -> Result<Next<'_>, ReadEnd> {
        if self.limit.is_some_and(|l| self.captured >= l) {
            self.ended = true;
            return Ok(Next::End);
        }
        if let Some(fast) = self.fast.as_mut() {
            let position = fast.position();
            match fast.next_record() {
                Ok(Some(rec)) => {
                    self.captured += 1;
                    if self.captured.is_multiple_of(65_536)
                        && let Some(bar) = &self.progress
                    {
                        bar.set_position(position);
                    }
                    let Some(fast) = self.fast.as_ref() else {
                        return Ok(Next::End);
                    };
                    let data = fast.bytes(rec.at);
                    if let Some((save, _)) = &mut self.save {
                        save.write(&pcap::Packet::new(&rec.header, data));
                    }
                    #[allow(clippy::useless_conversion)]
                    let sec = i64::from(rec.header.ts.tv_sec);
                    let sub = rec.header.ts.tv_usec.max(0) as u32;
                    let nsec = if fast.nano() {
                        sub
                    } else {
                        sub.saturating_mul(1000)
                    };
                    return Ok(Next::Frame(Frame {
                        n: self.captured,
                        ts: Timestamp::new(sec, nsec.min(999_999_999)),
                        len: rec.header.len,
                        data,
                    }));
                }
                Ok(None) => {
                    self.ended = true;
                    return Ok(Next::End);
                }
                Err(crate::input::fastread::Unclean) => self.leave_fast_path()?,
            }
        }
        let live = self.is_live();
        if live && crate::host::signal::REOPEN.swap(false, Ordering::Relaxed) {
            self.reopen_save();
        }
        let live_fd = match &self.handle {
            Handle::Live(c) => Some(c.as_raw_fd()),
            Handle::File(_) | Handle::Merge(_) => None,
        };
        let next = match &mut self.handle {
            Handle::File(c) => c.next_packet(),
            Handle::Live(c) => c.next_packet(),
            Handle::Merge(m) => {
                return match m.next_head()? {
                    Some(next) => {
                        self.captured += 1;
                        if let Some((save, _)) = &mut self.save {
                            let header = pcap::PacketHeader {
                                ts: libc::timeval {
                                    tv_sec: next.0.sec as libc::time_t,
                                    tv_usec: next.0.nsec as libc::suseconds_t,
                                },
                                caplen: next.2.len() as u32,
                                len: next.1,
                            };
                            save.write(&pcap::Packet::new(&header, next.2));
                        }
                        Ok(Next::Frame(merge::frame(self.captured, next)))
                    }
                    None => {
                        self.ended = true;
                        Ok(Next::End)
                    }
                };
            }
        };
        match next {
            Ok(p) => {
                self.captured += 1;
                if self.captured.is_multiple_of(65_536) {
                    Self::show_progress(&self.progress, self.file);
                }
                if let Some((save, name)) = &mut self.save {
                    save.write(&p);
                    if live && self.flushed.is_none_or(|t| t.elapsed() >= SAVE_FLUSH_EVERY) {
                        self.flushed = Some(std::time::Instant::now());
                        if let Err(e) = save.flush() {
                            return Err(ReadEnd::Save(format!("{name}: {e}")));
                        }
                    }
                }
                // time_t is 32 bits on some targets.
                #[allow(clippy::useless_conversion)]
                let sec = i64::from(p.header.ts.tv_sec);
                let sub = p.header.ts.tv_usec.max(0) as u32;
                let nsec = if self.nano {
                    sub
                } else {
                    sub.saturating_mul(1000)
                };
                Ok(Next::Frame(Frame {
                    n: self.captured,
                    ts: Timestamp::new(sec, nsec.min(999_999_999)),
                    len: p.header.len,
                    data: p.data,
                }))
            }
            Err(pcap::Error::NoMorePackets) => {
                self.ended = true;
                match self.unpacking.as_ref().and_then(Unpacking::failure) {
                    Some(msg) => Err(ReadEnd::Truncated(msg)),
                    None => Ok(Next::End),
                }
            }
            // Nothing to read (live, non-blocking): wait for more.
            Err(pcap::Error::TimeoutExpired) => {
                // A quiet moment: what the -w file holds reaches the disk.
                if let Some((save, name)) = &mut self.save
                    && self
                        .flushed
                        .is_some_and(|t| t.elapsed() >= SAVE_FLUSH_EVERY)
                {
                    self.flushed = Some(std::time::Instant::now());
                    if let Err(e) = save.flush() {
                        return Err(ReadEnd::Save(format!("{name}: {e}")));
                    }
                }
                Ok(Next::Idle(
                    (Self::wait_readable(live_fd) == 0).then(Timestamp::now),
                ))
            }
            Err(e) if live => {
                // A signal may interrupt the read; anything else ends it.
                if crate::host::signal::STOP.load(Ordering::Relaxed) {
                    return Ok(Next::End);
                }
                Err(ReadEnd::Capture(pcap_msg(&e)))
            }
            Err(e) => Err(ReadEnd::Truncated(
                self.unpacking
                    .as_ref()
                    .and_then(Unpacking::failure)
                    .unwrap_or_else(|| pcap_msg(&e)),
            )),
        }
    }

    fn stats(&mut self) -> Option<CaptureStats> {
        let captured = self.captured;
        match &mut self.handle {
            Handle::Live(c) => c.stats().ok().map(|s| CaptureStats {
                captured,
                received: s.received,
                dropped: s.dropped,
            }),
            Handle::File(_) | Handle::Merge(_) => None,
        }
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

/// libpcap's message without the wrapper.
pub fn pcap_msg(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
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

/// How long the analyzer waits for a frame from a pipe before it ticks.
const PIPE_TICK: std::time::Duration = std::time::Duration::from_millis(100);
/// Frames read ahead of the analyzer from a pipe.
const PIPE_AHEAD: usize = 1024;

enum PipeMsg {
    Frame {
        n: u64,
        ts: Timestamp,
        len: u32,
        data: Vec<u8>,
    },
    /// Reading ended: how, and the source back (for `-w` and messages).
    End(Result<(), ReadEnd>, Box<Source>),
}

/// `-r -`: a pipe, read by libpcap in a thread of its own, so that the
/// analyzer keeps a clock while the pipe is quiet (`tcpdump -U -w - |
/// kacap -r -` on an idle connection): nothing is held back longer than a
/// second. The clock is the last frame's capture time plus the wall time
/// since it arrived. Buffers go back to the reader: no allocation per frame
/// once the pipeline is full.
pub struct PipeSource {
    link: LinkType,
    frames: std::sync::mpsc::Receiver<PipeMsg>,
    spare: std::sync::mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    last: Option<(Timestamp, std::time::Instant)>,
    ended: Option<(Result<(), ReadEnd>, Box<Source>)>,
}

impl PipeSource {
    /// Starts reading `src` (stdin) in a thread.
    pub fn start(mut src: Source) -> PipeSource {
        let link = src.link;
        let (tx, frames) = std::sync::mpsc::sync_channel(PIPE_AHEAD);
        let (spare, spares) = std::sync::mpsc::sync_channel::<Vec<u8>>(PIPE_AHEAD + 2);
        std::thread::spawn(move || {
            let result = loop {
                let msg = match src.next_frame() {
                    Ok(Next::Frame(f)) => {
                        let mut data = spares.try_recv().unwrap_or_default();
                        data.clear();
                        data.extend_from_slice(f.data);
                        PipeMsg::Frame {
                            n: f.n,
                            ts: f.ts,
                            len: f.len,
                            data,
                        }
                    }
                    Ok(Next::Idle(_)) => continue,
                    Ok(Next::End) => break Ok(()),
                    Err(e) => break Err(e),
                };
                if tx.send(msg).is_err() {
                    // The analyzer stopped reading.
                    break Ok(());
                }
            };
            let _ = tx.send(PipeMsg::End(result, Box::new(src)));
        });
        PipeSource {
            link,
            frames,
            spare,
            current: Vec::new(),
            last: None,
            ended: None,
        }
    }

    /// After the analysis: how reading ended and the source, when the
    /// reader got to its end (not when the analysis stopped first: a
    /// reader blocked on a quiet pipe is left behind).
    pub fn finish(mut self) -> Option<(Result<(), ReadEnd>, Box<Source>)> {
        if self.ended.is_none()
            && let Ok(PipeMsg::End(r, src)) = self.frames.try_recv()
        {
            self.ended = Some((r, src));
        }
        self.ended
    }
}

impl FrameSource for PipeSource {
    fn link(&self) -> LinkType {
        self.link
    }

    fn next_frame(&mut self) -> Result<Next<'_>, ReadEnd> {
        if self.ended.is_some() {
            return Ok(Next::End);
        }
        match self.frames.recv_timeout(PIPE_TICK) {
            Ok(PipeMsg::Frame { n, ts, len, data }) => {
                let old = std::mem::replace(&mut self.current, data);
                let _ = self.spare.try_send(old);
                self.last = Some((ts, std::time::Instant::now()));
                Ok(Next::Frame(Frame {
                    n,
                    ts,
                    len,
                    data: &self.current,
                }))
            }
            Ok(PipeMsg::End(r, src)) => {
                self.ended = Some((r, src));
                Ok(Next::End)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(Next::Idle(
                self.last
                    .map(|(ts, at)| ts.plus(at.elapsed().as_secs_f64())),
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Ok(Next::End),
        }
    }
}

/// A file, or files merged, read again from the start with the same
/// filter and `-c`: the lookahead pass's source (`pipeline::lookahead`).
pub struct Reopen {
    pub paths: Vec<std::path::PathBuf>,
    pub filter: Option<String>,
    pub limit: Option<u64>,
}

impl crate::pipeline::lookahead::Reread for Reopen {
    fn reread(&self) -> Option<Box<dyn FrameSource>> {
        let mut src = match &self.paths[..] {
            [one] => Source::file(one, self.filter.as_deref()),
            several => Source::merged(several, self.filter.as_deref()),
        }
        .ok()?;
        src.limit = self.limit;
        Some(Box::new(src))
    }
}
