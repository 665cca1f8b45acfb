//! Which application protocol a connection speaks, from one segment's
//! content (never the port). The rules, in order:
//!
//! 1. An HTTP/1.1 `Upgrade` was asked for: the server's `101` grants it
//!    (frames start right after the 101's head; the client's with its next
//!    segment), any other answer refuses it.
//! 2. The client sends the HTTP/2 preface `PRI * HTTP/2.0…` → HTTP/2.
//! 3. The client's request carries `Upgrade: websocket` or `Upgrade: h2c`
//!    → wait for the 101.
//! 4. Exactly a Redis `PING` (RESP `*1\r\n$4\r\nPING\r\n` or inline
//!    `PING\r\n`) from the client, or a RESP command array → Redis.
//! 5. The server's first packet is a MySQL handshake (protocol 10), or the
//!    client sends exactly a `COM_PING` packet → MySQL.
//! 6. A segment that is exactly whole HTTP/2 frames including a PING or
//!    GOAWAY → HTTP/2 (a capture started on an idle gRPC connection).
//! 7. A segment that is exactly one WebSocket control frame, masked from
//!    the client and unmasked from the server → WebSocket.
//! 8. A TLS record header or an SSH banner → encrypted (rhythm only).

use super::{Protocol, Start, State, h2, plain, ws};
use crate::analyses::Ctx;
use crate::core::tcp::Side;

pub enum Detect {
    Nothing,
    /// The server answered an Upgrade without 101.
    Refused,
    Found(Found),
}

pub struct Found {
    pub protocol: Protocol,
    /// Waiting for the server's 101 to this Upgrade.
    pub upgrade: Option<Protocol>,
    /// Directions whose frame boundaries are known.
    pub sync: [Option<(Side, Start)>; 2],
}

fn found(protocol: Protocol, sync: [Option<(Side, Start)>; 2]) -> Detect {
    Detect::Found(Found {
        protocol,
        upgrade: None,
        sync,
    })
}

fn here(cx: &Ctx) -> Option<(Side, Start)> {
    Some((
        cx.from,
        Start {
            at: Some(cx.seg.seq),
            skip: 0,
        },
    ))
}

fn next_segment(side: Side, skip: u64) -> Option<(Side, Start)> {
    Some((side, Start { at: None, skip }))
}

/// Case-insensitive search.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// The end of an HTTP head (after its blank line) within `p`.
fn head_end(p: &[u8]) -> Option<usize> {
    p.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The protocol an HTTP/1.1 request asks to upgrade to.
fn upgrade_of(p: &[u8]) -> Option<Protocol> {
    let head = &p[..head_end(p).unwrap_or(p.len()).min(4096)];
    let at = find_ci(head, b"\nupgrade:")?;
    let value = &head[at + 9..];
    let value = &value[..value
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(value.len())];
    if find_ci(value, b"websocket").is_some() {
        Some(Protocol::WebSocket)
    } else if find_ci(value, b"h2c").is_some() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

/// Whether a segment past a connection's first [`EAGER`](super::EAGER)
/// could start one of the mid-connection rules (5–8 here), by its first
/// byte: an HTTP/2 frame length's high byte (0, and a stream-0 control
/// frame's type), a WebSocket control frame
/// (0x88–0x8A), a Redis PING (`*`, `P`), a MySQL COM_PING (1), a TLS record
/// (20–23), an SSH banner (`S`).
#[inline]
pub fn worth_a_look(p: &[u8]) -> bool {
    match p.first() {
        Some(0) => h2::starts_with_control_frame(p),
        Some(0x88..=0x8a | b'*' | b'P' | b'p' | 1 | 20..=23 | b'S') => true,
        _ => false,
    }
}

pub fn detect(cx: &Ctx, state: Option<&State>) -> Detect {
    let p = cx.seg.payload;
    if p.len() < cx.seg.len as usize {
        return Detect::Nothing; // cut by the snaplen: nothing to go on
    }
    let client = cx.from == Side::Client;
    if let Some(want) = state.and_then(|s| s.upgrade) {
        if client {
            return Detect::Nothing;
        }
        if !(p.starts_with(b"HTTP/1.1 101") || p.starts_with(b"HTTP/1.0 101")) {
            return Detect::Refused;
        }
        let Some(end) = head_end(p) else {
            return Detect::Refused; // a 101 head across segments: not followed
        };
        let server = Start {
            at: Some(cx.seg.seq + end as u32),
            skip: 0,
        };
        // After an h2c upgrade the client still sends the preface.
        let preface = if want == Protocol::Http2 {
            h2::PREFACE.len() as u64
        } else {
            0
        };
        return found(
            want,
            [
                Some((Side::Server, server)),
                next_segment(Side::Client, preface),
            ],
        );
    }
    let Some(&first) = p.first() else {
        return Detect::Nothing;
    };
    // Each rule behind a test of the first byte: most segments fail at once.
    if client && first == b'P' && p.starts_with(h2::PREFACE) {
        return found(
            Protocol::Http2,
            [
                Some((
                    Side::Client,
                    Start {
                        at: Some(cx.seg.seq),
                        skip: h2::PREFACE.len() as u64,
                    },
                )),
                next_segment(Side::Server, 0),
            ],
        );
    }
    if client
        && first.is_ascii_uppercase()
        && crate::core::proto::looks_like_request(p)
        && let Some(want) = upgrade_of(p)
    {
        return Detect::Found(Found {
            protocol: want,
            upgrade: Some(want),
            sync: [None, None],
        });
    }
    // Exact pings from either side: a capture that began mid-connection
    // may have taken the client for the server.
    if matches!(first, b'*' | b'P' | b'p')
        && (plain::is_redis_ping(p) || (client && plain::is_resp_command(p)))
    {
        return found(Protocol::Redis, [None, None]);
    }
    if (!client && p.get(4) == Some(&0x0a) && plain::is_mysql_greeting(p))
        || (first == 1 && plain::is_com_ping(p))
    {
        return found(Protocol::Mysql, [None, None]);
    }
    if first == 0 && h2::starts_with_control_frame(p) && h2::whole_frames(p) == Some(true) {
        return found(Protocol::Http2, [here(cx), None]);
    }
    if (0x88..=0x8a).contains(&first) && ws::one_control_frame(p, client) {
        return found(Protocol::WebSocket, [here(cx), None]);
    }
    if ((20..=23).contains(&first) && plain::is_tls_record(p))
        || (first == b'S' && (p.starts_with(b"SSH-2.0-") || p.starts_with(b"SSH-1.99-")))
    {
        return found(Protocol::Encrypted, [None, None]);
    }
    Detect::Nothing
}
