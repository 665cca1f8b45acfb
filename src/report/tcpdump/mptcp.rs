//! print-mptcp.c: the MPTCP option (kind 30) as tcpdump 4.99 prints it,
//! after `mptcp` (`options.rs` writes the name and the cut or `[bad opt]`).

use super::bytes::{be16, be32, be64, hex, x};
use crate::core::decode::flags;
use crate::core::emit::Emit;

/// print-mptcp.c's `mptcp_print`: `data` is the option after its kind and
/// length (`len` counts them); false sends tcpdump to `[bad opt]`.
pub(super) fn print(out: &mut Vec<u8>, data: &[u8], len: usize, tcp_flags: u8) -> bool {
    if len < 3 {
        return false;
    }
    let subtype = (data[0] >> 4).min(8);
    out.s(" ").n(len).s(" ");
    out.s([
        "capable",
        "join",
        "dss",
        "add-addr",
        "rem-addr",
        "prio",
        "fail",
        "fast-close",
        "unknown",
    ][usize::from(subtype)]);
    // Offsets below count from the option's kind byte, as print-mptcp.c's
    // structures do.
    let at = |i: usize| data[i - 2];
    let syn = tcp_flags & flags::SYN != 0;
    let ack = tcp_flags & flags::ACK != 0;
    match subtype {
        0 => {
            if !((len == 12 || len == 4) && syn) && !((len == 20 || len == 22) && ack && !syn) {
                return false;
            }
            let version = at(2) & 0xf;
            if version > 1 {
                out.s(" Unknown Version (").n(version).s(")");
                return true;
            }
            out.s(" v").n(version);
            if at(3) & 0x80 != 0 {
                out.s(" csum");
            }
            if len == 12 || len >= 20 {
                out.s(" {0x");
                x(out, be64(&data[2..]));
                if len >= 20 {
                    out.s(",0x");
                    x(out, be64(&data[10..]));
                }
                out.s("}");
            }
            true
        }
        1 => {
            if !matches!(
                (len, syn, ack),
                (12, true, _) | (16, true, true) | (24, _, true)
            ) {
                return false;
            }
            if len != 24 {
                if at(2) & 1 != 0 {
                    out.s(" backup");
                }
                out.s(" id ").n(at(3));
            }
            match len {
                12 => {
                    out.s(" token 0x");
                    x(out, u64::from(be32(&data[2..])));
                    out.s(" nonce 0x");
                    x(out, u64::from(be32(&data[6..])));
                }
                16 => {
                    out.s(" hmac 0x");
                    x(out, be64(&data[2..]));
                    out.s(" nonce 0x");
                    x(out, u64::from(be32(&data[10..])));
                }
                _ => {
                    out.s(" hmac 0x");
                    hex(out, &data[2..22]);
                }
            }
            true
        }
        2 => dss(out, data, len, syn),
        3 => add_addr(out, data, len),
        4 => {
            if len < 4 {
                return false;
            }
            out.s(" id");
            for &id in &data[1..len - 2] {
                out.s(" ").n(id);
            }
            true
        }
        5 => {
            if len != 3 && len != 4 {
                return false;
            }
            out.s(if at(2) & 1 != 0 {
                " backup"
            } else {
                " non-backup"
            });
            if len == 4 {
                out.s(" id ").n(at(3));
            }
            true
        }
        6 | 7 => {
            if len != 12 {
                return false;
            }
            if subtype == 6 {
                out.s(" seq ").n(be64(&data[2..]));
            } else {
                out.s(" key 0x");
                x(out, be64(&data[2..]));
            }
            true
        }
        _ => true,
    }
}

fn dss(out: &mut Vec<u8>, data: &[u8], len: usize, syn: bool) -> bool {
    if len < 4 || syn {
        return false;
    }
    let f = data[1];
    if f & 0x10 != 0 {
        out.s(" fin");
    }
    let mut o = &data[2..];
    // Reads an 8- or 4-byte number.
    let mut num = |out: &mut Vec<u8>, wide: bool| -> bool {
        let n = if wide { 8 } else { 4 };
        if o.len() < n {
            return false;
        }
        if wide {
            out.n(be64(o));
        } else {
            out.n(be32(o));
        }
        o = &o[n..];
        true
    };
    if f & 0x01 != 0 {
        out.s(" ack ");
        if !num(out, f & 0x02 != 0) {
            return false;
        }
    }
    if f & 0x04 != 0 {
        out.s(" seq ");
        if !num(out, f & 0x08 != 0) {
            return false;
        }
        out.s(" subseq ");
        if !num(out, false) {
            return false;
        }
        if o.len() < 2 {
            return false;
        }
        out.s(" len ").n(be16(o));
        o = &o[2..];
        if o.len() >= 2 {
            out.s(" csum 0x");
            x(out, u64::from(be16(o)));
            o = &o[2..];
        }
    }
    o.is_empty()
}

fn add_addr(out: &mut Vec<u8>, data: &[u8], len: usize) -> bool {
    if ![8, 10, 16, 18, 20, 22, 28, 30].contains(&len) {
        return false;
    }
    out.s(" ").s(match data[0] & 0xf {
        6 => "v0-ip6",
        4 => "v0-ip4",
        1 => "v1-echo",
        0 => "v1",
        _ => "[bad version/echo]",
    });
    out.s(" id ").n(data[1]);
    let addr = &data[2..];
    let (alen, port_at) = if len <= 18 { (4, 4) } else { (16, 16) };
    let ip: std::net::IpAddr = if alen == 4 {
        std::net::Ipv4Addr::from(be32(addr)).into()
    } else {
        let mut b = [0u8; 16];
        b.copy_from_slice(&addr[..16]);
        std::net::Ipv6Addr::from(b).into()
    };
    out.s(" ").ip(ip);
    let with_port = [10, 18, 22, 30].contains(&len);
    if with_port {
        out.s(":").n(be16(&addr[port_at..]));
    }
    if [16, 18, 28, 30].contains(&len) {
        let mac_at = port_at + if with_port { 2 } else { 0 };
        out.s(" hmac 0x");
        x(out, be64(&addr[mac_at..]));
    }
    true
}
