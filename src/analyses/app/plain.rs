//! Request/answer protocols whose keepalive is one small message each way,
//! recognized when a segment is exactly that message (a pooled client
//! sends its ping alone, on an otherwise idle connection): Redis `PING`
//! (RESP `*1\r\n$4\r\nPING\r\n` or inline `PING\r\n`) answered `+PONG\r\n`
//! (or, in subscribed mode, `*2\r\n$4\r\npong\r\n$0\r\n\r\n`); MySQL
//! `COM_PING` (packet `01 00 00 00 0e`) answered by an OK packet (sequence
//! 1, first byte 0x00), and `COM_QUIT` (`01 00 00 00 01`). A PING inside a
//! pipeline of other commands is not seen.

use super::{AppEvent, AppNote, Label, Protocol, State};
use crate::analyses::Ctx;

const RESP_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const COM_PING: &[u8] = &[1, 0, 0, 0, 0x0e];
const COM_QUIT: &[u8] = &[1, 0, 0, 0, 0x01];

/// Exactly one Redis PING, RESP or inline, any case.
pub fn is_redis_ping(p: &[u8]) -> bool {
    p.eq_ignore_ascii_case(RESP_PING) || p.eq_ignore_ascii_case(b"PING\r\n")
}

fn is_redis_pong(p: &[u8]) -> bool {
    p == b"+PONG\r\n" || p.eq_ignore_ascii_case(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
}

/// A RESP command: an array of bulk strings (`*3\r\n$3\r\nSET\r\n…`).
pub fn is_resp_command(p: &[u8]) -> bool {
    let Some(rest) = p.strip_prefix(b"*") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=4).contains(&digits) && rest[digits..].starts_with(b"\r\n$")
}

/// A MySQL/MariaDB initial handshake: one packet, sequence 0, protocol
/// version 10, a NUL-terminated server version.
pub fn is_mysql_greeting(p: &[u8]) -> bool {
    p.len() > 6
        && usize::from(p[0]) | usize::from(p[1]) << 8 | usize::from(p[2]) << 16 == p.len() - 4
        && p[3] == 0
        && p[4] == 0x0a
        && p[5..].iter().take(64).any(|&b| b == 0)
}

pub fn is_com_ping(p: &[u8]) -> bool {
    p == COM_PING
}

/// A TLS record header: content type 20–23, version 3.x, a plausible length.
pub fn is_tls_record(p: &[u8]) -> bool {
    p.len() >= 5
        && (20..=23).contains(&p[0])
        && p[1] == 3
        && p[2] <= 4
        && usize::from(u16::from_be_bytes([p[3], p[4]])) <= (1 << 14) + 2048
}

/// One segment of a Redis or MySQL connection.
pub fn segment(state: &mut State, cx: &Ctx, note: &mut AppNote) {
    let p = cx.seg.payload;
    if p.len() != cx.seg.len as usize {
        return;
    }
    let side = cx.from;
    let outstanding = !state.pingers[side.other().idx()].outstanding.is_empty();
    match state.protocol {
        Protocol::Redis if is_redis_ping(p) => {
            let ev = state.ping(side, cx.ts, 0, true);
            note.add(Some(Label::Ping), ev);
        }
        Protocol::Redis if is_redis_pong(p) => {
            let ev = state.answer(side, cx.ts, None);
            note.add(Some(Label::Pong), ev);
        }
        Protocol::Mysql if p == COM_PING => {
            let ev = state.ping(side, cx.ts, 0, true);
            note.add(Some(Label::Ping), ev);
        }
        Protocol::Mysql if p == COM_QUIT => {
            note.add(
                Some(Label::Close),
                AppEvent::Close {
                    protocol: Protocol::Mysql,
                    code: None,
                },
            );
        }
        Protocol::Mysql if outstanding && p.len() >= 5 && p[3] == 1 && p[4] == 0 => {
            let ev = state.answer(side, cx.ts, None);
            note.add(Some(Label::Pong), ev);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_and_mysql_messages_by_content() {
        assert!(is_redis_ping(b"*1\r\n$4\r\nping\r\n"));
        assert!(is_redis_ping(b"PING\r\n"));
        assert!(!is_redis_ping(b"PING\r\nPING\r\n"));
        assert!(is_resp_command(
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
        ));
        assert!(!is_resp_command(b"*hello"));
        let greeting = b"\x0a\x00\x00\x00\x0a11.4.2-MariaDB\x00rest";
        let mut g = vec![(greeting.len() - 4) as u8];
        g.extend_from_slice(&greeting[1..]);
        assert!(is_mysql_greeting(&g));
        assert!(is_com_ping(&[1, 0, 0, 0, 0x0e]));
        assert!(is_tls_record(b"\x17\x03\x03\x00\x22"));
        assert!(!is_tls_record(b"GET /"));
    }
}
