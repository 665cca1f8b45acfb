//! `, options [...]` as tcpdump 4.99 prints them (print-tcp.c's option
//! loop, print-mptcp.c, `print_tcp_fastopen_option`), byte for byte, the
//! odd cases included: `[bad opt]` ends the line, a fixed-size option with
//! the wrong length prints its fixed size and `[len N]`, an option cut by
//! the snaplen ends ` [|tcp]` (and `>` after the first option, when the
//! cut is found by a length check), md5 as a Debian tcpdump (built with
//! libcrypto, no `-M`) prints it.

use super::bytes::{be16, be32, hex, x};
use super::mptcp;
use crate::core::decode::Segment;
use crate::core::emit::Emit;

/// How the options ended the line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ended {
    /// `]` written; `, length N` follows.
    Whole,
    /// Cut by the snaplen, found by a length check: ` [|tcp]` written
    /// (`>` after the first option), the line ends.
    Cut,
    /// Cut by the snaplen, found by reading past the captured bytes
    /// (tcpdump's longjmp): ` [|tcp]` written, the line ends.
    Read,
    /// `[bad opt]` written (and `]` after the first option): the line ends.
    Bad,
}

/// tcpdump's `tcp_option_values`; `None`: `unknown-N`.
fn name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        0 => "eol",
        1 => "nop",
        2 => "mss",
        3 => "wscale",
        4 => "sackOK",
        5 => "sack",
        6 => "echo",
        7 => "echoreply",
        8 => "TS",
        11 => "cc",
        12 => "ccnew",
        13 => "",
        19 => "md5",
        20 => "scps",
        28 => "uto",
        29 => "tcp-ao",
        30 => "mptcp",
        34 => "tfo",
        254 => "exp",
        _ => return None,
    })
}

/// Why an option stopped the line.
enum Stop {
    /// A length check failed (`goto bad`).
    Bad,
    /// A length check found the bytes not captured (`goto trunc`).
    Trunc,
    /// A read past the captured bytes (tcpdump's longjmp).
    Longjmp,
}

/// Writes the options' text (after `, options [`) for `seg`, its SACK
/// blocks relative to `sack_base`.
pub fn write(out: &mut Vec<u8>, seg: &Segment, sack_base: u32) -> Ended {
    let opts = seg.options;
    let mut hlen = usize::from(seg.header_len).saturating_sub(20);
    let mut at = 0usize;
    let mut first = true;
    let mut proto = "tcp";
    while hlen > 0 {
        if !first {
            out.s(",");
        }
        let Some(&kind) = opts.get(at) else {
            return cut(out, proto, first, Stop::Longjmp);
        };
        at += 1;
        let len = if kind <= 1 {
            1
        } else {
            let Some(&l) = opts.get(at) else {
                return cut(out, proto, first, Stop::Longjmp);
            };
            at += 1;
            let l = usize::from(l);
            if l < 2 || l > hlen {
                return cut(out, proto, first, Stop::Bad);
            }
            hlen -= 1;
            l
        };
        hlen -= 1;
        let rest = &opts[at..];
        // The common ones, whole and captured, without the general path
        // (the timeline prints them on nearly every line).
        if kind == 1 {
            out.s("nop");
            first = false;
            continue;
        }
        if kind == 8 && len == 10 && hlen >= 8 && rest.len() >= 8 {
            out.s("TS val ")
                .n(be32(rest))
                .s(" ecr ")
                .n(be32(&rest[4..]));
            at += 8;
            hlen -= 8;
            first = false;
            continue;
        }
        match name(kind) {
            Some(n) => out.s(n),
            None => out.s("unknown-").n(kind),
        };
        let datalen = match one(out, seg, kind, len, hlen, rest, sack_base) {
            Ok(d) => d,
            Err(stop) => return cut(out, proto, first, stop),
        };
        if kind == 30 {
            // mptcp_print names itself: a later cut says ` [|mptcp]`.
            proto = "mptcp";
        }
        at += datalen;
        hlen -= datalen;
        let spec = datalen + if kind <= 1 { 1 } else { 2 };
        if spec != len {
            out.s("[len ").n(len).s("]");
        }
        first = false;
        if kind == 0 {
            break;
        }
    }
    out.s("]");
    Ended::Whole
}

fn cut(out: &mut Vec<u8>, proto: &str, first: bool, stop: Stop) -> Ended {
    match stop {
        Stop::Bad => {
            out.s("[bad opt]");
            if !first {
                out.s("]");
            }
            Ended::Bad
        }
        Stop::Trunc => {
            out.s(" [|").s(proto).s("]");
            if !first {
                out.s(">");
            }
            Ended::Cut
        }
        Stop::Longjmp => {
            out.s(" [|").s(proto).s("]");
            Ended::Read
        }
    }
}

/// tcpdump's `LENCHECK(l)`: `l` bytes left in the header and captured.
fn lencheck(l: usize, hlen: usize, rest: &[u8]) -> Result<(), Stop> {
    if l > hlen {
        Err(Stop::Bad)
    } else if l > rest.len() {
        Err(Stop::Trunc)
    } else {
        Ok(())
    }
}

/// Bytes `range` of `rest` in hex, one `LENCHECK` per byte as tcpdump
/// prints them (a cut shows the bytes before it).
fn hex_checked(
    out: &mut Vec<u8>,
    rest: &[u8],
    range: std::ops::Range<usize>,
    hlen: usize,
) -> Result<(), Stop> {
    for i in range {
        lencheck(i + 1, hlen, rest)?;
        hex(out, &rest[i..=i]);
    }
    Ok(())
}

/// One option's data after its name; the number of bytes it accounts for.
fn one(
    out: &mut Vec<u8>,
    seg: &Segment,
    kind: u8,
    len: usize,
    hlen: usize,
    rest: &[u8],
    sack_base: u32,
) -> Result<usize, Stop> {
    let fixed = |n: usize| lencheck(n, hlen, rest).map(|()| n);
    Ok(match kind {
        0 | 1 | 4 => 0,
        2 => {
            let d = fixed(2)?;
            out.s(" ").n(be16(rest));
            d
        }
        3 => {
            let d = fixed(1)?;
            out.s(" ").n(rest[0]);
            d
        }
        5 => {
            let datalen = len - 2;
            if !datalen.is_multiple_of(8) {
                out.s(" invalid sack");
            } else {
                out.s(" ").n(datalen / 8).s(" ");
                for i in (0..datalen).step_by(8) {
                    lencheck(i + 8, hlen, rest)?;
                    let s = be32(&rest[i..]).wrapping_sub(sack_base);
                    let e = be32(&rest[i + 4..]).wrapping_sub(sack_base);
                    out.s("{").n(s).s(":").n(e).s("}");
                }
            }
            datalen
        }
        6 | 7 | 11 | 12 | 13 => {
            let d = fixed(4)?;
            out.s(" ").n(be32(rest));
            d
        }
        8 => {
            let d = fixed(8)?;
            out.s(" val ").n(be32(rest)).s(" ecr ").n(be32(&rest[4..]));
            d
        }
        19 => {
            let d = fixed(16)?;
            out.s(" ");
            if seg.payload.len() < seg.len as usize {
                out.s("snaplen too short, ");
            } else {
                out.s("shared secret not supplied with -M, ");
            }
            out.s("can't check - ");
            hex(out, &rest[..16]);
            d
        }
        20 => {
            let d = fixed(2)?;
            out.s(" cap ");
            hex(out, &rest[..1]);
            out.s(" id ").n(rest[1]);
            d
        }
        28 => {
            let d = fixed(2)?;
            let v = be16(rest);
            out.s(" 0x");
            x(out, u64::from(v));
            let secs = if v & 1 != 0 {
                u32::from(v >> 1) * 60
            } else {
                u32::from(v >> 1)
            };
            out.s(" ").n(secs);
            d
        }
        29 => {
            let datalen = len - 2;
            if datalen < 2 {
                out.s(" (invalid)");
            } else {
                lencheck(1, hlen, rest)?;
                out.s(" keyid ").n(rest[0]);
                lencheck(2, hlen, rest)?;
                out.s(" rnextkeyid ").n(rest[1]);
                if datalen > 2 {
                    out.s(" mac 0x");
                    hex_checked(out, rest, 2..datalen, hlen)?;
                }
            }
            datalen
        }
        30 => {
            let datalen = len - 2;
            lencheck(datalen, hlen, rest)?;
            if !mptcp::print(out, &rest[..datalen], len, seg.flags) {
                return Err(Stop::Bad);
            }
            datalen
        }
        34 => {
            let datalen = len - 2;
            lencheck(datalen, hlen, rest)?;
            out.s(" ");
            fastopen(out, &rest[..datalen], false);
            datalen
        }
        254 => {
            let datalen = len - 2;
            lencheck(datalen, hlen, rest)?;
            if datalen < 2 {
                return Err(Stop::Bad);
            }
            out.s("-");
            let magic = be16(rest);
            if magic == 0xf989 {
                fastopen(out, &rest[2..datalen], true);
            } else {
                hex(out, &rest[..2]);
            }
            datalen
        }
        _ => {
            let datalen = len - 2;
            if datalen > 0 {
                out.s(" 0x");
            }
            hex_checked(out, rest, 0..datalen, hlen)?;
            datalen
        }
    })
}

/// `print_tcp_fastopen_option`.
fn fastopen(out: &mut Vec<u8>, cookie: &[u8], exp: bool) {
    if exp {
        out.s("tfo");
    }
    if cookie.is_empty() {
        out.s(" cookiereq");
    } else if !cookie.len().is_multiple_of(2) || cookie.len() < 4 || cookie.len() > 16 {
        out.s(" (invalid)");
    } else {
        out.s(" cookie ");
        hex(out, cookie);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options' text for a segment with these `flags` whose header
    /// carries `opts` (padded to 4 bytes by the caller), of which
    /// `captured` bytes are in the capture.
    fn shown(flags: u8, opts: &[u8], captured: usize) -> (String, Ended) {
        let c = "10.0.0.1:40000".parse().unwrap();
        let s = "10.0.0.2:80".parse().unwrap();
        let mut seg = crate::craft::decoded(c, s, flags, 1, 1, b"");
        seg.header_len = 20 + opts.len() as u16;
        seg.options = &opts[..captured];
        let mut out = Vec::new();
        let e = write(&mut out, &seg, 0);
        (String::from_utf8(out).unwrap(), e)
    }

    fn all(flags: u8, opts: &[u8]) -> String {
        shown(flags, opts, opts.len()).0
    }

    const ACK: u8 = crate::core::decode::flags::ACK;
    const SYN: u8 = crate::core::decode::flags::SYN;

    #[test]
    fn mptcp_as_print_mptcp_prints_it() {
        // Seen in tcpdump's mptcp-v0.pcap and mptcp-fclose.pcap.
        let capable = [
            30, 12, 0x00, 0x81, 0x9b, 0x59, 0xbe, 0x3d, 0x69, 0x5e, 0x66, 0xa7,
        ];
        assert_eq!(
            all(SYN, &capable),
            "mptcp 12 capable v0 csum {0x9b59be3d695e66a7}]"
        );
        let dss = [
            30, 20, 0x20, 0x05, 0xd5, 0x2a, 0xca, 0x2b, 0xd1, 0xb9, 0x7d, 0x71, 0, 0, 0, 0x7a, 0,
            0x70, 0xeb, 0x29,
        ];
        assert_eq!(
            all(ACK, &dss),
            "mptcp 20 dss ack 3576351275 seq 3518594417 subseq 122 len 112 csum 0xeb29]"
        );
        let add = [
            30, 16, 0x30, 0x01, 10, 0, 2, 1, 0xf8, 0x29, 0x58, 0x62, 0xf6, 0x45, 0xdf, 0x19,
        ];
        assert_eq!(
            all(ACK, &add),
            "mptcp 16 add-addr v1 id 1 10.0.2.1 hmac 0xf8295862f645df19]"
        );
        // A capable option on a bare ACK is not one: tcpdump says bad.
        assert_eq!(
            shown(ACK, &capable, 12),
            ("mptcp 12 capable[bad opt]".into(), Ended::Bad)
        );
    }

    #[test]
    fn fast_open_md5_uto_and_unknown_options() {
        assert_eq!(all(SYN, &[254, 4, 0xf9, 0x89]), "exp-tfo cookiereq]");
        assert_eq!(all(SYN, &[254, 4, 0x12, 0x34]), "exp-1234]");
        assert_eq!(all(SYN, &[34, 2, 1, 1]), "tfo  cookiereq,nop,nop]");
        assert_eq!(
            all(SYN, &[34, 6, 1, 2, 3, 4, 1, 1]),
            "tfo  cookie 01020304,nop,nop]"
        );
        let mut md5 = vec![19, 18];
        md5.extend(0..16u8);
        md5.extend([0, 0]);
        assert_eq!(
            all(ACK, &md5),
            "md5 shared secret not supplied with -M, can't check - \
             000102030405060708090a0b0c0d0e0f,eol]"
        );
        assert_eq!(all(ACK, &[28, 4, 0x01, 0x2d]), "uto 0x12d 9000]");
        assert_eq!(all(ACK, &[253, 4, 1, 2]), "unknown-253 0x0102]");
        assert_eq!(all(ACK, &[99, 2, 1, 1]), "unknown-99,nop,nop]");
    }

    #[test]
    fn odd_lengths_bad_options_and_cuts() {
        // A timestamp option of length 6 prints 8 bytes and its length.
        let ts = [8, 6, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1];
        assert_eq!(all(ACK, &ts), "TS val 1 ecr 2[len 6],nop,nop]");
        // A length past the header: bad, and the line ends there.
        assert_eq!(
            shown(ACK, &[1, 1, 8, 40], 4),
            ("nop,nop,[bad opt]]".into(), Ended::Bad)
        );
        assert_eq!(
            shown(ACK, &[8, 1, 0, 0], 4),
            ("[bad opt]".into(), Ended::Bad)
        );
        // Cut before an option's kind (a read past the captured bytes),
        // and inside a checked length.
        assert_eq!(
            shown(ACK, &[1, 1, 1, 1], 2),
            ("nop,nop, [|tcp]".into(), Ended::Read)
        );
        let ts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(
            shown(ACK, &ts, 6),
            ("nop,nop,TS [|tcp]>".into(), Ended::Cut)
        );
    }
}
