//! Following HTTP/1.x in both directions of a connection: message heads
//! parsed as they complete (across segments), bodies skipped by
//! Content-Length or chunking, requests paired with their responses, and
//! what keep-alive each side asked for.

use super::{Ending, HttpNote, MAX_HEAD, MAX_PENDING, Stale};
use crate::analyses::Ctx;
use crate::core::proto::version_of;
use crate::core::seq::SeqNumber;
use crate::core::tcp::Side;
use crate::core::text::Text;
use crate::core::time::Timestamp;
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Head,
    Body(u64),
    Chunk(ChunkPhase),
    UntilClose,
    Lost,
}

#[derive(Clone, Debug, PartialEq)]
enum ChunkPhase {
    Size,
    Data(u64),
    DataEnd(u8),
    Trailer,
}

/// One direction of the byte stream.
#[derive(Clone, Debug)]
struct Stream {
    next: Option<SeqNumber>,
    buf: Vec<u8>,
    phase: Phase,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            next: None,
            buf: Vec::new(),
            phase: Phase::Head,
        }
    }
}

/// What the connection's HTTP traffic showed.
#[derive(Clone, Debug)]
pub struct Http {
    req: Stream,
    resp: Stream,
    pub requests: u32,
    pub responses: u32,
    /// "1.1" or "1.0", from the first request line.
    pub version: Option<&'static str>,
    /// Persistence negotiated by the first exchange (request and response).
    pub keep_alive: Option<bool>,
    first_req_persistent: bool,
    /// HEAD requests have responses without bodies; one flag per request
    /// still waiting for its response.
    pending_head: VecDeque<bool>,
    last_response_end: Option<Timestamp>,
    /// The latest request and response both kept the connection open: a
    /// close after it is an idle close, not the end HTTP asked for.
    open_for_more: bool,
    pub(super) ending: Ending,
    /// Longest pause between a response and the next request.
    pub max_gap: Option<f64>,
    /// `max_gap` before the latest request (restored when that request
    /// turns out to have crossed the server's FIN).
    max_gap_before: Option<f64>,
    /// The server's `Keep-Alive: timeout=N`, from its latest response.
    pub advertised_timeout: Option<f64>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Fields of a message head that matter here.
struct Head {
    first: [Vec<u8>; 3],
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    /// `Keep-Alive: timeout=N` (seconds).
    timeout: Option<f64>,
}

fn parse_head(head: &[u8]) -> Head {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.next().unwrap_or(&[]);
    let mut parts = start.splitn(3, |&b| b == b' ');
    let first = [
        parts.next().unwrap_or(&[]).to_vec(),
        parts.next().unwrap_or(&[]).to_vec(),
        parts.next().unwrap_or(&[]).to_vec(),
    ];
    let mut h = Head {
        first,
        content_length: None,
        chunked: false,
        close: false,
        keep_alive: false,
        timeout: None,
    };
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_ascii_lowercase();
        if name.eq_ignore_ascii_case(b"content-length") {
            h.content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            h.chunked = value.split(',').any(|t| t.trim() == "chunked");
        } else if name.eq_ignore_ascii_case(b"keep-alive") {
            h.timeout = value
                .split(',')
                .filter_map(|p| p.trim().strip_prefix("timeout="))
                .find_map(|v| v.trim().parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t >= 0.0);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(',') {
                match token.trim() {
                    "close" => h.close = true,
                    "keep-alive" => h.keep_alive = true,
                    _ => {}
                }
            }
        }
    }
    h
}

/// HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
fn persistent(version: Option<&str>, h: &Head) -> bool {
    match version {
        Some("1.1") => !h.close,
        _ => h.keep_alive && !h.close,
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            req: Stream::new(),
            resp: Stream::new(),
            requests: 0,
            responses: 0,
            version: None,
            keep_alive: None,
            first_req_persistent: false,
            pending_head: VecDeque::new(),
            last_response_end: None,
            open_for_more: false,
            ending: Ending::default(),
            max_gap: None,
            max_gap_before: None,
            advertised_timeout: None,
        }
    }

    /// Feeds a segment's payload from the client (`from_client`) or the
    /// server. `len` is the payload length the IP header gives; `bytes` the
    /// captured part. Returns the note for the first message this segment
    /// starts, if any.
    pub fn feed(
        &mut self,
        from_client: bool,
        seq: SeqNumber,
        len: u32,
        bytes: &[u8],
        ts: Timestamp,
    ) -> Option<HttpNote> {
        let stream = if from_client {
            &mut self.req
        } else {
            &mut self.resp
        };
        if stream.phase == Phase::Lost || len == 0 {
            return None;
        }
        let next = *stream.next.get_or_insert(seq);
        let skip = next.diff(seq);
        if skip < 0 || bytes.len() < len as usize {
            // A gap before this segment, or payload the snaplen cut.
            stream.phase = Phase::Lost;
            stream.buf = Vec::new();
            return None;
        }
        let skip = skip as usize;
        if skip >= bytes.len() {
            return None; // all seen before (a retransmission)
        }
        stream.next = Some(seq + len);
        let data = &bytes[skip..];
        if from_client {
            self.consume_requests(data, ts)
        } else {
            self.consume_responses(data, ts)
        }
    }

    /// The connection closed: a response read until the close ends there.
    pub fn closed(&mut self, ts: Timestamp) {
        if self.resp.phase == Phase::UntilClose {
            self.resp.phase = Phase::Head;
            self.last_response_end = Some(ts);
        }
    }

    fn consume_requests(&mut self, mut data: &[u8], ts: Timestamp) -> Option<HttpNote> {
        let mut note = None;
        while !data.is_empty() {
            let (used, head) = step(&mut self.req, data);
            data = &data[used..];
            let Some(head) = head else { continue };
            let h = parse_head(&head);
            let version = version_of(&h.first[2]);
            if version.is_none() {
                // Not an HTTP/1.x request line: this direction is something
                // else (the HTTP/2 preface after `Upgrade: h2c`…).
                self.req.phase = Phase::Lost;
                break;
            }
            if self.requests == 0 {
                self.version = version;
                self.first_req_persistent = persistent(version, &h);
            }
            self.requests += 1;
            self.open_for_more = persistent(version, &h);
            if self.pending_head.len() < MAX_PENDING {
                self.pending_head.push_back(h.first[0] == b"HEAD");
            }
            let gap = if self.requests > 1 {
                self.last_response_end.map(|end| ts.since(end).max(0.0))
            } else {
                None
            };
            // A request sent after the server's FIN reused nothing.
            let server_closed = matches!(self.ending.first_fin, Some((Side::Server, _)));
            if let Some(g) = gap.filter(|_| !server_closed) {
                self.max_gap_before = self.max_gap;
                self.max_gap = Some(self.max_gap.map_or(g, |m: f64| m.max(g)));
            }
            self.req.phase = match (h.chunked, h.content_length) {
                (true, _) => Phase::Chunk(ChunkPhase::Size),
                (false, Some(n)) if n > 0 => Phase::Body(n),
                _ => Phase::Head,
            };
            note.get_or_insert(HttpNote::Request {
                number: self.requests,
                method: Text::of(&h.first[0]),
                target: Text::of(&h.first[1]),
                reused: self.requests > 1,
                gap,
                persistent: persistent(version, &h),
            });
        }
        note
    }

    fn consume_responses(&mut self, mut data: &[u8], ts: Timestamp) -> Option<HttpNote> {
        let mut note = None;
        while !data.is_empty() {
            let was_body = self.resp.phase != Phase::Head;
            let (used, head) = step(&mut self.resp, data);
            data = &data[used..];
            if was_body && self.resp.phase == Phase::Head {
                self.last_response_end = Some(ts);
            }
            let Some(head) = head else { continue };
            let h = parse_head(&head);
            if !h.first[0].starts_with(b"HTTP/") {
                self.resp.phase = Phase::Lost;
                break;
            }
            let status: u16 = std::str::from_utf8(&h.first[1])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if status == 101 {
                // Switching Protocols (WebSocket, h2c): the upgrade's answer
                // is a response; what follows both ways is not HTTP/1.x.
                self.responses += 1;
                self.pending_head.pop_front();
                if self.responses == 1 {
                    self.keep_alive = Some(self.first_req_persistent);
                }
                self.req.phase = Phase::Lost;
                self.resp.phase = Phase::Lost;
                self.last_response_end = Some(ts);
                note.get_or_insert(HttpNote::Response {
                    number: self.responses,
                    status,
                    persistent: true,
                });
                break;
            }
            if (100..200).contains(&status) {
                // Interim (100 Continue): the real response follows.
                self.resp.phase = Phase::Head;
                continue;
            }
            self.responses += 1;
            let head_request = self.pending_head.pop_front().unwrap_or(false);
            let keep = persistent(version_of(&h.first[0]), &h);
            if h.timeout.is_some() {
                self.advertised_timeout = h.timeout;
            }
            self.open_for_more &= keep;
            if self.responses == 1 {
                self.keep_alive = Some(self.first_req_persistent && keep);
            }
            let no_body = head_request || status == 204 || status == 304;
            self.resp.phase = if no_body {
                Phase::Head
            } else if h.chunked {
                Phase::Chunk(ChunkPhase::Size)
            } else if let Some(n) = h.content_length {
                if n > 0 { Phase::Body(n) } else { Phase::Head }
            } else {
                Phase::UntilClose
            };
            if self.resp.phase == Phase::Head {
                self.last_response_end = Some(ts);
            }
            note.get_or_insert(HttpNote::Response {
                number: self.responses,
                status,
                persistent: keep,
            });
        }
        note
    }

    /// The end of the connection, segment by segment: who closed first and
    /// how long after the last response; a request sent into the server's
    /// close, and the RST that answers it.
    pub(super) fn ending(&mut self, cx: &Ctx, payload: bool) -> Option<Stale> {
        let seg = cx.seg;
        let e = &mut self.ending;
        let server_closed = matches!(e.first_fin, Some((Side::Server, _)));
        let idle_close = e.first_fin.and_then(|(_, i)| i).map(|i| i as f32);
        if cx.from == Side::Client && payload {
            let end = seg.seq + seg.len;
            e.client_next = Some(e.client_next.map_or(end, |n| n.max(end)));
            if server_closed && !e.sent_after_fin {
                e.sent_after_fin = true;
                return Some(Stale::Request { idle_close });
            }
        }
        // The server acknowledges what the client sent after its FIN: it
        // still reads (shutdown of its sending side only), not stale.
        if cx.from == Side::Server
            && server_closed
            && e.sent_after_fin
            && !e.stale_request
            && !e.half_close
            && !seg.has(crate::core::decode::flags::RST)
            && seg.has(crate::core::decode::flags::ACK)
            && e.client_next.is_some_and(|n| n.diff(seg.ack) <= 0)
        {
            e.half_close = true;
            return Some(Stale::HalfClose);
        }
        if cx.from == Side::Server
            && seg.has(crate::core::decode::flags::RST)
            && e.sent_after_fin
            && !e.stale_request
        {
            e.stale_request = true;
            return Some(Stale::Reset { idle_close });
        }
        if seg.has(crate::core::decode::flags::FIN) && e.first_fin.is_none() {
            // A server FIN that does not acknowledge the client's latest
            // data was sent before that request arrived: they crossed.
            let crossed = cx.from == Side::Server
                && seg.has(crate::core::decode::flags::ACK)
                && e.client_next.is_some_and(|n| n.diff(seg.ack) > 0);
            let idle = crossed
                || (self.open_for_more
                    && self.resp.phase == Phase::Head
                    && self.pending_head.is_empty()
                    && self.requests > 0
                    && self.requests == self.responses);
            let since = self
                .last_response_end
                .filter(|_| idle)
                .map(|end| cx.ts.since(end).max(0.0));
            self.ending.first_fin = Some((cx.from, since));
            if crossed {
                self.max_gap = self.max_gap_before;
                self.ending.sent_after_fin = true;
                return Some(Stale::Crossed {
                    idle_close: since.map(|i| i as f32),
                });
            }
        }
        None
    }

    /// How long after its last response `side` closed the idle connection.
    pub(super) fn idle_close(&self, side: Side) -> Option<f64> {
        match self.ending.first_fin {
            Some((s, since)) if s == side => since,
            _ => None,
        }
    }

    /// Persistence as the flow record reports it: from the first exchange,
    /// or from the first request alone when no response was seen.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive.unwrap_or(self.first_req_persistent)
    }
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

/// Advances one stream over `data`: returns how many bytes were used, and a
/// message head when one was completed.
fn step(s: &mut Stream, data: &[u8]) -> (usize, Option<Vec<u8>>) {
    match s.phase.clone() {
        Phase::Lost | Phase::UntilClose => (data.len(), None),
        Phase::Body(n) => {
            let used = (n.min(data.len() as u64)) as usize;
            let left = n - used as u64;
            s.phase = if left == 0 {
                Phase::Head
            } else {
                Phase::Body(left)
            };
            (used, None)
        }
        Phase::Head => {
            let before = s.buf.len();
            // Look for the end of the head in what we have plus this data
            // (the 3 bytes before may hold part of "\r\n\r\n").
            let from = before.saturating_sub(3);
            let take = data.len().min(MAX_HEAD + 4 - before.min(MAX_HEAD));
            s.buf.extend_from_slice(&data[..take]);
            match find(&s.buf[from..], b"\r\n\r\n") {
                Some(at) => {
                    let end = from + at + 4;
                    let used = end - before;
                    let head = std::mem::take(&mut s.buf);
                    (used, Some(head[..end].to_vec()))
                }
                None if s.buf.len() > MAX_HEAD => {
                    s.phase = Phase::Lost;
                    s.buf = Vec::new();
                    (data.len(), None)
                }
                None => (take, None),
            }
        }
        Phase::Chunk(c) => step_chunk(s, c, data),
    }
}

fn step_chunk(s: &mut Stream, c: ChunkPhase, data: &[u8]) -> (usize, Option<Vec<u8>>) {
    match c {
        ChunkPhase::Data(n) => {
            let used = (n.min(data.len() as u64)) as usize;
            let left = n - used as u64;
            s.phase = Phase::Chunk(if left == 0 {
                ChunkPhase::DataEnd(2)
            } else {
                ChunkPhase::Data(left)
            });
            (used, None)
        }
        ChunkPhase::DataEnd(n) => {
            let used = usize::from(n).min(data.len());
            let left = n - used as u8;
            s.phase = Phase::Chunk(if left == 0 {
                ChunkPhase::Size
            } else {
                ChunkPhase::DataEnd(left)
            });
            (used, None)
        }
        ChunkPhase::Size | ChunkPhase::Trailer => {
            // One line: a chunk size, or a trailer line (empty ends it).
            let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                if s.buf.len() + data.len() > 1024 {
                    s.phase = Phase::Lost;
                    s.buf = Vec::new();
                } else {
                    s.buf.extend_from_slice(data);
                }
                return (data.len(), None);
            };
            s.buf.extend_from_slice(&data[..nl]);
            let line = std::mem::take(&mut s.buf);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            s.phase = if c == ChunkPhase::Trailer {
                if line.is_empty() {
                    Phase::Head
                } else {
                    Phase::Chunk(ChunkPhase::Trailer)
                }
            } else {
                let hex: Vec<u8> = line
                    .iter()
                    .copied()
                    .take_while(|b| b.is_ascii_hexdigit())
                    .collect();
                match u64::from_str_radix(std::str::from_utf8(&hex).unwrap_or(""), 16) {
                    Ok(0) => Phase::Chunk(ChunkPhase::Trailer),
                    Ok(n) => Phase::Chunk(ChunkPhase::Data(n)),
                    Err(_) => Phase::Lost,
                }
            };
            (nl + 1, None)
        }
    }
}
