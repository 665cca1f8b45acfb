//! `-e`: the link-level header, as tcpdump prints it (print-ether.c,
//! print-sll.c, print-null.c, print-raw.c).

use crate::core::decode::LinkType;
use crate::core::emit::Emit;
use crate::pipeline::event::PacketEvent;

/// An Ethernet type's name, as tcpdump's `ethertype_values` has it.
fn ethertype_name(t: u16) -> &'static str {
    match t {
        0x0800 => "IPv4",
        0x86dd => "IPv6",
        0x8100 => "802.1Q",
        0x88a8 => "802.1Q-QinQ",
        0x9100 => "802.1Q-9100",
        _ => "Unknown",
    }
}

/// `ethertype IPv4 (0x0800)`, or `IPv4` with `-q`.
fn ethertype(out: &mut Vec<u8>, t: u16, quiet: bool) {
    out.s(if quiet { "" } else { "ethertype " })
        .s(ethertype_name(t));
    if !quiet {
        out.s(" (0x");
        hex4(out, t);
        out.s(")");
    }
}

fn hex4(out: &mut Vec<u8>, v: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((v >> shift) & 15)]);
    }
}

fn mac(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in b.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 15)]);
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |x| u16::from_be_bytes([x[0], x[1]]))
}

/// Linux cooked packet types (`sll_pkttype_values`).
pub fn pkttype_name(t: u16) -> &'static str {
    match t {
        0 => "In",
        1 => "B",
        2 => "M",
        3 => "P",
        4 => "Out",
        _ => "?",
    }
}

/// Writes the link-level header tcpdump `-e` prints before the IP part
/// (which then has no `IP ` word).
pub fn write_header(out: &mut Vec<u8>, ev: &PacketEvent, quiet: bool) {
    let f = ev.frame;
    let len = ev.wire_len;
    match ev.seg.link.kind {
        LinkType::Ethernet => {
            let (Some(dst), Some(src)) = (f.get(..6), f.get(6..12)) else {
                return;
            };
            mac(out, src);
            out.s(" > ");
            mac(out, dst);
            out.s(", ");
            let mut at = 12;
            let mut printed_length = false;
            let mut t = be16(f, at);
            while matches!(t, 0x8100 | 0x88a8 | 0x9100) {
                ethertype(out, t, quiet);
                if printed_length {
                    out.s(", ");
                } else {
                    out.s(", length ").n(len).s(": ");
                    printed_length = true;
                }
                let tci = be16(f, at + 2);
                out.s("vlan ").n(tci & 0xfff).s(", p ").n(tci >> 13);
                if tci & 0x1000 != 0 {
                    out.s(", DEI");
                }
                out.s(", ");
                at += 4;
                t = be16(f, at);
            }
            ethertype(out, t, quiet);
            if printed_length {
                out.s(", ");
            } else {
                out.s(", length ").n(len).s(": ");
            }
        }
        LinkType::LinuxSll => {
            // `%3s`: the packet type right-aligned in three columns.
            let name = pkttype_name(be16(f, 0));
            for _ in name.len()..3 {
                out.push(b' ');
            }
            out.s(name).s(" ");
            if be16(f, 4) == 6
                && let Some(addr) = f.get(6..12)
            {
                mac(out, addr);
                out.s(" ");
            }
            if !quiet {
                ethertype(out, be16(f, 14), false);
                out.s(", length ").n(len).s(": ");
            }
        }
        LinkType::LinuxSll2 => {
            let index = f
                .get(4..8)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            out.s("ifindex ").n(index).s(" ");
            if f.get(11) == Some(&6)
                && let Some(addr) = f.get(12..18)
            {
                mac(out, addr);
                out.s(" ");
            }
            if !quiet {
                ethertype(out, be16(f, 0), false);
                out.s(", length ").n(len).s(": ");
            }
        }
        LinkType::Null | LinkType::Loop => {
            let Some(b) = f.get(..4) else { return };
            let family = if ev.seg.link.kind == LinkType::Loop {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            } else {
                // The capturing host's byte order: the family is small.
                let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if le <= 0xffff {
                    le
                } else {
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
                }
            };
            let name = match family {
                2 => "IPv4",
                24 | 28 | 30 => "IPv6",
                _ => "Unknown",
            };
            if quiet {
                out.s(name);
            } else {
                out.s("AF ").s(name).s(" (").n(family).s(")");
            }
            out.s(", length ").n(len).s(": ");
        }
        LinkType::Raw => {
            out.s("ip: ");
        }
    }
}
