//! A tiny pcap / pcapng writer for crafted captures.

use std::path::Path;

#[derive(Clone, Copy, Debug, Default)]
pub struct PcapOpts {
    pub nano: bool,
    pub big_endian: bool,
    /// Cut frames to this many bytes (as `tcpdump -s`).
    pub snaplen: Option<usize>,
}

fn split_ts(t: f64, nano: bool) -> (u32, u32) {
    let sec = t.trunc();
    let frac = t - sec;
    let sub = if nano {
        (frac * 1e9).round().min(999_999_999.0)
    } else {
        (frac * 1e6).round().min(999_999.0)
    };
    (sec as u32, sub as u32)
}

/// The 24-byte header of a classic pcap file.
pub fn pcap_header(linktype: u32, opts: PcapOpts) -> Vec<u8> {
    let u32b = |v: u32| {
        if opts.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if opts.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let magic = if opts.nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&u32b(magic));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&u32b(0));
    out.extend_from_slice(&u32b(0));
    out.extend_from_slice(&u32b(opts.snaplen.unwrap_or(262_144) as u32));
    out.extend_from_slice(&u32b(linktype));
    out
}

/// Writes a classic pcap file of `frames` (capture time in seconds, bytes).
pub fn write_pcap(path: &Path, linktype: u32, frames: &[(f64, Vec<u8>)], opts: PcapOpts) {
    let mut out = pcap_header(linktype, opts);
    for (t, data) in frames {
        out.extend(pcap_record(*t, data, opts));
    }
    std::fs::write(path, out).unwrap();
}

/// One record of a classic pcap file (captured at `t` seconds), cut to the
/// snaplen.
pub fn pcap_record(t: f64, data: &[u8], opts: PcapOpts) -> Vec<u8> {
    let u32b = |v: u32| {
        if opts.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let snaplen = opts.snaplen.unwrap_or(262_144);
    let (sec, sub) = split_ts(t, opts.nano);
    let cap = data.len().min(snaplen);
    let mut out = Vec::with_capacity(16 + cap);
    out.extend_from_slice(&u32b(sec));
    out.extend_from_slice(&u32b(sub));
    out.extend_from_slice(&u32b(cap as u32));
    out.extend_from_slice(&u32b(data.len() as u32));
    out.extend_from_slice(&data[..cap]);
    out
}

/// Writes a pcapng file: a section header, one interface (nanosecond
/// timestamps when `nano`), an unknown custom block, and enhanced packets.
pub fn write_pcapng(path: &Path, linktype: u32, frames: &[(f64, Vec<u8>)], nano: bool) {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (4 - body.len() % 4) % 4, 0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&(linktype as u16).to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    if nano {
        // if_tsresol = 9 (10^-9), then end of options.
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    }
    block(&mut out, 1, &idb);
    // A custom block (copiable, PEN 32473 = example) readers must skip.
    block(&mut out, 0x0000_0bad, &[0x59, 0x7e, 0, 0, 1, 2, 3, 4]);
    for (t, data) in frames {
        let units = if nano {
            (t * 1e9).round() as u64
        } else {
            (t * 1e6).round() as u64
        };
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(units as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        epb.resize(epb.len().div_ceil(4) * 4, 0);
        block(&mut out, 6, &epb);
    }
    std::fs::write(path, out).unwrap();
}
