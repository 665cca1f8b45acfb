//! Fragmenting a recording: the same capture with its TCP datagrams cut
//! into IP fragments as a router (IPv4) or the sender (IPv6) cuts them, so
//! that a test can compare the two analyses (`tests/it/frag.rs`).

use super::checksum;
use std::path::Path;

/// IP packet `ip` (IPv4, or IPv6 without extension headers) cut into
/// fragments of at most `size` payload bytes (a multiple of 8), in order;
/// IPv6 fragments carry a Fragment header with `id`. A packet that fits is
/// returned whole.
pub fn fragment(ip: &[u8], size: usize, id: u32) -> Vec<Vec<u8>> {
    assert!(size >= 8 && size.is_multiple_of(8));
    let v6 = ip[0] >> 4 == 6;
    let (hl, end) = if v6 {
        (40, 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]])))
    } else {
        (
            usize::from(ip[0] & 0x0f) * 4,
            usize::from(u16::from_be_bytes([ip[2], ip[3]])),
        )
    };
    let payload = &ip[hl..end.min(ip.len())];
    if payload.len() <= size {
        return vec![ip.to_vec()];
    }
    let mut out = Vec::new();
    for (i, chunk) in payload.chunks(size).enumerate() {
        let offset = i * size;
        let more = offset + chunk.len() < payload.len();
        let mut f = ip[..hl].to_vec();
        if v6 {
            let next = f[6];
            f[4..6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
            f[6] = 44;
            let offlg = offset as u16 | u16::from(more);
            f.extend_from_slice(&[next, 0]);
            f.extend_from_slice(&offlg.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        } else {
            f[2..4].copy_from_slice(&((hl + chunk.len()) as u16).to_be_bytes());
            let off = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
            f[6..8].copy_from_slice(&off.to_be_bytes());
            f[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&[&f[..hl]]);
            f[10..12].copy_from_slice(&c.to_be_bytes());
        }
        f.extend_from_slice(chunk);
        out.push(f);
    }
    out
}

/// An IPv4 TCP packet as IPv6 (`2001:db8::` + the IPv4 address, hop limit
/// the TTL), its TCP checksum made again; anything else unchanged.
pub fn to_v6(ip: &[u8]) -> Vec<u8> {
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
        return ip.to_vec();
    }
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let mut tcp = ip[hl..total].to_vec();
    let addr = |a: &[u8]| {
        let mut v = vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(a);
        v
    };
    let (src, dst) = (addr(&ip[12..16]), addr(&ip[16..20]));
    if tcp.len() >= 18 {
        tcp[16..18].copy_from_slice(&[0, 0]);
        let len = (tcp.len() as u32).to_be_bytes();
        let pseudo = [len[0], len[1], len[2], len[3], 0, 0, 0, 6];
        let c = checksum(&[&src, &dst, &pseudo, &tcp]);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
    }
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    v.extend_from_slice(&[6, ip[8]]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&tcp);
    v
}

/// Copies classic pcap `src` (Ethernet, untagged) to `dst`, each frame's IP
/// packet replaced by what `f` makes of it (frame number, packet): each
/// written as a frame of its own with the original's stamp (Ethernet
/// padding dropped, the EtherType set for the family).
pub fn rewrite_pcap(src: &Path, dst: &Path, mut f: impl FnMut(u64, &[u8]) -> Vec<Vec<u8>>) {
    let data = std::fs::read(src).expect("read the recording");
    assert_eq!(
        &data[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a little-endian pcap"
    );
    assert_eq!(data[20], 1, "Ethernet");
    let mut out = data[..24].to_vec();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= data.len() {
        let rec = &data[at..at + 16];
        let caplen = u32::from_le_bytes([rec[8], rec[9], rec[10], rec[11]]) as usize;
        let frame = &data[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        n += 1;
        let (link, ip) = frame.split_at(14);
        let packets = if matches!(&link[12..14], [0x08, 0x00] | [0x86, 0xdd]) {
            let end = if ip[0] >> 4 == 4 {
                usize::from(u16::from_be_bytes([ip[2], ip[3]]))
            } else {
                40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))
            };
            f(n, &ip[..end.min(ip.len())])
        } else {
            vec![ip.to_vec()]
        };
        for p in packets {
            let mut frame = link.to_vec();
            if p.first().is_some_and(|b| b >> 4 == 6) {
                frame[12..14].copy_from_slice(&[0x86, 0xdd]);
            }
            frame.extend_from_slice(&p);
            out.extend_from_slice(&rec[..8]);
            let len = (frame.len() as u32).to_le_bytes();
            out.extend_from_slice(&len);
            out.extend_from_slice(&len);
            out.extend_from_slice(&frame);
        }
    }
    std::fs::write(dst, out).expect("write the copy");
}
