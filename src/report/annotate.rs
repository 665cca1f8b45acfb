//! What a segment is and means, in words, for the text timeline.

use super::emit::Emit;
use crate::analyses::app::{AppEvent, Protocol, h2, ws};
use crate::analyses::http::{HttpNote, Stale};
use crate::analyses::keepalive::Note;
use crate::core::decode::flags;
use crate::core::tcp::Kind;
use crate::pipeline::event::PacketEvent;
use std::io::{self, Write};

/// Seconds, readably: `2.00s`, `1.02s`, `35ms`, `52µs`.
pub struct Secs(pub f64);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        let whole = |unit: f64| {
            let n = (s / unit).round();
            (n >= 1.0 && (s - n * unit).abs() < 1.0).then_some(n)
        };
        if s >= 3600.0
            && let Some(h) = whole(3600.0)
        {
            write!(f, "{h:.0} h")
        } else if s >= 600.0
            && let Some(m) = whole(60.0)
        {
            write!(f, "{m:.0} min")
        } else if s >= 100.0 {
            write!(f, "{s:.0}s")
        } else if s >= 1.0 || s == 0.0 {
            write!(f, "{s:.2}s")
        } else if s >= 0.001 {
            write!(f, "{:.0}ms", s * 1e3)
        } else {
            write!(f, "{:.0}µs", s * 1e6)
        }
    }
}

/// Writes the annotation for one event: what the segment is for TCP, then
/// what it carries for HTTP.
pub fn write(out: &mut Vec<u8>, ev: &PacketEvent) -> io::Result<()> {
    write_tcp(out, ev)?;
    if let Some(note) = ev.notes.http.message {
        write_http(out, &note)?;
    }
    if let Some(stale) = ev.notes.http.stale {
        write_stale(out, stale)?;
    }
    if let Some(event) = ev.notes.app.event {
        write_app(out, ev, event)?;
    }
    if let Some(j) = ev.socket {
        for (end, s) in [("client", &j.client), ("server", &j.server)] {
            if let Some(s) = s {
                write!(
                    out,
                    "; {end} end on this host: {}",
                    crate::host::sockets::join::describe(s)
                )?;
            }
        }
    }
    Ok(())
}

fn write_stale(out: &mut Vec<u8>, stale: Stale) -> io::Result<()> {
    let closed = |i: Option<f32>| match i {
        Some(i) => format!(" {} after its last response", Secs(f64::from(i))),
        None => String::new(),
    };
    match stale {
        Stale::Request { idle_close } => write!(
            out,
            "; sent on a connection the server closed{} (its FIN above): a stale pooled connection",
            closed(idle_close)
        ),
        Stale::Crossed { idle_close } => write!(
            out,
            "; the server closes the idle connection{} while the client's next request is already on its way (they cross)",
            closed(idle_close)
        ),
        Stale::Reset { .. } => out.write_all(
            b"; the server's kernel rejects the request sent after its close: the client sees ECONNRESET (keep-alive race)",
        ),
    }
}

/// A ping and its answer, in the protocol's own words.
fn ping_words(p: Protocol) -> (&'static str, &'static str) {
    match p {
        Protocol::Http2 => ("HTTP/2 PING", "PING ACK"),
        Protocol::WebSocket => ("WebSocket ping", "WebSocket pong"),
        Protocol::Redis => ("Redis PING", "+PONG"),
        Protocol::Mysql => ("MySQL COM_PING", "OK to COM_PING"),
        Protocol::Encrypted => ("encrypted record", "encrypted answer"),
    }
}

fn write_app(out: &mut Vec<u8>, ev: &PacketEvent, event: AppEvent) -> io::Result<()> {
    let who = ev.from.name();
    match event {
        AppEvent::Ping {
            protocol,
            ordinal,
            keepalive: true,
        } => write!(
            out,
            "; {} from {who} (application keepalive #{ordinal})",
            ping_words(protocol).0
        ),
        AppEvent::Ping {
            protocol,
            keepalive: false,
            ..
        } => write!(
            out,
            "; {} from {who} just after data from its peer (flow-control/BDP probe, not a keepalive)",
            ping_words(protocol).0
        ),
        AppEvent::Answer { protocol, rtt } => {
            write!(out, "; {}", ping_words(protocol).1)?;
            match rtt {
                Some(r) => write!(out, " in {}", Secs(f64::from(r))),
                None => out.write_all(b" (unsolicited: a one-way heartbeat)"),
            }
        }
        AppEvent::Goaway(g) => {
            write!(
                out,
                "; HTTP/2 GOAWAY {} from {}",
                h2::error_name(g.error),
                g.from.name()
            )?;
            if g.too_many_pings_text {
                out.write_all(b" \"too_many_pings\"")?;
            } else if g.has_debug {
                out.write_all(b" (with debug data: --json or --explain shows it)")?;
            }
            write!(out, " (last stream {})", g.last_stream)?;
            if g.too_many_pings() {
                out.write_all(b": the peer pings more often than this side's policy allows")?;
                if let Some(i) = g.pinged_every {
                    write!(out, " (it pinged every {})", Secs(f64::from(i)))?;
                }
            }
            Ok(())
        }
        AppEvent::Close {
            protocol: Protocol::WebSocket,
            code,
        } => match code {
            Some(c) => write!(
                out,
                "; WebSocket Close {c} ({}) from {who}",
                ws::close_meaning(c)
            ),
            None => write!(out, "; WebSocket Close (no status) from {who}"),
        },
        AppEvent::Close { protocol, .. } => {
            write!(out, "; {} COM_QUIT from {who}", protocol.name())
        }
        AppEvent::Exchange {
            request: true,
            size,
            period,
            repeats,
        } => write!(
            out,
            "; likely application keepalive (encrypted): {size}-byte record from {who}, #{repeats} of an exchange every {}",
            Secs(f64::from(period))
        ),
        AppEvent::Exchange {
            request: false,
            size,
            period,
            repeats,
        } => write!(
            out,
            "; its {size}-byte answer: {repeats} alike every {} — likely an encrypted keepalive",
            Secs(f64::from(period))
        ),
        AppEvent::Recognized(_) => Ok(()),
    }
}

fn write_http(out: &mut Vec<u8>, note: &HttpNote) -> io::Result<()> {
    match *note {
        HttpNote::Request {
            number,
            method,
            target,
            reused,
            gap,
            persistent,
        } => {
            write!(
                out,
                "; HTTP {method} {target} — request {number} on this connection"
            )?;
            match (reused, gap) {
                (true, Some(g)) => write!(
                    out,
                    " (reused: keep-alive, {} after the previous response)",
                    Secs(g)
                ),
                (true, None) => out.write_all(b" (reused: keep-alive)"),
                (false, _) if persistent => out.write_all(b" (asks for keep-alive)"),
                (false, _) => out.write_all(b" (asks the server to close after it)"),
            }
        }
        HttpNote::Response {
            number,
            status,
            persistent,
        } => write!(
            out,
            "; HTTP {status} — response {number}{}",
            if persistent {
                ""
            } else {
                " (Connection: close)"
            }
        ),
    }
}

fn write_tcp(out: &mut Vec<u8>, ev: &PacketEvent) -> io::Result<()> {
    let who = ev.from.name();
    let peer = ev.from.other().name();
    let seg = ev.seg;
    match (ev.kind, ev.notes.keepalive) {
        (
            Kind::Keepalive,
            Note::Probe {
                number: 1,
                ordinal,
                idle,
                ..
            },
        ) => {
            match idle {
                Some(idle) => write!(
                    out,
                    "keepalive probe #{ordinal} from {who} after {} idle{}",
                    Secs(idle),
                    if (idle - 7200.0).abs() < 1.0 {
                        " (the Linux, Windows and macOS default)"
                    } else {
                        ""
                    }
                )?,
                None => write!(
                    out,
                    "keepalive probe #{ordinal} from {who} (idle since before the capture)"
                )?,
            }
            if seg.len == 1 {
                out.write_all(b" (1 garbage byte)")?;
            }
            Ok(())
        }
        (
            Kind::Keepalive,
            Note::Probe {
                ordinal,
                since_prev,
                unheard: true,
                ..
            },
        ) => write!(
            out,
            "keepalive probe #{ordinal} from {who}, {} after #{}, although #{} was answered: its TS ecr did not move, the answer never reached the {who}",
            Secs(since_prev.unwrap_or(0.0)),
            ordinal - 1,
            ordinal - 1
        ),
        (
            Kind::Keepalive,
            Note::Probe {
                ordinal,
                since_prev,
                ..
            },
        ) => write!(
            out,
            "keepalive probe #{ordinal} from {who}: #{} went unanswered, retried {} later{}",
            ordinal - 1,
            Secs(since_prev.unwrap_or(0.0)),
            if since_prev.is_some_and(|g| (g - 75.0).abs() < 0.5) {
                " (Linux's default interval)"
            } else {
                ""
            }
        ),
        (Kind::Keepalive, _) => write!(out, "keepalive probe from {who}"),
        (_, Note::ProbeAnswered { ordinal, rtt, .. }) => {
            if ev.kind == Kind::KeepaliveAck {
                write!(
                    out,
                    "keepalive ACK to probe #{ordinal} in {}: {who} alive",
                    Secs(rtt)
                )
            } else {
                write!(
                    out,
                    "{} from {who}, answers keepalive probe #{ordinal}: {who} alive",
                    ev.kind.as_str()
                )
            }
        }
        (_, Note::PeerReset { ordinal, .. }) => write!(
            out,
            "RST in reply to keepalive probe #{ordinal}: {who} no longer knows this connection (rebooted, or its socket is gone)"
        ),
        (
            _,
            Note::GaveUp {
                count,
                ordinal,
                after,
                unheard: true,
            },
        ) => write!(
            out,
            "RST from {who} {} after probe #{ordinal}: {count} probes in a row whose answers never reached the {who}, {peer} declared dead (ETIMEDOUT) although it answered",
            Secs(after)
        ),
        (
            _,
            Note::GaveUp {
                count,
                ordinal,
                after,
                ..
            },
        ) => write!(
            out,
            "RST from {who} {} after probe #{ordinal}: {count} unanswered probes in a row, {peer} declared dead (ETIMEDOUT)",
            Secs(after)
        ),
        (Kind::Syn, _) => write!(out, "handshake 1/3: {who} opens the connection (SYN)"),
        (Kind::SynAck, _) => write!(out, "handshake 2/3: {who} accepts (SYN-ACK)"),
        (Kind::HandshakeAck, _) => out.write_all(b"handshake 3/3: connection established"),
        (Kind::Data, _) => {
            out.s("data ")
                .s(who)
                .s(" → ")
                .s(peer)
                .s(", ")
                .n(seg.len)
                .s(" bytes");
            Ok(())
        }
        (Kind::Ack, _) => {
            out.s("ACK from ").s(who);
            Ok(())
        }
        (Kind::KeepaliveAck, _) => write!(out, "keepalive ACK from {who}"),
        (Kind::ZeroWindowProbe, _) => write!(
            out,
            "zero-window probe from {who}: {peer} advertises window 0, {who} asks whether it opened"
        ),
        (Kind::ZeroWindow, _) => write!(
            out,
            "zero window from {who}: its receive buffer is full (its application is not reading); the {peer} must wait"
        ),
        (Kind::WindowUpdate, _) => write!(
            out,
            "window update from {who}: window {}, the {peer} may send again",
            seg.win
        ),
        (Kind::ZeroWindowProbeAck, _) => {
            write!(out, "zero-window probe ACK from {who}, window {}", seg.win)
        }
        (Kind::Retransmission, _) if seg.has(flags::FIN) => {
            if ev.late {
                write!(
                    out,
                    "FIN retransmitted by {who} after the connection ended (orphaned socket)"
                )
            } else {
                write!(out, "FIN retransmitted by {who}")
            }
        }
        (Kind::Retransmission, _) => write!(out, "retransmission from {who}, {} bytes", seg.len),
        (Kind::Fin, _) => {
            if ev.late {
                write!(
                    out,
                    "FIN from {who} after the connection ended: {who}'s socket lingers (orphaned), {peer} will answer RST"
                )
            } else if ev.first_close {
                write!(out, "FIN: {who} closes first (it will hold TIME_WAIT)")
            } else {
                write!(out, "FIN: {who} closes too")
            }
        }
        (Kind::Rst, _) if let Some(ttl) = ev.injected => write!(
            out,
            "RST injected by a middlebox, not sent by the {who}: TTL {}, while the {who}'s own segments arrive with TTL {ttl}",
            seg.ttl,
        ),
        (Kind::Rst, _) => {
            if ev.late {
                write!(
                    out,
                    "RST from {who}: answers a segment of a connection it no longer has"
                )
            } else if ev.first_close {
                write!(out, "RST: {who} aborts the connection")
            } else {
                write!(out, "RST from {who}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Secs;

    #[test]
    fn seconds_read_as_people_say_them() {
        let shown = |s: f64| Secs(s).to_string();
        assert_eq!(shown(7200.0), "2 h");
        assert_eq!(shown(7200.4), "2 h");
        assert_eq!(shown(7230.0), "7230s");
        assert_eq!(shown(900.0), "15 min");
        assert_eq!(shown(350.0), "350s");
        assert_eq!(shown(75.0), "75.00s");
        assert_eq!(shown(1.02), "1.02s");
        assert_eq!(shown(0.028), "28ms");
        assert_eq!(shown(0.000_028), "28µs");
        assert_eq!(shown(0.0), "0.00s");
    }
}
