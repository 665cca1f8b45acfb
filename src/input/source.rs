//! A capture read with libpcap (a file, stdin, a live interface, files
//! merged — see `open` for how each is opened), or its classic-pcap fast
//! path (`fastread`), handing out borrowed frames. What is done with every
//! frame read (`-w`, the progress bar) wraps it (`tap`).

use crate::core::decode::LinkType;
use crate::core::time::Timestamp;
use crate::input::merge::{self, Merge};
use crate::input::unpack::Unpacking;
use crate::pipeline::event::{CaptureStats, Frame, FrameSource, Next, ReadEnd, SaveHeader};
use pcap::{Active, Capture, Offline};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

/// How often a live capture wakes up without packets (ticks, Ctrl-C).
pub(super) const LIVE_TIMEOUT_MS: i32 = 100;

pub(super) enum Handle {
    File(Capture<Offline>),
    Live(Capture<Active>),
    /// `--merge`: files read as one capture.
    Merge(Box<Merge<Source>>),
    /// A `--merge` piece read on the fast path with no descriptor held
    /// (see `FastFile::park`): libpcap opens it again only to take over.
    Parked {
        path: std::path::PathBuf,
        filter: Option<String>,
    },
}

/// An opened capture: a file or an interface.
pub struct Source {
    pub(super) handle: Handle,
    pub link: LinkType,
    pub dlt: i32,
    /// The name to use in messages (`stdin` for `-`, the interface name).
    pub name: String,
    /// Timestamps come in nanoseconds (files) or microseconds (live).
    pub(super) nano: bool,
    /// Stop after this many frames (`-c`).
    pub limit: Option<u64>,
    pub captured: u64,
    /// A file's descriptor (owned by libpcap) and size, for progress.
    pub(super) file: Option<(std::os::fd::RawFd, u64)>,
    /// The snapshot length (live: the banner says it; a `-w` copy's header).
    pub(super) snaplen: i32,
    /// Read as it comes, not as a file: stdin, a FIFO, process
    /// substitution (`-r <(zcat f.pcap.gz)`), a character device.
    pub stream: bool,
    /// A compressed file being decompressed into libpcap.
    pub(super) unpacking: Option<Unpacking>,
    /// Read to its end (or to `-c`).
    pub ended: bool,
    /// A classic pcap file read on the fast path (`fastread`); libpcap's
    /// handle stays open beside it, at the start, to take over.
    pub(super) fast: Option<crate::input::fastread::FastFile>,
    /// What the fast path's pcapng statistics said when libpcap took over.
    pub(super) fast_dropped: Option<u64>,
}

impl Source {
    /// What a `-w` copy of these frames starts with: libpcap's link type
    /// for the data link type, the snapshot length, the stamps' precision
    /// (as libpcap's own `pcap_dump_open` on this handle writes it).
    pub fn save_header(&self) -> SaveHeader {
        let linktype = match self.dlt {
            // DLT_RAW is 12 on Linux, 14 on OpenBSD; LINKTYPE_RAW is 101.
            12 | 14 => 101,
            dlt => dlt as u32,
        };
        SaveHeader {
            linktype,
            snaplen: self.snaplen.max(0) as u32,
            nano: self.nano,
        }
    }

    /// The stamp resolution the input itself has (the frames carry
    /// nanoseconds from files whatever it is): a pcap file's magic, a
    /// pcapng interface's `if_tsresol` as the fast path read it,
    /// microseconds live. `--annotate` writes its copy with it.
    pub fn native_nano(&self) -> bool {
        if let Some(fast) = &self.fast {
            return fast.nano();
        }
        let Some((fd, _)) = self.file else {
            return self.nano && !self.is_live();
        };
        let mut magic = [0u8; 4];
        // SAFETY: pread into our buffer of its size; it moves no offset.
        let read = unsafe { libc::pread(fd, magic.as_mut_ptr().cast(), 4, 0) };
        match (read, u32::from_le_bytes(magic)) {
            (4, 0xa1b2_c3d4 | 0xd4c3_b2a1) => false,
            _ => self.nano,
        }
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

    /// libpcap takes over from the fast path: it skips the frames already
    /// read (its filter is the same) and goes on from there.
    fn leave_fast_path(&mut self) -> Result<(), ReadEnd> {
        self.fast_dropped = self.fast.take().and_then(|f| f.dropped());
        if let Handle::Parked { path, filter } = &self.handle {
            let fresh = Source::file(path, filter.as_deref())
                .map_err(|e| ReadEnd::Truncated(e.to_string()))?;
            self.handle = fresh.handle;
        }
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
            match fast.next_record() {
                Ok(Some(rec)) => {
                    self.captured += 1;
                    let Some(fast) = self.fast.as_ref() else {
                        return Ok(Next::End);
                    };
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
                        data: fast.bytes(rec.at),
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
        let live_fd = match &self.handle {
            Handle::Live(c) => Some(c.as_raw_fd()),
            Handle::File(_) | Handle::Merge(_) | Handle::Parked { .. } => None,
        };
        let next = match &mut self.handle {
            Handle::Parked { .. } => {
                // The fast path said this piece ended.
                self.ended = true;
                return Ok(Next::End);
            }
            Handle::File(c) => c.next_packet(),
            Handle::Live(c) => c.next_packet(),
            Handle::Merge(m) => {
                return match m.next_head()? {
                    Some(next) => {
                        self.captured += 1;
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
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle(
                (Self::wait_readable(live_fd) == 0).then(Timestamp::now),
            )),
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

    fn position(&self) -> Option<u64> {
        Source::position(self)
    }

    fn read_ranges(
        &mut self,
        readers: usize,
        range: u64,
        route: &(dyn Fn(&[u8]) -> u32 + Sync),
        each: &mut dyn FnMut(&crate::pipeline::event::Ranged) -> bool,
    ) -> bool {
        if !matches!(self.handle, Handle::File(_)) || self.captured != 0 {
            return false;
        }
        let Some(fast) = self.fast.as_mut() else {
            return false;
        };
        let Some(file) = fast.ranges(self.limit) else {
            return false;
        };
        let taken = crate::input::ranges::read(&file, readers, range, route, each);
        fast.resume_at(taken.at);
        self.captured = taken.frames;
        true
    }

    fn dropped(&mut self) -> Option<u64> {
        match &self.fast {
            Some(fast) => fast.dropped(),
            None if matches!(self.handle, Handle::Live(_)) => {
                self.stats().map(|s| u64::from(s.dropped))
            }
            None => self.fast_dropped,
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
            Handle::File(_) | Handle::Merge(_) | Handle::Parked { .. } => None,
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

/// libpcap's message without the wrapper.
pub fn pcap_msg(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}
