//! The fast path for capture files: records read straight from large
//! `pread` chunks — no `fread` and copy per record as libpcap does — with
//! the BPF filter run on them as libpcap would (`pcap_offline_filter`).
//! Classic pcap and pcapng (one section; Enhanced Packet Blocks from
//! interfaces of the file's link type with micro- or nanosecond stamps and
//! no time offset; other blocks skipped as libpcap skips them).
//!
//! Only the clean case is handled here: a regular file with a classic pcap
//! header (either byte order, micro- or nanosecond stamps) that libpcap
//! itself opened first (so the header, the link type and the filter are
//! already checked, with libpcap's messages). At the first record that is
//! not clean — a captured length over 262,144 bytes or the file's snaplen
//! bound, or a record cut by the end of the file — the reading goes back to
//! libpcap, which skips the frames already read and goes on, so errors and
//! odd files come out exactly as before (`Source::next_frame`).
//! `KACAP_NO_FASTREAD=1` turns the fast path off (the tests compare both).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bytes read per `pread`: small enough that a chunk is still in the
/// core's cache when its records are parsed (1 MiB was 6 % slower on one
/// thread; 128 KiB no faster than this).
const CHUNK: usize = 1 << 18;
/// Buffers kept for reuse while shards read frames in them.
const MAX_SPARE: usize = 64;
use crate::input::record::{self, MAX_CAPLEN, clean, keeps};

/// One record: its header and where its captured bytes are (`bytes`).
pub struct Record {
    pub header: pcap::PacketHeader,
    pub at: std::ops::Range<usize>,
}

/// A parked file: its path and identity (a file replaced under the same
/// name since is not read).
struct Parked {
    path: std::path::PathBuf,
    dev: u64,
    ino: u64,
}

/// Why the fast path hands over to libpcap.
#[derive(Debug, PartialEq, Eq)]
pub struct Unclean;

pub struct FastFile {
    /// The file; `None` once parked (`--merge`: reopened by `path` for
    /// each chunk read, so that a thousand pieces hold no descriptor).
    file: Option<File>,
    parked: Option<Parked>,
    /// Shared with `--threads` shards that still read frames in it: a
    /// refill then goes to a new buffer (see `fill`).
    buf: std::sync::Arc<Vec<u8>>,
    /// Buffers given up while shared, reused once nobody holds them (no
    /// allocation, zeroing and page faults per chunk).
    spare: Vec<std::sync::Arc<Vec<u8>>>,
    /// Valid bytes of `buf`: `start..end`; `buf[0]` is at file offset `base`.
    start: usize,
    end: usize,
    base: u64,
    size: u64,
    swapped: bool,
    nano: bool,
    /// The file header's snaplen.
    snaplen: u32,
    filter: Option<pcap::BpfProgram>,
    /// pcapng: its interfaces so far.
    ng: Option<Vec<Iface>>,
    /// pcapng: per interface, the packets its latest Interface Statistics
    /// Block says the capture dropped (`isb_ifdrop` + `isb_osdrop`).
    drops: Vec<Option<u64>>,
}

/// A pcapng interface (Interface Description Block), as far as the fast
/// path reads it.
#[derive(Clone, Copy, Debug)]
struct Iface {
    link: u16,
    /// Its stamps are 10^-6 or 10^-9 s and carry no offset: else libpcap
    /// reads its packets (and all after them).
    clean: bool,
    /// Its snaplen (0: none).
    snaplen: u32,
    /// Stamp units per second: 10^6 or 10^9.
    per_sec: u64,
}

/// pcapng block types.
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const ISB: u32 = 5;
/// A block longer than this is libpcap's to read (or to refuse).
const MAX_BLOCK: u32 = 16 << 20;

impl FastFile {
    /// `file` with a classic pcap header, or `None` (pcapng, anything
    /// else): libpcap reads those.
    pub fn open(file: File, filter: Option<pcap::BpfProgram>) -> Option<FastFile> {
        if std::env::var_os("KACAP_NO_FASTREAD").is_some_and(|v| v == "1") {
            return None;
        }
        let size = file.metadata().ok()?.len();
        let mut head = [0u8; 24];
        file.read_exact_at(&mut head, 0).ok()?;
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if magic == SHB {
            return FastFile::open_ng(file, filter, size, &head);
        }
        let (swapped, nano) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xd4c3_b2a1 => (true, false),
            0xa1b2_3c4d => (false, true),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let field = |at: usize| {
            let b = [head[at], head[at + 1], head[at + 2], head[at + 3]];
            if swapped {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        Some(FastFile {
            snaplen: field(16),
            file: Some(file),
            parked: None,
            buf: std::sync::Arc::new(vec![0; CHUNK]),
            spare: Vec::new(),
            start: 24,
            end: 24,
            base: 0,
            size,
            swapped,
            nano,
            filter,
            ng: None,
            drops: Vec::new(),
        })
    }

    /// A pcapng file: its Section Header Block read (byte order, length);
    /// the interfaces come as their blocks do.
    fn open_ng(
        file: File,
        filter: Option<pcap::BpfProgram>,
        size: u64,
        head: &[u8; 24],
    ) -> Option<FastFile> {
        let swapped = match u32::from_le_bytes([head[8], head[9], head[10], head[11]]) {
            0x1a2b_3c4d => false,
            0x4d3c_2b1a => true,
            _ => return None,
        };
        let b = [head[4], head[5], head[6], head[7]];
        let len = if swapped {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        if !(28..=MAX_BLOCK).contains(&len) || len % 4 != 0 || u64::from(len) > size {
            return None;
        }
        Some(FastFile {
            snaplen: 0,
            file: Some(file),
            parked: None,
            buf: std::sync::Arc::new(vec![0; CHUNK]),
            spare: Vec::new(),
            start: len as usize,
            end: len as usize,
            base: 0,
            size,
            swapped,
            // Stamps are given in nanoseconds, as libpcap gives them at the
            // precision kacap opens files with.
            nano: true,
            filter,
            ng: Some(Vec::new()),
            drops: Vec::new(),
        })
    }

    /// The file offset of the next record (progress, "X% read").
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    #[inline]
    fn u32_at(&self, at: usize) -> u32 {
        self.u32_of(&self.buf[at..at + 4])
    }

    /// Four bytes in the file's byte order.
    #[inline]
    fn u32_of(&self, b: &[u8]) -> u32 {
        let b: [u8; 4] = b.try_into().unwrap_or([0; 4]);
        if self.swapped {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Makes at least `want` bytes available from `start`, reading more;
    /// false at the end of the file. The check is inlined (twice a
    /// record); the read is not.
    #[inline(always)]
    fn fill(&mut self, want: usize) -> bool {
        self.end - self.start >= want || self.refill(want)
    }

    /// `fill` when the buffer holds fewer than `want` bytes.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, want: usize) -> bool {
        // Move what is left to the front, then read after it; when shards
        // still read frames in this buffer, into a new one.
        let left = self.end - self.start;
        let size = want.max(CHUNK);
        let buf = match std::sync::Arc::get_mut(&mut self.buf) {
            Some(buf) => {
                buf.copy_within(self.start..self.end, 0);
                buf
            }
            None => {
                let mut fresh = match self
                    .spare
                    .iter()
                    .position(|b| std::sync::Arc::strong_count(b) == 1)
                {
                    Some(i) => self.spare.swap_remove(i),
                    None => std::sync::Arc::new(vec![0; size]),
                };
                let new = std::sync::Arc::get_mut(&mut fresh).expect("held by nobody else");
                if new.len() < size {
                    new.resize(size, 0);
                }
                new[..left].copy_from_slice(&self.buf[self.start..self.end]);
                let old = std::mem::replace(&mut self.buf, fresh);
                if self.spare.len() < MAX_SPARE {
                    self.spare.push(old);
                }
                std::sync::Arc::get_mut(&mut self.buf).expect("held by nobody else")
            }
        };
        self.base += self.start as u64;
        self.start = 0;
        self.end = left;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let reopened;
        let file = match (&self.file, &self.parked) {
            (Some(f), _) => f,
            (None, Some(p)) => {
                use std::os::unix::fs::MetadataExt;
                reopened = match File::open(&p.path) {
                    Ok(f) => f,
                    Err(_) => return false,
                };
                match reopened.metadata() {
                    Ok(m) if m.dev() == p.dev && m.ino() == p.ino => {}
                    _ => return false,
                }
                &reopened
            }
            (None, None) => return false,
        };
        while self.end < want {
            let at = self.base + self.end as u64;
            if at >= self.size {
                return false;
            }
            match file.read_at(&mut buf[self.end..], at) {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.end += n,
            }
        }
        true
    }

    /// Closes the file: each later chunk is read by opening `path` again
    /// (and checking it is the same file). `--merge` parks its pieces.
    pub fn park(&mut self, path: &std::path::Path) {
        use std::os::unix::fs::MetadataExt;
        let Some(m) = self.file.as_ref().and_then(|f| f.metadata().ok()) else {
            return;
        };
        self.parked = Some(Parked {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        });
        self.file = None;
    }

    /// The captured bytes of the record `next_record` returned.
    pub fn bytes(&self, at: std::ops::Range<usize>) -> &[u8] {
        &self.buf[at]
    }

    /// The buffer the last record is in, to share (`--threads`: shards
    /// read frames where they are instead of copies).
    pub fn chunk(&self) -> &std::sync::Arc<Vec<u8>> {
        &self.buf
    }

    /// The next record the filter accepts; `Ok(None)` at a clean end.
    pub fn next_record(&mut self) -> Result<Option<Record>, Unclean> {
        if self.ng.is_some() {
            return self.next_ng();
        }
        loop {
            if !self.fill(16) {
                return if self.end == self.start {
                    Ok(None)
                } else {
                    Err(Unclean) // a header cut by the end of the file
                };
            }
            let h = self.start;
            // One bounds check for the record header.
            let head = &self.buf[h..h + 16];
            let word =
                |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
            let (mut sec, mut frac, mut caplen, mut len) = (word(0), word(4), word(8), word(12));
            // One test of the byte order a record, not one a field.
            if self.swapped {
                (sec, frac, caplen, len) = (
                    sec.swap_bytes(),
                    frac.swap_bytes(),
                    caplen.swap_bytes(),
                    len.swap_bytes(),
                );
            }
            if !clean(caplen, len, self.snaplen) {
                return Err(Unclean);
            }
            let total = 16 + caplen as usize;
            if !self.fill(total) {
                return Err(Unclean); // a record cut by the end of the file
            }
            let at = self.start;
            self.start += total;
            let header = record::header(sec, frac, caplen, len);
            let data = &self.buf[at + 16..at + total];
            if !self.keep(&header, data) {
                continue;
            }
            return Ok(Some(Record {
                header,
                at: at + 16..at + total,
            }));
        }
    }

    /// The file to read in byte ranges (`ranges`): a classic pcap file
    /// not yet read from, with its descriptor (`limit`: `-c`).
    pub fn ranges(&self, limit: Option<u64>) -> Option<crate::input::ranges::RangeFile> {
        if self.ng.is_some() || self.position() != 24 {
            return None;
        }
        let file = self.file.as_ref()?.try_clone().ok()?;
        Some(crate::input::ranges::RangeFile {
            file: std::sync::Arc::new(file),
            size: self.size,
            first: 24,
            swapped: self.swapped,
            nano: self.nano,
            snaplen: self.snaplen,
            // SAFETY: the program is this file's, which the source keeps
            // unchanged while the range readers run (`ranges::read`).
            filter: self
                .filter
                .as_ref()
                .map(|p| unsafe { crate::input::ranges::Filter::new(p) }),
            limit,
        })
    }

    /// Goes on from file offset `at` (the range readers read up to it).
    pub fn resume_at(&mut self, at: u64) {
        self.base = at;
        (self.start, self.end) = (0, 0);
    }

    /// Stamps are nanoseconds (else microseconds).
    pub fn nano(&self) -> bool {
        self.nano
    }

    /// Whether the filter (if any) keeps this record.
    #[inline]
    fn keep(&self, header: &pcap::PacketHeader, data: &[u8]) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|prog| keeps(prog, header, data))
    }

    /// pcapng: the next Enhanced Packet Block the filter accepts, reading
    /// Interface Description Blocks on the way and skipping what libpcap
    /// skips; anything else is libpcap's (`Unclean`).
    fn next_ng(&mut self) -> Result<Option<Record>, Unclean> {
        loop {
            if !self.fill(8) {
                return if self.end == self.start {
                    Ok(None)
                } else {
                    Err(Unclean)
                };
            }
            let h = self.start;
            let (kind, len) = (self.u32_at(h), self.u32_at(h + 4));
            if !(12..=MAX_BLOCK).contains(&len) || len % 4 != 0 {
                return Err(Unclean);
            }
            let len = len as usize;
            if !self.fill(len) {
                return Err(Unclean); // cut by the end of the file
            }
            // Filling may have moved the block to the front of the buffer.
            let h = self.start;
            if self.u32_at(h + len - 4) != len as u32 {
                return Err(Unclean); // damaged
            }
            match kind {
                IDB => {
                    let iface = self.iface(h, len)?;
                    if let Some(ifaces) = self.ng.as_mut() {
                        ifaces.push(iface);
                    }
                    self.start += len;
                }
                EPB => {
                    if len < 32 {
                        return Err(Unclean);
                    }
                    let id = self.u32_at(h + 8) as usize;
                    let iface = match self.ng.as_ref().and_then(|i| i.get(id)) {
                        Some(i) if i.clean => *i,
                        _ => return Err(Unclean),
                    };
                    let t = u64::from(self.u32_at(h + 12)) << 32 | u64::from(self.u32_at(h + 16));
                    let (caplen, wire) = (self.u32_at(h + 20), self.u32_at(h + 24));
                    let first_snaplen = self
                        .ng
                        .as_ref()
                        .and_then(|i| i.first())
                        .map_or(0, |i| i.snaplen);
                    if caplen > MAX_CAPLEN
                        || caplen > wire
                        || (iface.snaplen != 0 && caplen > iface.snaplen)
                        || (first_snaplen != 0 && caplen > first_snaplen)
                        || 28 + caplen as usize > len - 4
                    {
                        return Err(Unclean);
                    }
                    let sec = t / iface.per_sec;
                    let frac = t % iface.per_sec;
                    let nsec = if iface.per_sec == 1_000_000 {
                        frac * 1000
                    } else {
                        frac
                    };
                    let Ok(sec) = libc::time_t::try_from(sec) else {
                        return Err(Unclean);
                    };
                    let header = pcap::PacketHeader {
                        ts: libc::timeval {
                            tv_sec: sec,
                            tv_usec: nsec as libc::suseconds_t,
                        },
                        caplen,
                        len: wire,
                    };
                    let at = h + 28..h + 28 + caplen as usize;
                    self.start += len;
                    if !self.keep(&header, &self.buf[at.clone()]) {
                        continue;
                    }
                    return Ok(Some(Record { header, at }));
                }
                ISB => {
                    self.statistics(h, len);
                    self.start += len;
                }
                // Another section, simple and obsolete packet blocks.
                SHB | SPB | PB => return Err(Unclean),
                // Name resolution, statistics, secrets, custom blocks.
                _ => self.start += len,
            }
        }
    }

    /// Packets the capture dropped, as the file's Interface Statistics
    /// Blocks read so far say (the latest per interface; `None`: none said).
    pub fn dropped(&self) -> Option<u64> {
        self.drops
            .iter()
            .flatten()
            .copied()
            .reduce(u64::saturating_add)
    }

    /// An Interface Statistics Block at `h`, `len` bytes long: its drop
    /// counters, cumulative per interface (see `isb`).
    fn statistics(&mut self, h: usize, len: usize) {
        if let Some((iface, d)) = crate::input::isb::drops(&self.buf[h..h + len], self.swapped) {
            if self.drops.len() <= iface {
                self.drops.resize(iface + 1, None);
            }
            self.drops[iface] = Some(d);
        }
    }

    /// An Interface Description Block at `h`, `len` bytes long.
    fn iface(&self, h: usize, len: usize) -> Result<Iface, Unclean> {
        if len < 20 {
            return Err(Unclean);
        }
        let u16_at = |at: usize| {
            let b = [self.buf[at], self.buf[at + 1]];
            if self.swapped {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let link = u16_at(h + 8);
        let snaplen = self.u32_at(h + 12);
        let first = self.ng.as_ref().and_then(|i| i.first().copied());
        let mut iface = Iface {
            link,
            clean: true,
            snaplen,
            per_sec: 1_000_000,
        };
        if first.is_some_and(|f| f.link != link || f.snaplen != snaplen) {
            // libpcap refuses an interface of another link type or snaplen
            // than the first's, at once: its message, not ours.
            return Err(Unclean);
        }
        // Options: code, length, value padded to 4 bytes; 0 ends them.
        let (mut at, end) = (h + 16, h + len - 4);
        while at + 4 <= end {
            let (code, olen) = (u16_at(at), usize::from(u16_at(at + 2)));
            if code == 0 {
                break;
            }
            if at + 4 + olen > end {
                return Err(Unclean);
            }
            match (code, olen) {
                // if_tsresol: 6 or 9 (powers of ten) only.
                (9, 1) => match self.buf[at + 4] {
                    6 => iface.per_sec = 1_000_000,
                    9 => iface.per_sec = 1_000_000_000,
                    _ => iface.clean = false,
                },
                (9, _) => iface.clean = false,
                // if_tsoffset.
                (14, _) => iface.clean = false,
                _ => {}
            }
            at += 4 + olen.div_ceil(4) * 4;
        }
        // Stamps the fast path does not convert: libpcap reads from here.
        if !iface.clean {
            return Err(Unclean);
        }
        Ok(iface)
    }
}
