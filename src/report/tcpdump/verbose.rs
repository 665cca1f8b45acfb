//! `-v`: the IP header's fields and the TCP checksum, as tcpdump prints
//! them (print-ip.c, print-ip6.c, print-tcp.c).

use crate::core::decode::Segment;
use crate::core::emit::Emit;
use std::net::IpAddr;

/// The one's-complement sum of `chunks` as 16-bit big-endian words (an odd
/// chunk padded with a zero byte), folded to 16 bits.
fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u64;
    for chunk in chunks {
        let mut words = chunk.chunks_exact(2);
        for w in &mut words {
            sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// tcpdump's `in_cksum_shouldbe`: the checksum the header should carry,
/// from the one it carries and the sum over the data that includes it.
fn should_be(carried: u16, sum: u16) -> u16 {
    let computed = !sum;
    let mut v = u32::from(carried) + u32::from(computed);
    v = (v & 0xffff) + (v >> 16);
    v = (v & 0xffff) + (v >> 16);
    v as u16
}

fn hex(out: &mut Vec<u8>, v: u16, width: usize) {
    let digits = format!("{v:0width$x}");
    out.extend_from_slice(digits.as_bytes());
}

/// `(tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 52)`
/// and a new line (IPv4), or `(hlim 64, next-header TCP (6) payload length:
/// 32) ` (IPv6), after `IP ` / `IP6 `.
pub fn write_ip(out: &mut Vec<u8>, ip: &[u8], seg: &Segment) {
    if seg.src.is_ipv4() {
        let Some(h) = ip.get(..20) else { return };
        let tos = h[1];
        out.s("(tos 0x");
        hex(out, u16::from(tos), 1);
        out.s(match tos & 3 {
            1 => ",ECT(1)",
            2 => ",ECT(0)",
            3 => ",CE",
            _ => "",
        });
        if h[8] >= 1 {
            out.s(", ttl ").n(h[8]);
        }
        let off = u16::from_be_bytes([h[6], h[7]]);
        out.s(", id ")
            .n(u16::from_be_bytes([h[4], h[5]]))
            .s(", offset ")
            .n((off & 0x1fff) * 8)
            .s(", flags [");
        let names: Vec<&str> = [(0x2000, "+"), (0x4000, "DF"), (0x8000, "rsvd")]
            .iter()
            .filter(|(bit, _)| off & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        out.s(if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
        .as_str());
        out.s("], proto TCP (6), length ")
            .n(u16::from_be_bytes([h[2], h[3]]));
        let hlen = usize::from(h[0] & 0x0f) * 4;
        if hlen > 20 {
            out.s(", options (");
            if let Some(opts) = ip.get(20..hlen) {
                ip_options(out, opts);
            }
            out.s(")");
        }
        if let Some(header) = ip.get(..hlen) {
            let sum = ones_sum(&[header]);
            if sum != 0xffff {
                let carried = u16::from_be_bytes([h[10], h[11]]);
                out.s(", bad cksum ");
                hex(out, carried, 1);
                out.s(" (->");
                hex(out, should_be(carried, sum), 1);
                out.s(")!");
            }
        }
        out.s(")\n    ");
    } else {
        let Some(h) = ip.get(..40) else { return };
        let flow = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        out.s("(");
        if flow & 0x0ff0_0000 != 0 {
            out.s("class 0x");
            hex(out, ((flow & 0x0ff0_0000) >> 20) as u16, 2);
            out.s(", ");
        }
        if flow & 0x000f_ffff != 0 {
            out.s("flowlabel 0x");
            out.extend_from_slice(format!("{:05x}", flow & 0x000f_ffff).as_bytes());
            out.s(", ");
        }
        let nh = h[6];
        out.s("hlim ")
            .n(h[7])
            .s(", next-header ")
            .s(next_header_name(nh))
            .s(" (")
            .n(nh)
            .s(") payload length: ")
            .n(u16::from_be_bytes([h[4], h[5]]))
            .s(") ");
    }
}

fn next_header_name(nh: u8) -> &'static str {
    match nh {
        0 => "Options",
        6 => "TCP",
        43 => "Routing",
        44 => "Fragment",
        51 => "AH",
        60 => "DSTOPT",
        _ => "unknown",
    }
}

/// IPv4 options, by name (print-ip.c's `ip_optprint`, without the
/// details of each).
fn ip_options(out: &mut Vec<u8>, mut opts: &[u8]) {
    while let Some((&kind, rest)) = opts.split_first() {
        let name = match kind {
            0 => "EOL",
            1 => "NOP",
            7 => "RR",
            68 => "TS",
            130 => "security",
            131 => "LSRR",
            137 => "SSRR",
            148 => "RA",
            _ => "unknown",
        };
        out.s(name);
        if kind <= 1 {
            opts = rest;
        } else {
            let len = usize::from(rest.first().copied().unwrap_or(0)).max(2);
            opts = opts.get(len..).unwrap_or(&[]);
        }
        if !opts.is_empty() {
            out.s(",");
        }
        if kind == 0 {
            break;
        }
    }
}

/// `, cksum 0x1234 (correct)` or `(incorrect -> 0x5678)`, when the whole
/// segment was captured (as tcpdump: nothing when it was cut off).
pub fn write_tcp_checksum(out: &mut Vec<u8>, ip: &[u8], seg: &Segment) {
    if seg.options_truncated {
        return;
    }
    // The payload is a view into `ip`: the header lies just before it.
    let payload_at = (seg.payload.as_ptr() as usize).wrapping_sub(ip.as_ptr() as usize);
    let total = usize::from(seg.header_len) + seg.len as usize;
    let Some(start) = payload_at.checked_sub(usize::from(seg.header_len)) else {
        return;
    };
    let Some(tcp) = ip.get(start..start + total) else {
        return;
    };
    let Ok(len16) = u16::try_from(total) else {
        return;
    };
    let sum = match (seg.src, seg.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let pseudo = [0, 6, (len16 >> 8) as u8, len16 as u8];
            ones_sum(&[&s.octets(), &d.octets(), &pseudo, tcp])
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let l = (total as u32).to_be_bytes();
            let pseudo = [l[0], l[1], l[2], l[3], 0, 0, 0, 6];
            ones_sum(&[&s.octets(), &d.octets(), &pseudo, tcp])
        }
        _ => return,
    };
    let carried = u16::from_be_bytes([tcp[16], tcp[17]]);
    out.s(", cksum 0x");
    hex(out, carried, 4);
    if sum == 0xffff {
        out.s(" (correct)");
    } else {
        out.s(" (incorrect -> 0x");
        hex(out, should_be(carried, sum), 4);
        out.s(")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_be_is_the_right_checksum() {
        // A header with a zeroed checksum: the sum without it, complemented.
        let hdr = [
            0x45, 0, 0, 0x3c, 0xa5, 0x34, 0x40, 0, 0x40, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        let sum = ones_sum(&[&hdr]);
        assert_eq!(should_be(0, sum), 0x9785);
    }
}
