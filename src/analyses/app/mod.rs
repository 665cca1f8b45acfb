//! Application keepalives beside TCP keepalive: HTTP/2 PING and GOAWAY
//! (gRPC keepalive, `too_many_pings`), WebSocket ping/pong/close, Redis
//! `PING`/`+PONG`, MySQL `COM_PING`, and — under TLS or SSH, where the
//! content is hidden — a rhythm of small equal exchanges.
//!
//! A connection's protocol is recognized by content, never by port
//! ([`detect`]): at its start (the HTTP/2 preface, an HTTP/1.1 `Upgrade`
//! answered by 101, a RESP command, a MySQL greeting, a TLS record or an SSH
//! banner) or in the middle of it, for captures started on an idle
//! connection (a segment that is exactly whole HTTP/2 frames holding a PING
//! or GOAWAY, exactly one WebSocket control frame, exactly a Redis PING or a
//! MySQL COM_PING). Only the first [`EAGER`] payload segments are looked at
//! whatever their size, later ones only when small: a connection that is
//! none of these costs a few comparisons per segment and no memory.
//!
//! Framed protocols (HTTP/2, WebSocket) are followed in sequence order per
//! direction by [`Dir`]: frame headers and small control frames are kept
//! (a few hundred bytes at most), other payload is skipped by counting. A
//! gap in the capture or a snaplen that cut the payload loses the direction
//! until a segment that is exactly whole frames finds the boundaries again.

mod detect;
mod dir;
mod explain;
pub mod h2;
mod plain;
mod rhythm;
mod say;
pub mod ws;

use crate::analyses::{Analysis, Ctx, Relabel};
use crate::core::flows::Flow;
use crate::core::tcp::{Kind, Side};
use crate::core::text::Text;
use crate::core::time::Timestamp;
pub use dir::{Dir, Need, Start};

/// Payload segments of a connection looked at for a protocol whatever their
/// size; after them, only segments of at most [`SMALL`] bytes.
pub const EAGER: u8 = 4;
/// Largest segment that can still start recognition after [`EAGER`].
pub const SMALL: u32 = 256;
/// Most outstanding pings remembered per side.
const MAX_OUTSTANDING: usize = 16;
/// Most ping gaps kept per side for the interval (the median of these).
const MAX_GAPS: usize = 512;

/// An application protocol whose keepalives kacap reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http2,
    WebSocket,
    Redis,
    Mysql,
    /// TLS or SSH: only the rhythm of small records is visible.
    Encrypted,
}

impl Protocol {
    /// JSON `app_keepalive.protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http2 => "http2",
            Protocol::WebSocket => "websocket",
            Protocol::Redis => "redis",
            Protocol::Mysql => "mysql",
            Protocol::Encrypted => "encrypted",
        }
    }

    /// In prose.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http2 => "HTTP/2",
            Protocol::WebSocket => "WebSocket",
            Protocol::Redis => "Redis",
            Protocol::Mysql => "MySQL",
            Protocol::Encrypted => "encrypted",
        }
    }
}

/// JSON packet `"app"`: what an application frame in the segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Ping,
    PingAck,
    Pong,
    Goaway,
    Close,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Ping => "ping",
            Label::PingAck => "ping-ack",
            Label::Pong => "pong",
            Label::Goaway => "goaway",
            Label::Close => "close",
        }
    }

    /// Which label a segment carrying two frames gets: GOAWAY, then close,
    /// then a ping, then its answer.
    fn rank(self) -> u8 {
        match self {
            Label::Goaway => 4,
            Label::Close => 3,
            Label::Ping => 2,
            Label::PingAck | Label::Pong => 1,
        }
    }
}

/// An HTTP/2 GOAWAY.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Goaway {
    pub from: Side,
    pub error: u32,
    pub last_stream: u32,
    pub debug: Text<48>,
    /// The other side's keepalive ping interval so far (median gap).
    pub pinged_every: Option<f32>,
}

impl Goaway {
    /// gRPC's answer to a client that pings more often than the server's
    /// policy allows.
    pub fn too_many_pings(&self) -> bool {
        self.error == h2::ENHANCE_YOUR_CALM
    }
}

/// A GOAWAY as a segment's note tells it (small: it travels with every
/// packet event; the flow's [`Goaway`] keeps the debug text).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GoawayNote {
    pub from: Side,
    pub error: u32,
    pub last_stream: u32,
    /// The debug data is gRPC's `too_many_pings`.
    pub too_many_pings_text: bool,
    /// Some debug data came with it.
    pub has_debug: bool,
    pub pinged_every: Option<f32>,
}

impl GoawayNote {
    pub fn too_many_pings(&self) -> bool {
        self.error == h2::ENHANCE_YOUR_CALM
    }
}

/// Something worth saying about a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AppEvent {
    /// A keepalive ping (`keepalive`), or an HTTP/2 PING sent while data
    /// flowed (flow-control probing, not a keepalive).
    Ping {
        protocol: Protocol,
        /// Per connection, keepalive pings of either side.
        ordinal: u32,
        keepalive: bool,
    },
    /// The answer to a ping (`rtt` after it when the ping was seen).
    Answer {
        protocol: Protocol,
        rtt: Option<f32>,
    },
    Goaway(GoawayNote),
    /// A WebSocket Close (with its status code) or MySQL COM_QUIT.
    Close {
        protocol: Protocol,
        code: Option<u16>,
    },
    /// An encrypted exchange that keeps the connection's rhythm.
    Exchange {
        /// The first record of the exchange (else its answer).
        request: bool,
        size: u16,
        period: f32,
        repeats: u32,
    },
    /// The protocol was recognized on this segment.
    Recognized(Protocol),
}

/// What the analysis says about one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AppNote {
    pub label: Option<Label>,
    pub event: Option<AppEvent>,
}

impl AppNote {
    fn add(&mut self, label: Option<Label>, event: AppEvent) {
        if let Some(l) = label
            && self.label.is_none_or(|old| l.rank() > old.rank())
        {
            self.label = Some(l);
            self.event = Some(event);
        } else if self.event.is_none() || matches!(self.event, Some(AppEvent::Recognized(_))) {
            self.event = Some(event);
        }
    }
}

/// What the flow record says about application keepalives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppSummary {
    pub protocol: Protocol,
    /// Keepalive pings (both sides) and their answers.
    pub pings: u32,
    pub pongs: u32,
    /// Median gap between keepalive pings of the side that pinged most.
    pub interval: Option<f64>,
    /// The same for each side (client, server).
    pub intervals: [Option<f64>; 2],
    /// Keepalive pings never answered.
    pub unanswered: u32,
    /// The latest keepalive pings of one side, unanswered in a row (the
    /// most of either side): the peer's application stopped answering.
    pub trailing_unanswered: u32,
    /// The pinged peer sent data or a close frame after those unanswered
    /// pings: it is alive and talking, only its pongs are missing.
    pub peer_talked: bool,
    /// The side that sent the keepalive pings (`None` when both did).
    pub pinger: Option<Side>,
    /// Both sides sent keepalive pings.
    pub both: bool,
    /// The longest round trip of an answered ping.
    pub rtt: Option<f64>,
    /// HTTP/2 PINGs sent while data flowed (not keepalives).
    pub other_pings: u32,
    pub goaway: Option<Goaway>,
    /// WebSocket Close status code (the first close frame).
    pub close_code: Option<u16>,
    /// WebSocket: TCP ended without a close frame (what the application
    /// reports as 1006).
    pub abrupt: bool,
    /// Encrypted rhythm: the sizes of the request and its answer.
    pub exchange: Option<(u16, u16)>,
}

impl AppSummary {
    /// The application ended the connection on purpose: a WebSocket Close
    /// 1000 (normal) or 1001 (going away), an HTTP/2 GOAWAY NO_ERROR. A
    /// ping left unanswered right before that is no sign of a stuck peer.
    pub fn graceful_end(&self) -> bool {
        self.close_code.is_some_and(|c| c == 1000 || c == 1001)
            || self.goaway.is_some_and(|g| g.error == 0)
    }
}

/// Pings of one side and what became of them.
#[derive(Clone, Debug, Default)]
struct Pinger {
    keepalive: u32,
    other: u32,
    last: Option<Timestamp>,
    gaps: Vec<f32>,
    /// Outstanding pings: a key (HTTP/2 opaque data, WebSocket payload
    /// hash, 0 where answers come in order) and when it was sent.
    outstanding: Vec<(u64, Timestamp, bool)>,
    answered: u32,
    unanswered_dropped: u32,
    /// Keepalive pings in a row not answered (since the latest answer).
    trailing: u32,
    /// The peer sent data or a close frame after the latest unanswered ping.
    talked_after: bool,
}

/// Per-connection state once a protocol is recognized (boxed: most
/// connections never get one).
#[derive(Clone, Debug)]
struct State {
    protocol: Protocol,
    dirs: [Dir; 2],
    pingers: [Pinger; 2],
    pongs: u32,
    rtt: Option<f64>,
    goaway: Option<Goaway>,
    close_code: Option<u16>,
    closed_frame: bool,
    /// HTTP/2: when each side last sent a DATA frame.
    last_data: [Option<Timestamp>; 2],
    rhythm: rhythm::Rhythm,
    /// HTTP/1.1 Upgrade asked for, waiting for the 101.
    upgrade: Option<Protocol>,
}

impl State {
    fn new(protocol: Protocol) -> State {
        State {
            protocol,
            dirs: Default::default(),
            pingers: Default::default(),
            pongs: 0,
            rtt: None,
            goaway: None,
            close_code: None,
            closed_frame: false,
            last_data: [None; 2],
            rhythm: rhythm::Rhythm::default(),
            upgrade: None,
        }
    }

    fn ordinal(&self) -> u32 {
        self.pingers[0].keepalive + self.pingers[1].keepalive
    }

    /// A ping from `side`; returns its event.
    fn ping(&mut self, side: Side, ts: Timestamp, key: u64, keepalive: bool) -> AppEvent {
        let p = &mut self.pingers[side.idx()];
        if keepalive {
            p.keepalive += 1;
            p.trailing += 1;
            p.talked_after = false;
            if let Some(last) = p.last
                && p.gaps.len() < MAX_GAPS
            {
                p.gaps.push(ts.since(last).max(0.0) as f32);
            }
            p.last = Some(ts);
        } else {
            p.other += 1;
        }
        if p.outstanding.len() >= MAX_OUTSTANDING {
            let (_, _, ka) = p.outstanding.remove(0);
            p.unanswered_dropped += u32::from(ka);
        }
        p.outstanding.push((key, ts, keepalive));
        AppEvent::Ping {
            protocol: self.protocol,
            ordinal: self.ordinal(),
            keepalive,
        }
    }

    /// An answer from `side` to the other side's ping with `key` (`None`:
    /// the oldest outstanding one). Unsolicited answers (a WebSocket pong
    /// as a one-way heartbeat) count, without a round trip.
    fn answer(&mut self, side: Side, ts: Timestamp, key: Option<u64>) -> AppEvent {
        let p = &mut self.pingers[side.other().idx()];
        let at = match key {
            Some(k) => p.outstanding.iter().position(|&(o, _, _)| o == k),
            None => (!p.outstanding.is_empty()).then_some(0),
        };
        let rtt = match at.map(|i| p.outstanding.remove(i)) {
            Some((_, sent, keepalive)) => {
                let rtt = ts.since(sent).max(0.0);
                if keepalive {
                    p.answered += 1;
                    p.trailing = 0;
                    self.pongs += 1;
                    self.rtt = Some(self.rtt.map_or(rtt, |m| m.max(rtt)));
                }
                Some(rtt)
            }
            None => {
                if key.is_none() || self.protocol == Protocol::WebSocket {
                    self.pongs += 1;
                }
                None
            }
        };
        AppEvent::Answer {
            protocol: self.protocol,
            rtt: rtt.map(|r| r as f32),
        }
    }

    /// `side` sent application data or a close frame: if the other side's
    /// latest pings are unanswered, this peer is still talking.
    fn talked(&mut self, side: Side) {
        let p = &mut self.pingers[side.other().idx()];
        if p.trailing > 0 {
            p.talked_after = true;
        }
    }

    fn interval(&self, side: Side) -> Option<f64> {
        median(&self.pingers[side.idx()].gaps)
    }

    fn summary(&self, flow: &Flow) -> Option<AppSummary> {
        if self.protocol == Protocol::Encrypted {
            let run = self.rhythm.best()?;
            return Some(AppSummary {
                protocol: Protocol::Encrypted,
                pings: run.count,
                pongs: run.count,
                interval: Some(run.period),
                intervals: [None; 2],
                unanswered: 0,
                trailing_unanswered: 0,
                peer_talked: false,
                pinger: Some(run.side),
                both: false,
                rtt: None,
                other_pings: 0,
                goaway: None,
                close_code: None,
                abrupt: false,
                exchange: Some((run.sizes.0, run.sizes.1)),
            });
        }
        let [c, s] = &self.pingers;
        let pings = c.keepalive + s.keepalive;
        let both = c.keepalive > 0 && s.keepalive > 0;
        let pinger = match (c.keepalive, s.keepalive) {
            (0, 0) => None,
            (_, 0) => Some(Side::Client),
            (0, _) => Some(Side::Server),
            _ => None,
        };
        let main = if s.keepalive > c.keepalive {
            Side::Server
        } else {
            Side::Client
        };
        let unanswered = self
            .pingers
            .iter()
            .map(|p| {
                p.unanswered_dropped + p.outstanding.iter().filter(|&&(_, _, ka)| ka).count() as u32
            })
            .sum();
        Some(AppSummary {
            protocol: self.protocol,
            pings,
            pongs: self.pongs,
            interval: self.interval(main),
            intervals: [self.interval(Side::Client), self.interval(Side::Server)],
            unanswered,
            trailing_unanswered: c.trailing.max(s.trailing),
            peer_talked: if c.trailing >= s.trailing {
                c.trailing > 0 && c.talked_after
            } else {
                s.talked_after
            },
            pinger,
            both,
            rtt: self.rtt,
            other_pings: c.other + s.other,
            goaway: self.goaway,
            close_code: self.close_code,
            abrupt: self.protocol == Protocol::WebSocket
                && !self.closed_frame
                && flow.close.is_some(),
            exchange: None,
        })
    }
}

fn median(v: &[f32]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    Some(f64::from(s[s.len() / 2]))
}

/// The application-keepalive analysis.
#[derive(Clone, Debug, Default)]
pub struct AppAnalysis {
    /// Payload segments looked at so far (saturating).
    seen: u8,
    state: Option<Box<State>>,
}

/// The most heap memory one connection's application state can hold: frame
/// buffers (a header and a small control frame per direction), the ping
/// gaps ([`MAX_GAPS`]) and outstanding pings ([`MAX_OUTSTANDING`]) per side.
pub const MAX_FOOTPRINT: usize = 8 * 1024;

impl AppAnalysis {
    /// Recognition, then the recognized protocol's parser.
    #[inline(never)]
    fn follow(&mut self, cx: &Ctx) -> AppNote {
        let mut note = AppNote::default();
        if self.state.as_ref().is_none_or(|s| s.upgrade.is_some()) {
            self.seen = self.seen.saturating_add(1);
            match detect::detect(cx, self.state.as_deref()) {
                detect::Detect::Nothing => {}
                // An Upgrade the server did not grant: HTTP/1.x goes on.
                detect::Detect::Refused => self.state = None,
                detect::Detect::Found(found) => {
                    let state = self
                        .state
                        .get_or_insert_with(|| Box::new(State::new(found.protocol)));
                    state.protocol = found.protocol;
                    state.upgrade = found.upgrade;
                    for (side, start) in found.sync.into_iter().flatten() {
                        state.dirs[side.idx()].sync(start);
                    }
                    if found.upgrade.is_none() {
                        note.event = Some(AppEvent::Recognized(found.protocol));
                    }
                }
            }
        }
        let Some(state) = self.state.as_deref_mut() else {
            return note;
        };
        if state.upgrade.is_some() {
            return note;
        }
        match state.protocol {
            Protocol::Http2 => h2::segment(state, cx, &mut note),
            Protocol::WebSocket => ws::segment(state, cx, &mut note),
            Protocol::Redis | Protocol::Mysql => plain::segment(state, cx, &mut note),
            Protocol::Encrypted => rhythm::segment(state, cx, &mut note),
        }
        note
    }

    /// Heap bytes this connection's state holds now (at most
    /// [`MAX_FOOTPRINT`], whatever the traffic).
    pub fn footprint(&self) -> usize {
        self.state.as_deref().map_or(0, |s| {
            std::mem::size_of::<State>()
                + s.dirs.iter().map(|d| d.buf.capacity()).sum::<usize>()
                + s.pingers
                    .iter()
                    .map(|p| {
                        p.gaps.capacity() * std::mem::size_of::<f32>()
                            + p.outstanding.capacity()
                                * std::mem::size_of::<(u64, Timestamp, bool)>()
                    })
                    .sum::<usize>()
        })
    }
}

impl Analysis for AppAnalysis {
    type Note = AppNote;
    type Summary = Option<AppSummary>;

    #[inline(always)]
    fn segment(&mut self, cx: &Ctx) -> AppNote {
        let seg = cx.seg;
        if seg.len == 0 || matches!(cx.kind, Kind::Keepalive | Kind::ZeroWindowProbe | Kind::Rst) {
            return AppNote::default();
        }
        // The common case, a connection that is none of these past its first
        // segments: one length and one first-byte test.
        if self.state.is_none()
            && self.seen >= EAGER
            && (seg.len > SMALL || !detect::worth_a_look(seg.payload))
        {
            return AppNote::default();
        }
        self.follow(cx)
    }

    #[inline(always)]
    fn relabel(&mut self, note: &AppNote) -> Option<Relabel<AppNote>> {
        match note.event {
            Some(AppEvent::Exchange {
                request: false,
                repeats: rhythm::MIN_REPEATS,
                ..
            }) => self.state.as_deref()?.rhythm.relabel(),
            _ => None,
        }
    }

    fn finish(&mut self, flow: &Flow, _now: Timestamp) -> Option<AppSummary> {
        let s = self.state.as_deref()?;
        if s.upgrade.is_some() {
            return None;
        }
        s.summary(flow)
    }
}

#[cfg(test)]
mod tests;
