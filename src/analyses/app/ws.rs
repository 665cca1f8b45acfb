//! WebSocket frames (RFC 6455 §5.2, §5.5): Ping (0x9), Pong (0xA) and Close
//! (0x8, with its status code), masked or not. A Pong answers the Ping with
//! the same application data; an unsolicited Pong (a one-way heartbeat)
//! counts as a pong without a round trip. A connection whose TCP ends
//! without a Close frame ends the way applications report as 1006.

use super::{AppEvent, AppNote, Label, Need, Protocol, Start, State};
use crate::analyses::Ctx;
use crate::core::tcp::Side;

const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
/// Control frames carry at most this much.
const MAX_CONTROL: usize = 125;

struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    size: usize,
}

fn header(b: &[u8]) -> Result<Header, usize> {
    if b.len() < 2 {
        return Err(2);
    }
    let masked = b[1] & 0x80 != 0;
    let (len, ext) = match b[1] & 0x7f {
        126 => (None, 2),
        127 => (None, 8),
        n => (Some(u64::from(n)), 0),
    };
    let size = 2 + ext + if masked { 4 } else { 0 };
    if b.len() < size {
        return Err(size);
    }
    let len = len.unwrap_or_else(|| {
        b[2..2 + ext]
            .iter()
            .fold(0u64, |acc, &x| acc << 8 | u64::from(x))
    });
    let mask = masked.then(|| [b[2 + ext], b[3 + ext], b[4 + ext], b[5 + ext]]);
    Ok(Header {
        fin: b[0] & 0x80 != 0,
        opcode: b[0] & 0x0f,
        mask,
        len,
        size,
    })
}

/// Whether `p` is exactly one WebSocket control frame (FIN set, RSV clear,
/// at most 125 bytes), masked when sent by the client and unmasked when
/// sent by the server, as RFC 6455 requires.
pub fn one_control_frame(p: &[u8], from_client: bool) -> bool {
    let Ok(h) = header(p) else { return false };
    p[0] & 0x70 == 0
        && h.fin
        && matches!(h.opcode, CLOSE | PING | PONG)
        && h.mask.is_some() == from_client
        && h.len as usize <= MAX_CONTROL
        && h.size + h.len as usize == p.len()
}

fn need(buf: &[u8]) -> Need {
    match header(buf) {
        Err(n) => Need::More(n),
        Ok(h) => {
            let keep = if h.opcode >= CLOSE {
                h.size + (h.len as usize).min(MAX_CONTROL)
            } else {
                h.size
            };
            if buf.len() < keep {
                Need::More(keep)
            } else {
                Need::Frame((h.size as u64).saturating_add(h.len))
            }
        }
    }
}

/// FNV-1a of the unmasked application data: pairs a Pong with its Ping.
fn key(data: &[u8], mask: Option<[u8; 4]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &b) in data.iter().enumerate() {
        let b = mask.map_or(b, |m| b ^ m[i % 4]);
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// One segment of a WebSocket connection.
pub(super) fn segment(state: &mut State, cx: &Ctx, note: &mut AppNote) {
    let seg = cx.seg;
    let side = cx.from;
    let dir = &mut state.dirs[side.idx()];
    if !dir.synced
        && seg.payload.len() == seg.len as usize
        && one_control_frame(seg.payload, side == Side::Client)
    {
        dir.sync(Start {
            at: Some(seg.seq),
            skip: 0,
        });
    }
    let Some(data) = dir.fresh(seg.seq, seg.len, seg.payload) else {
        return;
    };
    let mut dir = std::mem::take(&mut state.dirs[side.idx()]);
    dir.frames(data, need, |f, _| frame(state, cx, side, f, note));
    state.dirs[side.idx()] = dir;
}

fn frame(state: &mut State, cx: &Ctx, side: Side, f: &[u8], note: &mut AppNote) {
    let Ok(h) = header(f) else { return };
    let body = &f[h.size..];
    match h.opcode {
        PING => {
            let ev = state.ping(side, cx.ts, key(body, h.mask), true);
            note.add(Some(Label::Ping), ev);
        }
        PONG => {
            let ev = state.answer(side, cx.ts, Some(key(body, h.mask)));
            note.add(Some(Label::Pong), ev);
        }
        CLOSE => {
            let code = (body.len() >= 2).then(|| {
                let m = h.mask.unwrap_or([0; 4]);
                u16::from_be_bytes([body[0] ^ m[0], body[1] ^ m[1]])
            });
            if !state.closed_frame {
                state.closed_frame = true;
                state.close_code = code;
            }
            state.talked(side);
            note.add(
                Some(Label::Close),
                AppEvent::Close {
                    protocol: Protocol::WebSocket,
                    code,
                },
            );
        }
        // Text, binary, continuation: the side is talking.
        _ => state.talked(side),
    }
}

/// RFC 6455 §7.4.1 status codes, in words.
pub fn close_meaning(code: u16) -> &'static str {
    match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1007 => "invalid payload",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "missing extension",
        1011 => {
            "internal error; the Python websockets library sends it on a keepalive ping timeout"
        }
        1012 => "service restart",
        1013 => "try again later",
        _ => "application-defined",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_control_frame_wants_the_mask_rfc_6455_requires() {
        // Client ping: masked, 4 bytes of data.
        let client_ping = b"\x89\x84\x01\x02\x03\x04abcd";
        assert!(one_control_frame(client_ping, true));
        assert!(!one_control_frame(client_ping, false));
        // Server pong: unmasked.
        assert!(one_control_frame(b"\x8a\x04abcd", false));
        // A text frame, a ping one byte short, a fragmented ping.
        assert!(!one_control_frame(b"\x81\x04abcd", false));
        assert!(!one_control_frame(b"\x8a\x04abc", false));
        assert!(!one_control_frame(b"\x09\x04abcd", false));
    }

    #[test]
    fn a_pong_pairs_with_its_ping_through_the_mask() {
        let m = [9, 8, 7, 6];
        let masked: Vec<u8> = b"abcd"
            .iter()
            .zip(m.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect();
        assert_eq!(key(&masked, Some(m)), key(b"abcd", None));
    }
}
