//! Decode: link layer → IP → a view of the TCP segment.
//!
//! Tolerant of truncation: a frame cut short by a small snaplen still yields
//! ports, sequence numbers, flags and window as long as the first 16 bytes of
//! the TCP header were captured. The payload length always comes from the IP
//! header (total length / payload length), never from the captured length:
//! Ethernet pads a 0-byte keepalive probe to 60 bytes, which would otherwise
//! look like 6 bytes of data.

use crate::core::seq::SeqNumber;
use etherparse::{IpNumber, LaxIpSlice};
use std::net::IpAddr;

/// Link-layer header types we understand (libpcap DLT_* values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_NULL: 4-byte address family in the capturing host's byte order.
    Null,
    /// DLT_EN10MB: Ethernet, with any number of 802.1Q / 802.1ad tags.
    Ethernet,
    /// DLT_RAW (12 on Linux, 14 on OpenBSD; LINKTYPE_RAW 101), IPV4, IPV6.
    #[default]
    Raw,
    /// DLT_LOOP: 4-byte address family in network byte order.
    Loop,
    /// DLT_LINUX_SLL: Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// DLT_LINUX_SLL2: Linux cooked capture v2 (20-byte header), `-i any`.
    LinuxSll2,
}

impl LinkType {
    /// Maps a libpcap data link type to the decoder, `None` when unsupported.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        match dlt {
            0 => Some(LinkType::Null),
            1 => Some(LinkType::Ethernet),
            12 | 14 | 101 | 228 | 229 => Some(LinkType::Raw),
            108 => Some(LinkType::Loop),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }
}

/// Why a frame yielded no TCP segment. Counted, never an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not IPv4/IPv6 (ARP, LLDP, …).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, …).
    NotTcp,
    /// A non-first IP fragment or a fragmented TCP segment.
    Fragment,
    /// Cut off before the fixed part of the TCP header was captured.
    Truncated,
    /// Headers that contradict themselves (bad lengths, bad data offset).
    Malformed,
}

/// TCP flag bits, as in the header's 13th byte.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Extra link-layer facts tcpdump prints (Linux cooked v2: `lo    In  `).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// The frame's link-layer type (tcpdump -e prints its header).
    pub kind: LinkType,
    /// Interface index from a LINUX_SLL2 header (0 when absent).
    pub ifindex: u32,
    /// Packet type from a LINUX_SLL / LINUX_SLL2 header (0 = to us, 4 = outgoing).
    pub pkttype: Option<u16>,
    /// The frame's 802.1Q / 802.1ad VLAN IDs, outermost first, folded into
    /// one number (0: untagged): part of a connection's identity, since the
    /// same 4-tuple on two VLANs is two hops (or two connections).
    pub vlan: u32,
}

/// A decoded TCP segment: a view into the frame, no copies.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: u8,
    pub win: u16,
    pub urp: u16,
    /// TCP header length from the data offset field (bytes).
    pub header_len: u16,
    /// Payload length according to the IP header.
    pub len: u32,
    /// The captured part of the TCP options.
    pub options: &'a [u8],
    /// True when the options were cut off by the snaplen.
    pub options_truncated: bool,
    /// The captured part of the payload (at most `len` bytes; fewer when
    /// the snaplen cut it).
    pub payload: &'a [u8],
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// The TCP checksum as sent (0 when not captured): with the IP ID, what
    /// tells a copy of a segment (the capture saw it twice) from the same
    /// segment sent again.
    pub checksum: u16,
    pub link: LinkInfo,
}

impl Segment<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The TCP timestamps option (RFC 7323): TS val and TS ecr, when the
    /// captured options hold it.
    pub fn timestamps(&self) -> Option<(u32, u32)> {
        let mut o = self.options;
        while let Some((&kind, rest)) = o.split_first() {
            match kind {
                0 => return None,
                1 => o = rest,
                _ => {
                    let len = usize::from(*rest.first()?);
                    if len < 2 || len > o.len() {
                        return None;
                    }
                    if kind == 8 && len == 10 {
                        let be =
                            |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
                        return Some((be(2), be(6)));
                    }
                    o = &o[len..];
                }
            }
        }
        None
    }

    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        self.len + u32::from(self.has(flags::SYN)) + u32::from(self.has(flags::FIN))
    }
}

/// Decodes one captured frame of the given link type.
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Segment<'_>, Skip> {
    let (ip, info) = network(link, frame)?;
    decode_ip(ip, info)
}

/// The frame's IP packet (from its header on, as captured) and the link
/// facts tcpdump prints.
#[inline(always)]
pub fn network(link: LinkType, frame: &[u8]) -> Result<(&[u8], LinkInfo), Skip> {
    let mut info = LinkInfo {
        kind: link,
        ..LinkInfo::default()
    };
    let ip = match link {
        LinkType::Raw => frame,
        LinkType::Null | LinkType::Loop => frame.get(4..).ok_or(Skip::Truncated)?,
        LinkType::Ethernet => ethernet_payload(frame, &mut info.vlan)?,
        LinkType::LinuxSll => {
            let hdr = frame.get(..16).ok_or(Skip::Truncated)?;
            info.pkttype = Some(be16(hdr, 0));
            ip_by_ethertype(be16(hdr, 14), &frame[16..])?
        }
        LinkType::LinuxSll2 => {
            let hdr = frame.get(..20).ok_or(Skip::Truncated)?;
            info.ifindex = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
            info.pkttype = Some(u16::from(hdr[10]));
            ip_by_ethertype(be16(hdr, 0), &frame[20..])?
        }
    };
    Ok((ip, info))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Skips the Ethernet header and any VLAN tags (their IDs folded into `vlan`).
#[inline(always)]
fn ethernet_payload<'a>(frame: &'a [u8], vlan: &mut u32) -> Result<&'a [u8], Skip> {
    let mut at = 12;
    // A frame with more than a few stacked tags is not a frame we can use.
    for _ in 0..8 {
        let ethertype = be16(frame.get(at..at + 2).ok_or(Skip::Truncated)?, 0);
        match ethertype {
            0x8100 | 0x88a8 | 0x9100 => {
                let tci = be16(frame.get(at + 2..at + 4).ok_or(Skip::Truncated)?, 0);
                *vlan = vlan
                    .wrapping_mul(4096)
                    .wrapping_add(u32::from(tci & 0x0fff) + 1);
                at += 4;
            }
            _ => return ip_by_ethertype(ethertype, &frame[at + 2..]),
        }
    }
    Err(Skip::Malformed)
}

fn ip_by_ethertype(ethertype: u16, payload: &[u8]) -> Result<&[u8], Skip> {
    match ethertype {
        0x0800 | 0x86dd => Ok(payload),
        _ => Err(Skip::NotIp),
    }
}

#[inline(always)]
fn decode_ip(ip: &[u8], link: LinkInfo) -> Result<Segment<'_>, Skip> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(ip, link),
        Some(6) => decode_ipv6(ip, link),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Truncated),
    }
}

/// IPv6 and its extension headers, through etherparse's lax slicing.
#[inline(never)]
fn decode_ipv6(ip: &[u8], link: LinkInfo) -> Result<Segment<'_>, Skip> {
    let (slice, _ext_err) = LaxIpSlice::from_slice(ip).map_err(|e| {
        use etherparse::err::ip::LaxHeaderSliceError;
        match e {
            LaxHeaderSliceError::Len(_) => Skip::Truncated,
            LaxHeaderSliceError::Content(_) => Skip::Malformed,
        }
    })?;
    let payload = slice.payload();
    if payload.ip_number != IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    // Length of the TCP segment (header + payload) as the IP header says.
    let (declared, ttl) = match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let hl = usize::from(h.ihl()) * 4;
            let total = usize::from(h.total_len());
            let declared = if total == 0 {
                // TSO frames captured on the sender may carry total length 0.
                payload.payload.len()
            } else {
                total.checked_sub(hl).ok_or(Skip::Malformed)?
            };
            (declared, h.ttl())
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let plen = usize::from(h.payload_length());
            let declared = if plen == 0 {
                payload.payload.len()
            } else {
                plen.checked_sub(v6.extensions().slice().len())
                    .ok_or(Skip::Malformed)?
            };
            (declared, h.hop_limit())
        }
    };
    decode_tcp(
        payload.payload,
        declared,
        slice.source_addr(),
        slice.destination_addr(),
        (ttl, 0),
        link,
    )
}

/// IPv4 by hand: the common case, on the hot path. (IPv6 and its extension
/// headers go through etherparse's lax slicing.) Inlined with `decode_tcp`,
/// so the segment is built once, where `decode` returns it, not copied out
/// of each level.
#[inline(always)]
fn decode_ipv4(ip: &[u8], link: LinkInfo) -> Result<Segment<'_>, Skip> {
    let (header, tcp, declared) = ipv4_tcp(ip)?;
    let src = std::net::Ipv4Addr::new(header[12], header[13], header[14], header[15]);
    let dst = std::net::Ipv4Addr::new(header[16], header[17], header[18], header[19]);
    decode_tcp(
        tcp,
        declared,
        src.into(),
        dst.into(),
        (header[8], be16(header, 4)),
        link,
    )
}

/// An IPv4 packet's header, its TCP bytes (as captured) and their length
/// as the header declares it; or why it holds no whole TCP segment.
#[inline(always)]
fn ipv4_tcp(ip: &[u8]) -> Result<(&[u8], &[u8], usize), Skip> {
    let header = ip.get(..20).ok_or(Skip::Truncated)?;
    let hl = usize::from(header[0] & 0x0f) * 4;
    if hl < 20 {
        return Err(Skip::Malformed);
    }
    if ip.len() < hl {
        return Err(Skip::Truncated);
    }
    let total = usize::from(be16(header, 2));
    if total != 0 && total < hl {
        return Err(Skip::Malformed);
    }
    if header[9] != 6 {
        return Err(Skip::NotTcp);
    }
    let more_fragments = header[6] & 0x20 != 0;
    let offset = be16(header, 6) & 0x1fff;
    if more_fragments || offset != 0 {
        return Err(Skip::Fragment);
    }
    // TSO frames captured on the sender may carry total length 0.
    let (end, declared) = if total == 0 {
        (ip.len(), ip.len() - hl)
    } else {
        (total.min(ip.len()), total - hl)
    };
    Ok((header, &ip[hl..end], declared))
}

/// The TCP header's length, when the segment's captured bytes and its
/// declared length can hold it.
#[inline(always)]
fn tcp_header_len(tcp: &[u8], declared: usize) -> Result<u16, Skip> {
    if tcp.len() < 16 {
        return Err(Skip::Truncated);
    }
    let header_len = u16::from(tcp[12] >> 4) * 4;
    if header_len < 20 || usize::from(header_len) > declared {
        return Err(Skip::Malformed);
    }
    Ok(header_len)
}

/// A frame's segment's two ends (source address and port, destination
/// address and port), or `decode`'s reason it holds none: what the
/// `--threads` reader needs to pick a shard, without building the rest
/// of the segment. The same checks as `decode` (a test holds them equal).
pub fn ends(link: LinkType, frame: &[u8]) -> Result<(IpAddr, u16, IpAddr, u16), Skip> {
    let (ip, info) = network(link, frame)?;
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let (h, tcp, declared) = ipv4_tcp(ip)?;
            tcp_header_len(tcp, declared)?;
            let addr = |i: usize| IpAddr::from([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            Ok((addr(12), be16(tcp, 0), addr(16), be16(tcp, 2)))
        }
        _ => decode_ip(ip, info).map(|s| (s.src, s.sport, s.dst, s.dport)),
    }
}

/// How much of the TCP header an IP fragment shows (tcpdump prints what
/// it shows: print-tcp.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragTcp {
    /// Not the first fragment: no TCP header.
    None,
    /// The first, with fewer than 4 bytes of it: `[|tcp]` after the addresses.
    Cut,
    /// The first, with the ports but fewer than 20 bytes: `[|tcp]` after them.
    Ports,
    /// The first, with a header longer than its bytes: `Flags […] [bad hdr length …]`.
    BadLength,
    /// The first, with the whole header: a TCP line of its bytes.
    Whole,
}

/// An IP fragment of a TCP datagram as tcpdump shows it.
#[derive(Clone, Copy, Debug)]
pub struct FragView {
    /// IPv4's 16-bit or IPv6's 32-bit identification.
    pub id: u32,
    /// Where its bytes go, and how many the IP header says it has.
    pub offset: u32,
    pub len: u32,
    pub more: bool,
    pub v6: bool,
    pub tcp: FragTcp,
}

/// A frame that is an IP fragment of a TCP datagram: a segment with what
/// it shows — for a first fragment the TCP header it carries (its length:
/// the fragment's bytes), for any other only the addresses and the link
/// facts —, its view, and the piece the reassembler takes.
pub fn fragment(
    link: LinkType,
    frame: &[u8],
) -> Option<(Segment<'_>, FragView, crate::core::frag::Piece<'_>)> {
    let (ip, info) = network(link, frame).ok()?;
    let p = crate::core::frag::piece(ip, info.vlan)?;
    let (ttl, ip_id) = if p.v6 {
        (ip[7], 0)
    } else {
        (ip[8], be16(ip, 4))
    };
    let mut view = FragView {
        id: p.key.id,
        offset: p.offset,
        len: p.len,
        more: p.more,
        v6: p.v6,
        tcp: FragTcp::None,
    };
    let declared = p.len as usize;
    let whole = (p.offset == 0)
        .then(|| decode_tcp(p.data, declared, p.key.src, p.key.dst, (ttl, ip_id), info).ok())
        .flatten();
    if let Some(seg) = whole {
        view.tcp = FragTcp::Whole;
        return Some((seg, view, p));
    }
    let mut seg = Segment {
        src: p.key.src,
        dst: p.key.dst,
        sport: 0,
        dport: 0,
        seq: SeqNumber(0),
        ack: SeqNumber(0),
        flags: 0,
        win: 0,
        urp: 0,
        header_len: 0,
        len: 0,
        options: &[],
        options_truncated: true,
        payload: &[],
        ttl,
        ip_id,
        checksum: 0,
        link: info,
    };
    if p.offset == 0 {
        let shown = &p.data[..p.data.len().min(declared)];
        view.tcp = if shown.len() < 4 {
            FragTcp::Cut
        } else if shown.len() < 20 {
            FragTcp::Ports
        } else {
            seg.flags = shown[13];
            seg.header_len = u16::from(shown[12] >> 4) * 4;
            FragTcp::BadLength
        };
        if shown.len() >= 4 {
            seg.sport = be16(shown, 0);
            seg.dport = be16(shown, 2);
        }
    }
    Some((seg, view, p))
}

#[inline(always)]
fn decode_tcp<'a>(
    tcp: &'a [u8],
    declared: usize,
    src: IpAddr,
    dst: IpAddr,
    (ttl, ip_id): (u8, u16),
    link: LinkInfo,
) -> Result<Segment<'a>, Skip> {
    let header_len = tcp_header_len(tcp, declared)?;
    let urp = if tcp.len() >= 20 { be16(tcp, 18) } else { 0 };
    let checksum = if tcp.len() >= 18 { be16(tcp, 16) } else { 0 };
    let opt_end = usize::from(header_len).min(tcp.len());
    let options = tcp.get(20..opt_end).unwrap_or(&[]);
    Ok(Segment {
        src,
        dst,
        sport: be16(tcp, 0),
        dport: be16(tcp, 2),
        seq: SeqNumber(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]])),
        ack: SeqNumber(u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]])),
        flags: tcp[13],
        win: be16(tcp, 14),
        urp,
        header_len,
        len: (declared - usize::from(header_len)) as u32,
        options,
        options_truncated: tcp.len() < usize::from(header_len),
        payload: {
            let start = usize::from(header_len).min(tcp.len());
            let end = declared.min(tcp.len()).max(start);
            &tcp[start..end]
        },
        ttl,
        ip_id,
        checksum,
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft;

    /// 127.0.0.1:55916 → 127.0.0.1:2333, ACK, seq 0xfffffff0, with
    /// `options` and `payload`, as raw IPv4.
    fn packet(options: &[u8], payload: &[u8]) -> Vec<u8> {
        let (src, dst) = (
            "127.0.0.1:55916".parse().unwrap(),
            "127.0.0.1:2333".parse().unwrap(),
        );
        let tcp = craft::tcp_segment(src, dst, flags::ACK, 0xffff_fff0, 7, 512, payload, options);
        craft::ip_packet(src.ip(), dst.ip(), &tcp, false)
    }

    fn ethernet(ip: &[u8]) -> Vec<u8> {
        craft::frame(craft::Link::Ethernet, false, ip, false, true)
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut frame = ethernet(&packet(&[], &[]));
        frame.resize(60, 0); // padding to 60 bytes
        let seg = decode(LinkType::Ethernet, &frame).unwrap();
        assert_eq!(seg.len, 0);
        assert_eq!(seg.seq, SeqNumber(0xffff_fff0));
        assert_eq!(seg.dport, 2333);
    }

    #[test]
    fn truncated_options_still_decode() {
        // Header claims 32 bytes (12 of options), only 20 captured: -s 54.
        let mut frame = ethernet(&packet(&[1; 12], &[0x61; 10]));
        frame.truncate(14 + 20 + 20);
        let seg = decode(LinkType::Ethernet, &frame).unwrap();
        assert!(seg.options_truncated);
        assert_eq!(seg.len, 10);
        assert_eq!(seg.win, 512);
    }

    #[test]
    fn vlan_tags_are_skipped() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x0b, 0x08, 0x00]);
        frame.extend(packet(&[], &[]));
        assert_eq!(decode(LinkType::Ethernet, &frame).unwrap().sport, 55916);
    }

    #[test]
    fn short_or_bad_headers_are_skipped_not_panicking() {
        assert_eq!(
            decode(LinkType::Ethernet, &[0; 5]).unwrap_err(),
            Skip::Truncated
        );
        let mut bad = packet(&[], &[]);
        bad[20 + 12] = 2 << 4; // data offset 8 bytes
        assert_eq!(decode(LinkType::Raw, &bad).unwrap_err(), Skip::Malformed);
        assert_eq!(decode(LinkType::Raw, &[0x60]).unwrap_err(), Skip::Truncated);
        assert_eq!(
            decode(LinkType::Null, &[2, 0, 0, 0, 0x10]).unwrap_err(),
            Skip::NotIp
        );
    }
}
