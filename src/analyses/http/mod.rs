//! HTTP/1.x beside TCP keepalive: requests and responses per connection,
//! `Connection:` headers with the HTTP/1.0 and 1.1 defaults, idle gaps
//! between requests on a reused connection.
//!
//! A connection is HTTP when the first bytes its client sends are a request
//! line (`GET /path HTTP/1.1`), whatever the port. Each direction is read in
//! sequence order just far enough to find message heads: a head is buffered
//! (at most [`MAX_HEAD`] bytes), bodies are skipped by counting
//! (Content-Length, chunked, or until the close), so memory per connection
//! stays small. A gap in the capture, or a snaplen that cut the payload,
//! ends the reading of that direction (`lost`); counts up to there stand.

mod parse;
mod say;
#[cfg(test)]
mod tests;

pub use parse::Http;

use crate::analyses::{Analysis, Ctx};
use crate::core::flows::Flow;
use crate::core::proto::looks_like_request;
use crate::core::seq::SeqNumber;
use crate::core::tcp::{Kind, Side};
use crate::core::text::Text;
use crate::core::time::Timestamp;

/// Most bytes of one message head kept while looking for its end.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most requests waiting for their response (pipelining) remembered.
const MAX_PENDING: usize = 64;

/// Something worth saying about a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HttpNote {
    Request {
        number: u32,
        method: Text<16>,
        target: Text<48>,
        /// The connection was reused: request 2 or later.
        reused: bool,
        /// Seconds since the previous response ended (reused connections).
        gap: Option<f64>,
        persistent: bool,
    },
    Response {
        number: u32,
        status: u16,
        persistent: bool,
    },
}

/// What the flow record says about HTTP.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HttpSummary {
    pub requests: u32,
    pub responses: u32,
    pub keep_alive: bool,
    pub version: Option<&'static str>,
    /// Longest pause between a response and the next request.
    pub max_gap: Option<f64>,
    /// The server closed the idle connection (its FIN, nothing pending)
    /// this long after its last response.
    pub server_idle_close: Option<f64>,
    /// The client closed the idle connection first, this long after the
    /// last response (a pool closing idle connections: the benign order).
    pub client_idle_close: Option<f64>,
    /// The server's `Keep-Alive: timeout=N`.
    pub advertised_timeout: Option<f64>,
    /// The keep-alive race: the client sent a request after the server's
    /// FIN and the server answered RST (a stale pooled connection).
    pub stale_request: bool,
}

/// The keep-alive pool race, as it happens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stale {
    /// Data from the client after the server's FIN; `idle_close` is how
    /// long after its last response the server had closed.
    Request { idle_close: Option<f32> },
    /// The server's FIN crossed a request already on its way (the FIN
    /// does not acknowledge it).
    Crossed { idle_close: Option<f32> },
    /// The server's RST answering it.
    Reset { idle_close: Option<f32> },
    /// The server acknowledged it: it closed only its sending side and
    /// still reads (a half-close), so the connection was not stale.
    HalfClose,
}

/// What the HTTP analysis says about one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HttpPacket {
    /// The connection carries HTTP (its client's first bytes were a request line).
    pub on: bool,
    /// An HTTP message this segment starts.
    pub message: Option<HttpNote>,
    /// Part of the keep-alive race.
    pub stale: Option<Stale>,
}

/// The HTTP analysis: decides on the client's first payload whether the
/// connection is HTTP, then follows it.
#[derive(Clone, Debug, Default)]
pub struct HttpAnalysis {
    decided: bool,
    http: Option<Box<Http>>,
}

/// How an HTTP connection's end went (kept beside `Http`).
#[derive(Clone, Copy, Debug, Default)]
struct Ending {
    /// The first FIN: its side, and how long after the last response it
    /// came when nothing was pending (an idle close).
    first_fin: Option<(Side, Option<f64>)>,
    /// The client sent data after the server's FIN, or the FIN crossed it.
    sent_after_fin: bool,
    stale_request: bool,
    /// The server acknowledged the data sent after its FIN.
    half_close: bool,
    /// The client's next sequence number after its latest data.
    client_next: Option<SeqNumber>,
}

impl Analysis for HttpAnalysis {
    type Note = HttpPacket;
    type Summary = Option<HttpSummary>;

    #[inline(always)]
    fn segment(&mut self, cx: &Ctx) -> HttpPacket {
        let seg = cx.seg;
        let payload =
            seg.len > 0 && !matches!(cx.kind, Kind::Keepalive | Kind::ZeroWindowProbe | Kind::Rst);
        if payload && cx.from == Side::Client && !self.decided {
            self.decided = true;
            if looks_like_request(seg.payload) {
                self.http = Some(Box::default());
            }
        }
        let Some(h) = self.http.as_mut() else {
            return HttpPacket::default();
        };
        let message = if payload {
            h.feed(
                cx.from == Side::Client,
                seg.seq,
                seg.len,
                seg.payload,
                cx.ts,
            )
        } else {
            None
        };
        let stale = h.ending(cx, payload);
        if seg.has(crate::core::decode::flags::FIN | crate::core::decode::flags::RST) {
            h.closed(cx.ts);
        }
        HttpPacket {
            on: true,
            message,
            stale,
        }
    }

    /// `None` unless a request or a response completed (or the pool race
    /// was seen): a request line that never ended says nothing of HTTP.
    fn finish(&mut self, _flow: &Flow, _now: Timestamp) -> Option<HttpSummary> {
        let h = self.http.as_ref()?;
        if h.requests == 0 && h.responses == 0 && !h.ending.stale_request {
            return None;
        }
        Some(HttpSummary {
            requests: h.requests,
            responses: h.responses,
            keep_alive: h.keep_alive(),
            version: h.version,
            max_gap: h.max_gap,
            server_idle_close: h.idle_close(Side::Server),
            client_idle_close: h.idle_close(Side::Client),
            advertised_timeout: h.advertised_timeout,
            stale_request: h.ending.stale_request,
        })
    }
}
