//! A classic pcap record as the fast paths read it (`fastread`, `ranges`):
//! which records they take, the stamp they give, the filter they run.

/// The largest captured length libpcap accepts for most link types.
pub const MAX_CAPLEN: u32 = 262_144;

unsafe extern "C" {
    fn pcap_offline_filter(
        prog: *const libc::c_void,
        header: *const pcap::PacketHeader,
        packet: *const u8,
    ) -> libc::c_int;
}

/// A record the fast paths read (else libpcap's, which treats a length
/// over the limit or the file's snaplen, or caplen over len, specially).
#[inline(always)]
pub fn clean(caplen: u32, len: u32, snaplen: u32) -> bool {
    caplen <= MAX_CAPLEN && caplen <= snaplen && caplen <= len
}

/// A classic record's stamp as the source gives it (the frames carry
/// nanoseconds whatever the file's precision).
#[inline]
pub fn stamp(sec: u32, frac: u32, nano: bool) -> crate::core::time::Timestamp {
    let nsec = if nano {
        frac
    } else {
        frac.saturating_mul(1000)
    };
    crate::core::time::Timestamp::new(i64::from(sec), nsec.min(999_999_999))
}

/// A classic record's header as libpcap gives it.
#[inline(always)]
pub fn header(sec: u32, frac: u32, caplen: u32, len: u32) -> pcap::PacketHeader {
    pcap::PacketHeader {
        ts: libc::timeval {
            tv_sec: sec as libc::time_t,
            tv_usec: frac as libc::suseconds_t,
        },
        caplen,
        len,
    }
}

/// Whether the compiled filter `prog` keeps the record (as libpcap's
/// `pcap_offline_filter`).
#[inline]
pub fn keeps(prog: &pcap::BpfProgram, header: &pcap::PacketHeader, data: &[u8]) -> bool {
    // SAFETY: BpfProgram is a transparent wrapper of libpcap's
    // bpf_program; the header and data outlive the call, and the filter
    // only reads them.
    unsafe {
        pcap_offline_filter(
            (prog as *const pcap::BpfProgram).cast(),
            header,
            data.as_ptr(),
        ) != 0
    }
}
