//! The application-keepalive analysis's `--explain` account: who pinged,
//! how often, what became of the pings, GOAWAY, the encrypted rhythm.

use super::{AppSummary, Protocol, h2, ws};
use crate::analyses::event::{Close, Summary};
use crate::analyses::verdict::Verdict;
use crate::core::tcp::Side;
use crate::core::text::Secs;
use std::fmt::Write as _;

/// The paragraphs on the application's own keepalive.
pub(super) fn explain<F>(f: &Summary<F>, a: AppSummary) -> String {
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
        if f.verdict == Verdict::AppPingTimeout {
            let _ = writeln!(
                o,
                "  {latest} went unanswered{}. The peer's application stopped answering: frozen (a stopped \
                 process, a long garbage-collection pause, a blocked event loop), overloaded, or gone. Where the \
                 peer's kernel still acknowledged the pings' segments (bare ACKs in the timeline), the host is up \
                 and only the application is stuck: TCP keepalive cannot see that, application pings can.",
                if f.close == Close::Open {
                    ""
                } else {
                    ", and then the connection ended"
                }
            );
        } else if a.peer_talked {
            let _ = writeln!(
                o,
                "  {latest} got no answer, but the peer went on sending after {}: its application is alive and \
                 talking, only its pongs are missing (a peer that does not answer pings, or answers them late), \
                 not a ping timeout.",
                if a.trailing_unanswered == 1 {
                    "it"
                } else {
                    "them"
                }
            );
        } else {
            let _ = writeln!(
                o,
                "  {latest} got no answer {}: one ping is too little to tell a stuck peer from an answer still \
                 on its way.",
                if f.close == Close::Open {
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
    o
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

fn plural(n: u32, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}
