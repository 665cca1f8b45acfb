//! What tcpdump prints after `length N` for the text protocols it knows by
//! port (tcpdump 4.99, print-tcp.c's port chain; util-print.c's
//! `txtproto_print`, `fetch_token` and `print_txt_line`; print-ssh.c):
//! `: HTTP: GET / HTTP/1.1`, `: FTP: 220 …`, `: SMTP: …`, `: RTSP: …`,
//! `: WHOIS: …`, `: SSH: SSH-2.0-…`. With `-v` the text protocols print
//! `, length: N` and then every text line on its own `\n\t` line
//! ([`text_lines`], written after kacap's words as the `-x` dump is).
//!
//! The ports tcpdump gives to a protocol kacap does not print (telnet, BGP,
//! PPTP, Redis, SMB, OpenFlow, DNS, …) still take their place in the chain,
//! so a connection between port 23 and port 80 is not printed as HTTP.

use crate::core::decode::Segment;
use crate::core::emit::Emit;

/// The printers of tcpdump's chain that kacap reproduces.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Http,
    Rtsp,
    Ftp,
    Smtp,
    Whois,
    Ssh,
    /// A port tcpdump hands to a printer kacap does not reproduce.
    Other,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Http => "http",
            Proto::Rtsp => "rtsp",
            Proto::Ftp => "ftp",
            Proto::Smtp => "smtp",
            Proto::Whois => "whois",
            Proto::Ssh => "ssh",
            Proto::Other => "",
        }
    }

    /// Request names (`txtproto_print`'s `cmds`); none: every payload is a
    /// request or a response (FTP, SMTP, WHOIS).
    fn commands(self) -> Option<&'static [&'static str]> {
        match self {
            Proto::Http => Some(HTTP_COMMANDS),
            Proto::Rtsp => Some(RTSP_COMMANDS),
            _ => None,
        }
    }
}

/// print-http.c's `httpcmds`.
const HTTP_COMMANDS: &[&str] = &[
    "GET",
    "PUT",
    "COPY",
    "HEAD",
    "LOCK",
    "MOVE",
    "POLL",
    "POST",
    "BCOPY",
    "BMOVE",
    "MKCOL",
    "TRACE",
    "LABEL",
    "MERGE",
    "DELETE",
    "SEARCH",
    "UNLOCK",
    "REPORT",
    "UPDATE",
    "NOTIFY",
    "BDELETE",
    "CONNECT",
    "OPTIONS",
    "CHECKIN",
    "PROPFIND",
    "CHECKOUT",
    "CCM_POST",
    "SUBSCRIBE",
    "PROPPATCH",
    "BPROPFIND",
    "BPROPPATCH",
    "UNCHECKOUT",
    "MKACTIVITY",
    "MKWORKSPACE",
    "UNSUBSCRIBE",
    "RPC_CONNECT",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
];

/// print-rtsp.c's `rtspcmds`.
const RTSP_COMMANDS: &[&str] = &[
    "DESCRIBE",
    "ANNOUNCE",
    "GET_PARAMETER",
    "OPTIONS",
    "PAUSE",
    "PLAY",
    "RECORD",
    "REDIRECT",
    "SETUP",
    "SET_PARAMETER",
    "TEARDOWN",
];

/// print-tcp.c's chain, in its order (the first port that matches, either
/// side, picks the printer). NFS (2049) is in the chain only for payloads
/// of 4 bytes or more; it comes after every protocol here, so it does not
/// change which of them prints.
fn proto_of(seg: &Segment) -> Option<Proto> {
    const CHAIN: &[(&[u16], Proto)] = &[
        (&[23], Proto::Other),         // telnet
        (&[25], Proto::Smtp),          // smtp
        (&[43], Proto::Whois),         // whois
        (&[179], Proto::Other),        // bgp
        (&[1723], Proto::Other),       // pptp
        (&[6379], Proto::Other),       // redis (resp)
        (&[22], Proto::Ssh),           // ssh
        (&[139, 445], Proto::Other),   // netbios-ssn, smb
        (&[10288], Proto::Other),      // beep
        (&[6633, 6653], Proto::Other), // openflow
        (&[21], Proto::Ftp),           // ftp
        (&[80, 8080], Proto::Http),    // http
        (&[554, 8554], Proto::Rtsp),   // rtsp
    ];
    CHAIN
        .iter()
        .find(|(ports, _)| ports.contains(&seg.sport) || ports.contains(&seg.dport))
        .map(|&(_, p)| p)
}

fn printable(c: u8) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// Reads byte `i` of the payload as tcpdump's `GET_U_1` does: past the
/// captured bytes the printer stops (`None`: the line ends ` [|proto]`).
fn byte(payload: &[u8], i: usize) -> Option<u8> {
    payload.get(i).copied()
}

/// `fetch_token`: the token at `idx` and the index after the blanks that
/// follow it, or `None` (not a token; tcpdump's 0).
fn fetch_token(payload: &[u8], mut idx: usize, len: usize) -> Option<(&[u8], usize)> {
    const MAX_TOKEN: usize = 128;
    let start = idx;
    while idx < len {
        let c = byte(payload, idx)?;
        if !c.is_ascii() {
            return None;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            break;
        }
        if !printable(c) || idx - start + 2 > MAX_TOKEN + 1 {
            return None;
        }
        idx += 1;
    }
    if idx == start {
        return None;
    }
    let token = &payload[start..idx];
    while idx < len {
        let Some(c) = byte(payload, idx) else { break };
        if c == b'\r' || c == b'\n' || !printable(c) || (c != b' ' && c != b'\t') {
            break;
        }
        idx += 1;
    }
    Some((token, idx))
}

/// How `print_txt_line` ends.
enum Line {
    /// A whole line (without its CRLF or LF), and where the next starts.
    Whole(usize, usize, usize),
    /// Printable text up to the payload's end with no line end: printed,
    /// then ` [|proto]`.
    Unended(usize, usize),
    /// Binary data or a lone CR: nothing printed.
    Binary,
    /// The captured bytes ended first (tcpdump's longjmp): ` [|proto]`.
    Cut,
}

fn txt_line(payload: &[u8], start: usize, len: usize) -> Line {
    let mut idx = start;
    while idx < len {
        let Some(c) = byte(payload, idx) else {
            return Line::Cut;
        };
        if c == b'\n' {
            return Line::Whole(start, idx, idx + 1);
        } else if c == b'\r' {
            if idx + 1 >= len {
                return Line::Binary;
            }
            match byte(payload, idx + 1) {
                None => return Line::Cut,
                Some(b'\n') => return Line::Whole(start, idx, idx + 2),
                Some(_) => return Line::Binary,
            }
        } else if !printable(c) && c != b'\t' {
            return Line::Binary;
        }
        idx += 1;
    }
    Line::Unended(start, idx)
}

fn trunc(out: &mut Vec<u8>, p: Proto) {
    out.s(" [|").s(p.name()).s("]");
}

/// Whether `txtproto_print` prints the payload's lines: a known request
/// name first, or a three-digit code as the second token.
fn is_message(p: Proto, payload: &[u8], len: usize) -> bool {
    let Some(commands) = p.commands() else {
        return true;
    };
    let Some((token, idx)) = fetch_token(payload, 0, len) else {
        return false;
    };
    if commands
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(token))
    {
        return true;
    }
    // RESP_CODE_SECOND_TOKEN: the response code is the next token.
    match fetch_token(payload, idx, len) {
        Some((t, _)) => t.len() == 3 && t.iter().all(u8::is_ascii_digit),
        None => false,
    }
}

fn caps(out: &mut Vec<u8>, p: Proto) {
    for &c in p.name().as_bytes() {
        out.push(c.to_ascii_uppercase());
    }
}

/// The text after `length N` on the segment's tcpdump line (nothing for an
/// empty payload or a port kacap does not print). With `verbose`, the text
/// protocols end the line with `, length: N`; their lines follow from
/// [`text_lines`]. True when the captured bytes ended before the printer
/// did (tcpdump's longjmp: its `-x` dump then starts at the link header).
pub fn write(out: &mut Vec<u8>, seg: &Segment, verbose: bool) -> bool {
    if seg.len == 0 {
        return false;
    }
    let Some(p) = proto_of(seg) else {
        return false;
    };
    let (payload, len) = (seg.payload, seg.len as usize);
    match p {
        Proto::Other => false,
        Proto::Ssh => ssh(out, payload, len),
        _ => {
            out.s(": ");
            let print = is_message(p, payload, len);
            caps(out, p);
            if !print {
                return false;
            }
            if verbose {
                out.s(", length: ").n(seg.len);
                // Cut before its first line ends: the mark stays on this
                // line (the text lines follow the words).
                let cut = matches!(txt_line(payload, 0, len), Line::Cut);
                if cut {
                    trunc(out, p);
                }
                return cut;
            }
            match txt_line(payload, 0, len) {
                Line::Whole(a, b, _) => {
                    out.s(": ");
                    out.extend_from_slice(&payload[a..b]);
                }
                Line::Unended(a, b) => {
                    out.s(": ");
                    out.extend_from_slice(&payload[a..b]);
                    trunc(out, p);
                }
                Line::Binary => {}
                Line::Cut => {
                    trunc(out, p);
                    return true;
                }
            }
            false
        }
    }
}

/// `-v`'s text lines after the segment's line (each `\n\t…`), as
/// `txtproto_print` prints them until a line is not text. True when the
/// captured bytes ended first.
pub fn text_lines(out: &mut Vec<u8>, seg: &Segment) -> bool {
    if seg.len == 0 {
        return false;
    }
    let Some(p) = proto_of(seg) else {
        return false;
    };
    let (payload, len) = (seg.payload, seg.len as usize);
    if matches!(p, Proto::Other | Proto::Ssh) || !is_message(p, payload, len) {
        return false;
    }
    let mut idx = 0;
    while idx < len {
        match txt_line(payload, idx, len) {
            Line::Whole(a, b, next) => {
                out.s("\n\t");
                out.extend_from_slice(&payload[a..b]);
                idx = next;
            }
            Line::Unended(a, b) => {
                out.s("\n\t");
                out.extend_from_slice(&payload[a..b]);
                trunc(out, p);
                return false;
            }
            Line::Binary => return false,
            Line::Cut => {
                if idx > 0 {
                    trunc(out, p);
                }
                return true;
            }
        }
    }
    false
}

/// print-ssh.c: the version line (`SSH-…`) only, and only when it ends
/// within the payload.
fn ssh(out: &mut Vec<u8>, payload: &[u8], len: usize) -> bool {
    let cut = |out: &mut Vec<u8>| {
        trunc(out, Proto::Ssh);
        true
    };
    for (i, &want) in b"SSH-".iter().enumerate() {
        match byte(payload, i) {
            None => return cut(out),
            Some(c) if c != want => return false,
            Some(_) => {}
        }
    }
    let mut idx = 4;
    while idx < len {
        let Some(c) = byte(payload, idx) else {
            return cut(out);
        };
        let end = match c {
            b'\n' => true,
            b'\r' => match byte(payload, idx + 1) {
                _ if idx + 1 >= len => return false,
                None => return cut(out),
                Some(n) => {
                    if n != b'\n' {
                        return false;
                    }
                    true
                }
            },
            c if !printable(c) => return false,
            _ => false,
        };
        if end {
            out.s(": SSH: ");
            out.extend_from_slice(&payload[..idx]);
            return false;
        }
        idx += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What tcpdump prints after `length N` for `payload` between client
    /// port 40000 and `port`, of which `captured` bytes are in the capture:
    /// without `-v`, and with `-v` (its lines included).
    fn shown(port: u16, payload: &[u8], captured: usize) -> (String, String) {
        let (c, s) = (
            "10.0.0.1:40000".parse().unwrap(),
            format!("10.0.0.2:{port}").parse().unwrap(),
        );
        let mut seg = crate::craft::decoded(c, s, 0x18, 1, 1, &payload[..captured]);
        seg.len = payload.len() as u32;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write(&mut a, &seg, false);
        write(&mut b, &seg, true);
        text_lines(&mut b, &seg);
        (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
    }

    fn whole(port: u16, payload: &[u8]) -> (String, String) {
        shown(port, payload, payload.len())
    }

    #[test]
    fn a_request_line_and_with_v_every_header_line() {
        let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let (plain, v) = whole(80, req);
        assert_eq!(plain, ": HTTP: GET /a HTTP/1.1");
        assert_eq!(v, ": HTTP, length: 28\n\tGET /a HTTP/1.1\n\tHost: x\n\t");
        // Request names are matched without case; 8080 is HTTP too.
        assert_eq!(whole(8080, b"get / HTTP/1.0\n").0, ": HTTP: get / HTTP/1.0");
    }

    #[test]
    fn a_status_line_is_known_by_its_three_digit_second_token() {
        assert_eq!(
            whole(80, b"HTTP/1.1 200 OK\r\n\r\n").0,
            ": HTTP: HTTP/1.1 200 OK"
        );
        assert_eq!(
            whole(554, b"RTSP/1.0 200 OK\r\n").0,
            ": RTSP: RTSP/1.0 200 OK"
        );
        // Neither: the protocol's name alone (a body, TLS on port 80).
        assert_eq!(whole(80, b"hello world\r\n").0, ": HTTP");
        assert_eq!(whole(80, b"\x16\x03\x01\x02\x00").0, ": HTTP");
        assert_eq!(whole(80, b"HTTP/1.1 2000 OK\r\n").0, ": HTTP");
    }

    #[test]
    fn ftp_smtp_whois_print_any_first_line() {
        assert_eq!(whole(21, b"220 ready\r\n").0, ": FTP: 220 ready");
        assert_eq!(whole(25, b"EHLO x\r\n").0, ": SMTP: EHLO x");
        assert_eq!(whole(43, b"example.com\r\n").0, ": WHOIS: example.com");
        // Binary: the name alone.
        assert_eq!(whole(25, b"\x00\x01").0, ": SMTP");
    }

    #[test]
    fn a_line_without_its_end_is_marked_cut() {
        // All text but no line end in the payload.
        assert_eq!(
            whole(80, b"GET /very-long").0,
            ": HTTP: GET /very-long [|http]"
        );
        // The snaplen cut the line: tcpdump stops reading, nothing of it.
        assert_eq!(shown(80, b"GET /very-long\r\n", 10).0, ": HTTP [|http]");
        // A CR that is the payload's last byte, or not followed by LF: binary.
        assert_eq!(whole(21, b"220 ready\r").0, ": FTP");
        assert_eq!(whole(21, b"220\rready\n").0, ": FTP");
    }

    #[test]
    fn ssh_shows_its_version_line_only() {
        assert_eq!(
            whole(22, b"SSH-2.0-OpenSSH_9.2\r\n").0,
            ": SSH: SSH-2.0-OpenSSH_9.2"
        );
        assert_eq!(whole(22, b"SSH-2.0-OpenSSH_9.2").0, "");
        assert_eq!(whole(22, b"\x00\x00\x01\x0c").0, "");
        assert_eq!(shown(22, b"SSH-2.0", 2).0, " [|ssh]");
        // No `-v` lines for SSH.
        assert_eq!(whole(22, b"SSH-2.0-x\n").1, ": SSH: SSH-2.0-x");
    }

    #[test]
    fn the_port_chain_keeps_tcpdumps_order() {
        // Telnet (23) comes before HTTP: kacap prints neither.
        let c = "10.0.0.1:23".parse().unwrap();
        let s = "10.0.0.2:80".parse().unwrap();
        let seg = crate::craft::decoded(c, s, 0x18, 1, 1, b"GET / HTTP/1.1\r\n");
        let mut out = Vec::new();
        write(&mut out, &seg, false);
        assert!(out.is_empty());
        // SMTP (25) comes before SSH (22).
        assert_eq!(whole(25, b"SSH-2.0-x\r\n").0, ": SMTP: SSH-2.0-x");
        // Other ports, an empty payload: nothing.
        assert_eq!(whole(8000, b"GET / HTTP/1.1\r\n").0, "");
        assert_eq!(whole(80, b"").0, "");
    }
}
