//! What the middlebox analysis says: its JSON member and Zeek fields, the
//! `idle-timeout` verdict's words and account, its per-server bounds (the
//! advice after the table, the HTML report's bands, the metrics).

use super::advice::{Bounds, Estimator};
use super::{Cause, IdleWatch};
use crate::analyses::describe::{Describe, Field, FindingsOf, MarkOf, metric_head};
use crate::analyses::event::{Step, Summary};
use crate::core::emit::Emit;
use crate::core::text::Secs;
use crate::host::sysctls::Sysctls;
use std::fmt::Write as _;

/// A server's bounds for `--metrics`: the longest silence a connection
/// survived, the shortest that killed one.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerBounds {
    survived: Option<f64>,
    killed: Option<f64>,
}

impl Describe for IdleWatch {
    type Mark = ();
    type Tally = ();
    type ServerTally = ServerBounds;
    type Evidence = Estimator;

    const ZEEK: &'static [(&'static str, &'static str)] = &[
        ("idle_timeout_survived", "interval"),
        ("idle_timeout_killed_after", "interval"),
    ];

    fn mark(_: &Self::Note) {}

    fn json_flow<F: FindingsOf<Self>>(f: &Summary<F>, out: &mut Vec<u8>) {
        let idle = f.findings.found();
        let (killed_after, cause) = match idle.killed {
            Some((k, c)) => (Some(k), Some(c.as_str())),
            None => (None, None),
        };
        out.s(",\"idle_timeout\":{\"survived\":")
            .num(idle.survived)
            .s(",\"killed_after\":")
            .num(killed_after)
            .s(",\"cause\":")
            .opt_str(cause)
            .s("}");
    }

    fn zeek<F: FindingsOf<Self>>(f: &Summary<F>, out: &mut Vec<Field>) {
        let idle = f.findings.found();
        let secs = |v: Option<f64>| v.map_or(Field::Unset, Field::Secs);
        out.push(secs(idle.survived));
        out.push(secs(idle.killed.map(|(k, _)| k)));
    }

    fn ended<F: FindingsOf<Self>>(_f: &Summary<F>) -> Option<String> {
        Some(": a middlebox forgot it while it was idle".to_string())
    }

    /// The account of a connection a middlebox killed.
    fn account<F: FindingsOf<Self>, M: MarkOf<Self>>(
        f: &Summary<F>,
        _steps: &[Step<M>],
        o: &mut String,
    ) -> bool {
        let idle = f.findings.found();
        let Some((killed, cause)) = idle.killed else {
            return false;
        };
        let how = match cause {
            Cause::SilentDrop => {
                "the next data was dropped without an answer: it was retransmitted, and nothing came back \
                 (silent drop)"
            }
            Cause::InjectedRst => {
                "the next segment was answered by a RST that did not come from the peer: its IP TTL differs from \
                 the peer's own segments, so a box on the path injected it"
            }
        };
        let _ = writeln!(
            o,
            "  The connection died in a middlebox, not at the peer: after {} of silence, {how}. A NAT, firewall \
             or load balancer keeps state per connection and forgets it after an idle timeout.",
            Secs(killed)
        );
        let lower = idle.survived.filter(|s| *s < killed);
        if let Some(s) = lower {
            let _ = writeln!(
                o,
                "  Earlier it survived {} of silence, so the timeout lies between {} and {}; {}.",
                Secs(s),
                Secs(s),
                Secs(killed),
                super::suspects::named(Some(s), killed)
                    .unwrap_or_else(|| { "no well-known default lies in that range".to_string() })
            );
        }
        // What to set: a probe (and its retry) before the middlebox forgets.
        // Without a lower bound this connection says only "under killed":
        // a number from it alone would mislead (the advice after the table
        // bounds it with every connection to the server).
        let Some(below) = lower else {
            let what = if f.shared.probes == 0 {
                "Turn keepalive on (SO_KEEPALIVE) with TCP_KEEPIDLE"
            } else {
                "Keepalive was on, but too late: set TCP_KEEPIDLE"
            };
            let _ = writeln!(
                o,
                "  {what} below the middlebox's timeout. This connection alone shows only that the timeout is \
                 under {}; the advice after the table bounds it with every connection to this server.",
                Secs(killed)
            );
            return true;
        };
        let suggest = (below / 2.0).floor().max(1.0);
        if f.shared.probes == 0 {
            let _ = writeln!(
                o,
                "  No keepalive probe was sent: nothing kept the middlebox's state fresh during the pause. Turn \
                 keepalive on (SO_KEEPALIVE) with TCP_KEEPIDLE below {} (e.g. {suggest:.0} s), on the socket or \
                 for every socket that leaves it unset with sysctl net.ipv4.tcp_keepalive_time={suggest:.0}.",
                Secs(below)
            );
        } else if let Some(idle) = f.shared.keepalive_idle {
            let _ = writeln!(
                o,
                "  Keepalive was on, but its TCP_KEEPIDLE ({}) is longer than the middlebox's timeout: lower it \
                 below {} (e.g. {suggest:.0} s; TCP_KEEPIDLE on the socket, or net.ipv4.tcp_keepalive_time when \
                 the application turns keepalive on without setting it).",
                Secs(idle),
                Secs(below)
            );
        }
        true
    }

    fn gather<F: FindingsOf<Self>>(e: &mut Estimator, f: &Summary<F>) {
        e.add(f.id, f.server, f.findings.found());
    }

    fn advice(e: &Estimator) -> String {
        e.advice()
    }

    fn overview<F: FindingsOf<Self>, M: MarkOf<Self>>(
        flows: &[(&Summary<F>, &[Step<M>])],
        _sysctls: Option<Sysctls>,
        o: &mut Vec<String>,
    ) {
        let by = Bounds::of(flows.iter().map(|(f, _)| (f.server, f.findings.found())));
        o.extend(by.bands());
    }

    fn band<F: FindingsOf<Self>>(flows: &[&Summary<F>], f: &Summary<F>) -> Option<(f64, f64)> {
        let by = Bounds::of(flows.iter().map(|f| (f.server, f.findings.found())));
        by.band(f.server)
    }

    fn tally<F: FindingsOf<Self>>(_t: &mut (), s: &mut ServerBounds, f: &Summary<F>) {
        let idle = f.findings.found();
        if let Some(v) = idle.survived {
            s.survived = Some(s.survived.map_or(v, |m| m.max(v)));
        }
        if let Some((v, _)) = idle.killed {
            s.killed = Some(s.killed.map_or(v, |m| m.min(v)));
        }
    }

    fn render_servers(servers: &[(&str, &ServerBounds)], o: &mut String) {
        metric_head(
            o,
            "kacap_idle_timeout_seconds",
            "gauge",
            "Middlebox idle timeout bounds per server: the longest silence a connection survived (lower) and the shortest that killed one (upper).",
        );
        for (name, s) in servers {
            if let Some(v) = s.survived {
                let _ = writeln!(
                    o,
                    "kacap_idle_timeout_seconds{{server=\"{name}\",bound=\"lower\"}} {v}"
                );
            }
            if let Some(v) = s.killed {
                let _ = writeln!(
                    o,
                    "kacap_idle_timeout_seconds{{server=\"{name}\",bound=\"upper\"}} {v}"
                );
            }
        }
    }
}
