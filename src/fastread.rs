//! The fast path for classic pcap files: records read straight from large
//! `pread` chunks — no `fread` and copy per record as libpcap does — with
//! the BPF filter run on them as libpcap would (`pcap_offline_filter`).
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

/// Bytes read per `pread`.
const CHUNK: usize = 1 << 20;
/// The largest captured length libpcap accepts for most link types.
const MAX_CAPLEN: u32 = 262_144;

unsafe extern "C" {
    fn pcap_offline_filter(
        prog: *const libc::c_void,
        header: *const pcap::PacketHeader,
        packet: *const u8,
    ) -> libc::c_int;
}

/// One record: its header and where its captured bytes are (`bytes`).
pub struct Record {
    pub header: pcap::PacketHeader,
    pub at: std::ops::Range<usize>,
}

/// Why the fast path hands over to libpcap.
#[derive(Debug, PartialEq, Eq)]
pub struct Unclean;

pub struct FastFile {
    file: File,
    buf: Vec<u8>,
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
}

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
            file,
            buf: vec![0; CHUNK],
            start: 24,
            end: 24,
            base: 0,
            size,
            swapped,
            nano,
            filter,
        })
    }

    /// The file offset of the next record (progress, "X% read").
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = [
            self.buf[at],
            self.buf[at + 1],
            self.buf[at + 2],
            self.buf[at + 3],
        ];
        if self.swapped {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Makes at least `want` bytes available from `start`, reading more;
    /// false at the end of the file.
    fn fill(&mut self, want: usize) -> bool {
        if self.end - self.start >= want {
            return true;
        }
        // Move what is left to the front, then read after it.
        let left = self.end - self.start;
        self.buf.copy_within(self.start..self.end, 0);
        self.base += self.start as u64;
        self.start = 0;
        self.end = left;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        while self.end < want {
            let at = self.base + self.end as u64;
            if at >= self.size {
                return false;
            }
            match self.file.read_at(&mut self.buf[self.end..], at) {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.end += n,
            }
        }
        true
    }

    /// The captured bytes of the record `next_record` returned.
    pub fn bytes(&self, at: std::ops::Range<usize>) -> &[u8] {
        &self.buf[at]
    }

    /// The next record the filter accepts; `Ok(None)` at a clean end.
    pub fn next_record(&mut self) -> Result<Option<Record>, Unclean> {
        loop {
            if !self.fill(16) {
                return if self.end == self.start {
                    Ok(None)
                } else {
                    Err(Unclean) // a header cut by the end of the file
                };
            }
            let h = self.start;
            let (sec, frac, caplen, len) = (
                self.u32_at(h),
                self.u32_at(h + 4),
                self.u32_at(h + 8),
                self.u32_at(h + 12),
            );
            // What libpcap treats specially (a length over the limit or
            // the file's snaplen, caplen over len): libpcap's to read.
            if caplen > MAX_CAPLEN || caplen > self.snaplen || caplen > len {
                return Err(Unclean);
            }
            let total = 16 + caplen as usize;
            if !self.fill(total) {
                return Err(Unclean); // a record cut by the end of the file
            }
            let at = self.start;
            self.start += total;
            let header = pcap::PacketHeader {
                ts: libc::timeval {
                    tv_sec: sec as libc::time_t,
                    tv_usec: frac as libc::suseconds_t,
                },
                caplen,
                len,
            };
            let data = &self.buf[at + 16..at + total];
            if let Some(prog) = &self.filter {
                // SAFETY: BpfProgram is a transparent wrapper of libpcap's
                // bpf_program; the header and data outlive the call.
                let keep = unsafe {
                    pcap_offline_filter(
                        (prog as *const pcap::BpfProgram).cast(),
                        &header,
                        data.as_ptr(),
                    )
                };
                if keep == 0 {
                    continue;
                }
            }
            return Ok(Some(Record {
                header,
                at: at + 16..at + total,
            }));
        }
    }

    /// Stamps are nanoseconds (else microseconds).
    pub fn nano(&self) -> bool {
        self.nano
    }
}
