//! HTTP/2 frames (RFC 9113 §4.1, §6.7, §6.8), headers only — no HPACK:
//! PING and its ACK (paired by their 8 opaque bytes), GOAWAY (last stream,
//! error code, debug text), DATA (to tell a keepalive PING from gRPC's
//! flow-control probing).
//!
//! A PING is a keepalive unless its sender received DATA less than
//! [`DATA_RECENT`] before it: gRPC sends a PING on receiving data to
//! estimate the bandwidth-delay product (BDP); those are counted apart.

use super::{AppEvent, AppNote, Goaway, GoawayNote, Label, Need, State};
use crate::analyses::Ctx;
use crate::core::tcp::Side;
use crate::core::text::Text;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADER: usize = 9;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const ACK: u8 = 0x1;
/// Largest frame payload a peer may allow (2^24 - 1).
const MAX_FRAME: usize = (1 << 24) - 1;
/// GOAWAY debug data kept.
const DEBUG_KEPT: usize = 48;
/// A PING this soon after DATA from the peer is flow-control probing.
pub const DATA_RECENT: f64 = 1.0;

pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// RFC 9113 §7 error code names.
pub fn error_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN",
    }
}

struct Header {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

fn header(b: &[u8]) -> Option<Header> {
    let h = b.get(..HEADER)?;
    Some(Header {
        len: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
        kind: h[3],
        flags: h[4],
        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]),
    })
}

/// Whether `p` is exactly a sequence of plausible HTTP/2 frames (known
/// types, the reserved bit clear, control frames on stream 0 with their
/// sizes), and if so whether one is a PING or GOAWAY.
pub fn whole_frames(mut p: &[u8]) -> Option<bool> {
    if p.len() < HEADER {
        return None;
    }
    let mut strong = false;
    while !p.is_empty() {
        let h = header(p)?;
        if h.kind > 0x9 || h.stream & 0x8000_0000 != 0 || h.len > p.len() - HEADER {
            return None;
        }
        // SETTINGS, PING and GOAWAY live on stream 0; DATA, HEADERS,
        // PRIORITY, RST_STREAM, PUSH_PROMISE and CONTINUATION never do.
        let control = matches!(h.kind, SETTINGS | PING | GOAWAY);
        let on_stream = !matches!(h.kind, SETTINGS | PING | GOAWAY | WINDOW_UPDATE);
        if (control && h.stream != 0) || (on_stream && h.stream == 0) {
            return None;
        }
        match h.kind {
            PING if h.len != 8 || h.flags & !ACK != 0 => return None,
            GOAWAY if h.len < 8 => return None,
            SETTINGS if h.len % 6 != 0 => return None,
            WINDOW_UPDATE if h.len != 4 => return None,
            PING | GOAWAY => strong = true,
            _ => {}
        }
        p = &p[HEADER + h.len..];
    }
    Some(strong)
}

/// Whether `p` begins with the header of a connection-level control frame
/// (SETTINGS, PING, GOAWAY, WINDOW_UPDATE on stream 0): how a segment on
/// an idle HTTP/2 connection begins.
#[inline]
pub fn starts_with_control_frame(p: &[u8]) -> bool {
    p.len() >= HEADER
        && matches!(p[3], SETTINGS | PING | GOAWAY | WINDOW_UPDATE)
        && p[5..9] == [0, 0, 0, 0]
}

/// What the buffer must hold for the next frame.
fn need(buf: &[u8]) -> Need {
    let Some(h) = header(buf) else {
        return Need::More(HEADER);
    };
    let keep = HEADER
        + match h.kind {
            PING => h.len.min(8),
            GOAWAY => h.len.min(8 + DEBUG_KEPT),
            _ => 0,
        };
    if buf.len() < keep {
        Need::More(keep)
    } else {
        Need::Frame((HEADER + h.len.min(MAX_FRAME)) as u64)
    }
}

/// One segment of an HTTP/2 connection.
pub(super) fn segment(state: &mut State, cx: &Ctx, note: &mut AppNote) {
    let seg = cx.seg;
    let side = cx.from;
    let dir = &mut state.dirs[side.idx()];
    if !dir.synced && whole_frames(seg.payload).is_some() && seg.payload.len() == seg.len as usize {
        dir.sync(super::Start {
            at: Some(seg.seq),
            skip: 0,
        });
    }
    let Some(data) = dir.fresh(seg.seq, seg.len, seg.payload) else {
        return;
    };
    let mut dir = std::mem::take(&mut state.dirs[side.idx()]);
    dir.frames(data, need, |f, _total| frame(state, cx, side, f, note));
    state.dirs[side.idx()] = dir;
}

fn frame(state: &mut State, cx: &Ctx, side: Side, f: &[u8], note: &mut AppNote) {
    let Some(h) = header(f) else { return };
    let body = &f[HEADER..];
    match h.kind {
        DATA | HEADERS if h.len > 0 => state.last_data[side.idx()] = Some(cx.ts),
        PING if body.len() == 8 => {
            let key = u64::from_be_bytes(body.try_into().unwrap_or([0; 8]));
            if h.flags & ACK != 0 {
                let ev = state.answer(side, cx.ts, Some(key));
                note.add(Some(Label::PingAck), ev);
            } else {
                let keepalive = state.last_data[side.other().idx()]
                    .is_none_or(|d| cx.ts.since(d) >= DATA_RECENT);
                let ev = state.ping(side, cx.ts, key, keepalive);
                note.add(Some(Label::Ping), ev);
            }
        }
        GOAWAY if body.len() >= 8 => {
            let last_stream =
                u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & 0x7fff_ffff;
            let error = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
            let g = Goaway {
                from: side,
                error,
                last_stream,
                debug: Text::of(&body[8..]),
                pinged_every: state.interval(side.other()).map(|i| i as f32),
            };
            // The first GOAWAY with an error, else the first.
            if state.goaway.is_none_or(|old| old.error == 0 && error != 0) {
                state.goaway = Some(g);
            }
            let told = GoawayNote {
                from: side,
                error,
                last_stream,
                too_many_pings_text: body[8..].starts_with(b"too_many_pings"),
                has_debug: body.len() > 8,
                pinged_every: g.pinged_every,
            };
            note.add(Some(Label::Goaway), AppEvent::Goaway(told));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_frames_takes_pings_and_settings_not_bytes_that_only_start_like_one() {
        let ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00ABCDEFGH";
        assert_eq!(whole_frames(ping), Some(true));
        let settings_ack = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00";
        assert_eq!(whole_frames(settings_ack), Some(false));
        let mut both = settings_ack.to_vec();
        both.extend_from_slice(ping);
        assert_eq!(whole_frames(&both), Some(true));
        // A PING one byte short, a PING on stream 1, a TLS record.
        assert_eq!(whole_frames(&ping[..16]), None);
        assert_eq!(
            whole_frames(b"\x00\x00\x08\x06\x00\x00\x00\x00\x01ABCDEFGH"),
            None
        );
        assert_eq!(whole_frames(b"\x17\x03\x03\x00\x22aaaaaaaaaaaa"), None);
        assert_eq!(whole_frames(b""), None);
        // Zeros are DATA frames on stream 0: not HTTP/2.
        assert_eq!(whole_frames(&[0u8; 90]), None);
    }

    #[test]
    fn error_names_follow_rfc_9113() {
        assert_eq!(error_name(0xb), "ENHANCE_YOUR_CALM");
        assert_eq!(error_name(0), "NO_ERROR");
        assert_eq!(error_name(0x99), "UNKNOWN");
    }
}
