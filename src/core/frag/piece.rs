//! What an IP fragment of a TCP datagram is: IPv4's flags and offset, or
//! IPv6's Fragment header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DatagramKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub vlan: u32,
}

/// One fragment of a TCP datagram, a view into its frame.
#[derive(Clone, Copy, Debug)]
pub struct Piece<'a> {
    pub key: DatagramKey,
    /// Where its bytes go in the datagram's payload.
    pub offset: u32,
    /// Its payload's length, as its IP header says.
    pub len: u32,
    /// More fragments follow (IPv4 MF, IPv6 M).
    pub more: bool,
    /// Its payload as captured (at most `len` bytes).
    pub data: &'a [u8],
    /// The first fragment's IP header (IPv4 with its options; IPv6 the
    /// fixed 40 bytes), to rebuild the datagram.
    pub header: &'a [u8],
    pub v6: bool,
}

/// The fragment `ip` is, when it is one of a TCP datagram (IPv4 MF or
/// offset, an IPv6 Fragment header whose next header is TCP that is not an
/// atomic fragment); `vlan` from the frame's link layer.
pub fn piece(ip: &[u8], vlan: u32) -> Option<Piece<'_>> {
    match ip.first()? >> 4 {
        4 => piece_v4(ip, vlan),
        6 => piece_v6(ip, vlan),
        _ => None,
    }
}

pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn piece_v4(ip: &[u8], vlan: u32) -> Option<Piece<'_>> {
    let h = ip.get(..20)?;
    let hl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(be16(h, 2));
    if h[9] != 6 || hl < 20 || ip.len() < hl || total < hl {
        return None;
    }
    let off = be16(h, 6);
    let (more, offset) = (off & 0x2000 != 0, u32::from(off & 0x1fff) * 8);
    if !more && offset == 0 {
        return None;
    }
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    Some(Piece {
        key: DatagramKey {
            src: src.into(),
            dst: dst.into(),
            id: u32::from(be16(h, 4)),
            vlan,
        },
        offset,
        len: (total - hl) as u32,
        more,
        data: &ip[hl..total.min(ip.len())],
        header: &ip[..hl],
        v6: false,
    })
}

fn piece_v6(ip: &[u8], vlan: u32) -> Option<Piece<'_>> {
    let h = ip.get(..40)?;
    let end = 40 + usize::from(be16(h, 4));
    let (mut nh, mut at) = (h[6], 40);
    // Hop-by-hop, routing, destination options and AH may come before the
    // Fragment header (RFC 8200 §4.1).
    for _ in 0..8 {
        match nh {
            0 | 43 | 60 => {
                let e = ip.get(at..at + 2)?;
                nh = e[0];
                at += (usize::from(e[1]) + 1) * 8;
            }
            51 => {
                let e = ip.get(at..at + 2)?;
                nh = e[0];
                at += (usize::from(e[1]) + 2) * 4;
            }
            44 => break,
            _ => return None,
        }
    }
    let f = ip.get(at..at + 8)?;
    let offlg = be16(f, 2);
    let (more, offset) = (offlg & 1 != 0, u32::from(offlg & 0xfff8));
    if f[0] != 6 || (!more && offset == 0) || end < at + 8 {
        return None;
    }
    let addr = |i: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[i..i + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    Some(Piece {
        key: DatagramKey {
            src: addr(8),
            dst: addr(24),
            id: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
            vlan,
        },
        offset,
        len: (end - at - 8) as u32,
        more,
        data: &ip[(at + 8).min(ip.len())..end.min(ip.len())],
        header: h,
        v6: true,
    })
}
