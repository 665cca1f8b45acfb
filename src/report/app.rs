//! Application keepalives and the HTTP keep-alive race, in words, for
//! `--explain` (see `app` and `http` for what is recognized and how).

use super::annotate::Secs;
use crate::analyses::app::{AppSummary, Protocol, h2, ws};
use crate::analyses::http::HttpSummary;
use crate::core::tcp::Side;
use crate::pipeline::summary::FlowSummary;
use std::fmt::Write as _;

fn plural(n: u32, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The paragraphs on the application's own keepalive, if it has one.
pub fn explain(f: &FlowSummary) -> Option<String> {
    let a = f.findings.app?;
    let mut o = String::new();
    // A refusal is the headline: first.
    if let Some(g) = a.goaway.filter(|g| g.too_many_pings()) {
        goaway(&mut o, &a, g);
    }
    match a.protocol {
        Protocol::Encrypted => encrypted(&mut o, &a),
        _ => pings(&mut o, &a),
    }
    if a.trailing_unanswered > 0 {
        let latest = if a.trailing_unanswered == 1 {
            format!("The latest {} ping", a.protocol.name())
        } else {
            format!(
                "The latest {} {} pings",
                a.trailing_unanswered,
                a.protocol.name()
            )
        };
        if f.verdict == crate::pipeline::summary::Verdict::AppPingTimeout {
            let _ = writeln!(
                o,
                "  {latest} went unanswered{}. The peer's application stopped answering: frozen (a stopped \
                 process, a long garbage-collection pause, a blocked event loop), overloaded, or gone. Where the \
                 peer's kernel still acknowledged the pings' segments (bare ACKs in the timeline), the host is up \
                 and only the application is stuck: TCP keepalive cannot see that, application pings can.",
                if f.close == crate::pipeline::summary::Close::Open {
                    ""
                } else {
                    ", and then the connection ended"
                }
            );
        } else {
            let _ = writeln!(
                o,
                "  {latest} got no answer {}: one ping is too little to tell a stuck peer from an answer still \
                 on its way.",
                if f.close == crate::pipeline::summary::Close::Open {
                    "before the capture ended"
                } else {
                    "before the connection was closed normally"
                }
            );
        }
    }
    if let Some(g) = a.goaway.filter(|g| !g.too_many_pings()) {
        goaway(&mut o, &a, g);
    }
    if a.protocol == Protocol::WebSocket {
        if a.abrupt {
            let _ = writeln!(
                o,
                "  The TCP connection ended ({} by the {}) without a WebSocket Close frame: the application \
                 reports close code 1006 (abnormal closure). The peer process died or was killed, or something \
                 on the path cut the connection; pings stop that from going unnoticed only while they are sent \
                 more often than any load balancer's idle timeout.",
                f.close.as_str().to_uppercase(),
                f.close.by().map_or("capture", |s| s.name())
            );
        } else if let Some(code) = a.close_code {
            let _ = writeln!(
                o,
                "  The connection closed with a WebSocket Close frame, status {code} ({}).",
                ws::close_meaning(code)
            );
        }
    }
    Some(o)
}

fn who(a: &AppSummary) -> String {
    if a.both {
        "both sides".to_string()
    } else {
        format!("the {}", a.pinger.map_or("client", Side::name))
    }
}

fn pings(o: &mut String, a: &AppSummary) {
    let (ping, what) = match a.protocol {
        Protocol::Http2 => (
            "HTTP/2 PING",
            "gRPC keepalive (`GRPC_ARG_KEEPALIVE_TIME_MS`, grpc-go `keepalive.ClientParameters.Time`) or the \
             HTTP/2 library's own",
        ),
        Protocol::WebSocket => (
            "WebSocket ping",
            "the WebSocket library's heartbeat (the Python `websockets` `ping_interval`, `ws`'s `ping()` on a \
             timer, a browser never pings on its own)",
        ),
        Protocol::Redis => (
            "Redis PING",
            "a client's health check (redis-py `health_check_interval`, a pool's test-on-borrow); the server \
             closes connections idle longer than its `timeout` (0, never, by default)",
        ),
        Protocol::Mysql => (
            "MySQL COM_PING",
            "a pool's validation (`mysql_ping()`, HikariCP's `keepaliveTime`); it keeps the server's \
             `wait_timeout` (8 h by default) from closing an idle connection only when sent more often",
        ),
        Protocol::Encrypted => ("record", ""),
    };
    if a.pings == 0 {
        let _ = writeln!(
            o,
            "  {}: no keepalive ping was seen{}.",
            a.protocol.name(),
            if a.other_pings > 0 {
                format!(
                    " ({} sent while data flowed: flow-control probes such as gRPC's BDP estimation, not keepalives)",
                    plural(a.other_pings, "PING")
                )
            } else {
                String::new()
            }
        );
        return;
    }
    let every = |i: Option<f64>| {
        i.map(|i| format!(", one every {}", Secs(i)))
            .unwrap_or_default()
    };
    let sent = if a.both {
        format!(
            "the client and the server both pinged ({} in all; client{}, server{})",
            a.pings,
            every(a.intervals[0]).replacen(", one", "", 1),
            every(a.intervals[1]).replacen(", one", "", 1)
        )
    } else {
        format!(
            "{} sent {}{}",
            who(a),
            plural(a.pings, ping),
            every(a.interval)
        )
    };
    let answered = a.pongs.min(a.pings);
    let fate = if a.unanswered == 0 && answered >= a.pings && a.pings == 1 {
        a.rtt
            .map(|r| format!("answered in {}", Secs(r)))
            .unwrap_or_else(|| "answered".to_string())
    } else if a.unanswered == 0 && answered >= a.pings {
        format!(
            "all answered{}",
            a.rtt
                .map(|r| format!(" (longest round trip {})", Secs(r)))
                .unwrap_or_default()
        )
    } else {
        format!(
            "{answered} answered, {} unanswered",
            a.unanswered.max(a.pings - answered)
        )
    };
    let _ = writeln!(
        o,
        "  Application keepalive ({}): {sent}, {fate} — {what}.",
        a.protocol.name()
    );
    if a.other_pings > 0 {
        let _ = writeln!(
            o,
            "  {} more went right after data from the peer: flow-control probes (gRPC's BDP estimation), \
             not keepalives.",
            plural(a.other_pings, "PING")
        );
    }
}

fn goaway(o: &mut String, a: &AppSummary, g: crate::analyses::app::Goaway) {
    let debug = g.debug.to_string();
    let debug = if debug.is_empty() {
        String::new()
    } else {
        format!(" \"{debug}\"")
    };
    let (from, to) = (g.from.name(), g.from.other().name());
    if g.too_many_pings() {
        let every = g
            .pinged_every
            .map(f64::from)
            .or(a.interval)
            .map(|i| format!(" every {}", Secs(i)))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  The {from} refused the {to}'s pings: GOAWAY ENHANCE_YOUR_CALM{debug} (last stream {}), then the \
             connection ended.\n  \
             Why: the {to} pinged{every} (its keepalive time: `GRPC_ARG_KEEPALIVE_TIME_MS`, grpc-go \
             `ClientParameters.Time`); a gRPC server accepts pings without data at most every \
             `GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS` (grpc-go `EnforcementPolicy.MinTime`, 5 min by \
             default) and sends this GOAWAY after `GRPC_ARG_HTTP2_MAX_PING_STRIKES` (2) early ones. Calls in flight \
             fail with UNAVAILABLE; a gRPC client then doubles its keepalive time.\n  \
             What to change: make the {to}'s keepalive time at least the {from}'s minimum (5 min unless it was \
             lowered), or lower the {from}'s minimum and permit pings without calls \
             (`GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS`, grpc-go `EnforcementPolicy{{MinTime, PermitWithoutStream: \
             true}}`): the two ends must agree.",
            g.last_stream
        );
        return;
    }
    let _ = write!(
        o,
        "  The {from} sent GOAWAY {}{debug} (last stream {}): streams after it are refused and the connection ends.",
        h2::error_name(g.error),
        g.last_stream
    );
    if g.error == 0 {
        o.push_str(
            " NO_ERROR is a graceful shutdown: a server restarting, or its maximum connection age or idle time \
             (gRPC `GRPC_ARG_MAX_CONNECTION_IDLE_MS` / `GRPC_ARG_MAX_CONNECTION_AGE_MS`).",
        );
    }
    o.push('\n');
}

fn encrypted(o: &mut String, a: &AppSummary) {
    let (req, ans) = a.exchange.unwrap_or_default();
    let _ = writeln!(
        o,
        "  Likely an application keepalive, encrypted: {} sent a {req}-byte record answered by a {ans}-byte \
         record{}, {} times with nothing else between them. That is the rhythm of SSH `ServerAliveInterval` \
         or gRPC / HTTP/2 keepalive under TLS (a 17-byte PING frame is a 39-byte TLS 1.3 record). The content \
         is encrypted, so this is an inference: a fixed-size status poll at a fixed period looks the same.",
        who(a),
        a.interval
            .map(|i| format!(" every {}", Secs(i)))
            .unwrap_or_default(),
        a.pings
    );
}

/// The HTTP keep-alive race, or the order of idle closes, in words.
pub fn http_ending(h: &HttpSummary) -> Option<String> {
    let advertised = h
        .advertised_timeout
        .map(|t| format!(", advertised as `Keep-Alive: timeout={t}`"))
        .unwrap_or_default();
    if h.stale_request {
        let closed = h
            .server_idle_close
            .map(|i| format!(" {} after its last response", Secs(i)))
            .unwrap_or_default();
        return Some(format!(
            "The keep-alive race: the server closed this idle connection{closed} (its keep-alive timeout{advertised}), \
             but the client's pool still held it and sent the next request after the server's FIN; the server's \
             kernel answered RST, which the client sees as ECONNRESET (\"socket hang up\"). Order the timeouts: \
             the client pool's idle timeout < the server's keep-alive timeout{} < any load balancer's idle \
             timeout — or retry idempotent requests that fail on a reused connection.",
            h.server_idle_close
                .map(|i| format!(" (here about {})", Secs(i)))
                .unwrap_or_default()
        ));
    }
    if let Some(i) = h.client_idle_close {
        let advertised = h
            .advertised_timeout
            .map(|t| format!(" (advertised as `Keep-Alive: timeout={t}`)"))
            .unwrap_or_default();
        return Some(format!(
            "The client closed the idle connection {} after the last response, before the server's keep-alive \
             timeout{advertised}: the safe order (the client holds TIME_WAIT).",
            Secs(i)
        ));
    }
    h.server_idle_close.map(|i| {
        format!(
            "The server closed the idle connection {} after its last response (its keep-alive timeout{advertised}); \
             a client pool that keeps idle connections longer than that races it.",
            Secs(i)
        )
    })
}

/// Across connections to one server: the keep-alive timeout the server's
/// behaviour bounds. A connection reused after an idle gap, or closed idle
/// by its client, shows the server keeps idle connections at least that
/// long; the server's own idle closes show how long at most. Said only when
/// two or more connections to the server support it.
pub fn server_timeouts(flows: &[FlowSummary]) -> Vec<String> {
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Bounds {
        flows: u32,
        at_least: Option<f64>,
        closes: Vec<f64>,
        stale: u32,
        advertised: Option<f64>,
    }
    let mut by_server: BTreeMap<std::net::SocketAddr, Bounds> = BTreeMap::new();
    for f in flows {
        let Some(h) = f.findings.http else { continue };
        if !h.keep_alive {
            continue;
        }
        let b = by_server.entry(f.server).or_default();
        b.flows += 1;
        for kept in [h.max_gap, h.client_idle_close].into_iter().flatten() {
            b.at_least = Some(b.at_least.map_or(kept, |m: f64| m.max(kept)));
        }
        b.closes.extend(h.server_idle_close);
        b.stale += u32::from(h.stale_request);
        b.advertised = b.advertised.or(h.advertised_timeout);
    }
    let mut out = Vec::new();
    for (server, b) in by_server {
        if b.flows < 2 || (b.closes.is_empty() && b.at_least.is_none()) {
            continue;
        }
        let mut s = format!("Server {server}, from {} kept-alive connections: ", b.flows);
        let lo = b.at_least.map(Secs);
        let closes = b.closes.len();
        match (b.closes.iter().copied().reduce(f64::min), lo) {
            (Some(first), Some(lo)) => {
                let _ = write!(
                    s,
                    "it keeps an idle connection at least {lo} and closes it after about {} ({} idle close{})",
                    Secs(first),
                    closes,
                    if closes == 1 { "" } else { "s" }
                );
            }
            (Some(first), None) => {
                let _ = write!(
                    s,
                    "it closes idle connections after about {} ({} idle close{})",
                    Secs(first),
                    closes,
                    if closes == 1 { "" } else { "s" }
                );
            }
            (None, Some(lo)) => {
                let _ = write!(
                    s,
                    "it keeps idle connections at least {lo} (it never closed one first here)"
                );
            }
            (None, None) => continue,
        }
        if let Some(t) = b.advertised {
            let _ = write!(s, "; it advertises `Keep-Alive: timeout={t}`");
        }
        s.push('.');
        if closes > 0 {
            let _ = write!(
                s,
                " A client pool must drop idle connections sooner than that{}.",
                if b.stale > 0 {
                    format!(
                        " ({} request{} here went into a closed connection)",
                        b.stale,
                        if b.stale == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                }
            );
        }
        out.push(s);
    }
    out
}
