//! Reporting middlebox idle timeouts: per-server bounds from all flows, the
//! advice, and the account of a flow a middlebox killed.

use super::annotate::Secs;
use crate::analyses::middlebox::Cause;
use crate::pipeline::summary::FlowSummary;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Most servers followed (a busy capture may hold many).
const MAX_SERVERS: usize = 1_000;

/// Evidence about one server's path, from all its flows.
#[derive(Clone, Copy, Debug, Default)]
struct Evidence {
    /// Longest silence a flow survived (a lower bound), and that flow.
    survived: Option<(f64, u32)>,
    /// Shortest silence that killed a flow (an upper bound), flow, cause.
    killed: Option<(f64, u32, Cause)>,
    /// Longest data pause keepalive bridged, and that flow.
    bridged: Option<(f64, u32)>,
    /// Connections that bear on the bound: killed, and survived a silence.
    killed_flows: u32,
    survived_flows: u32,
}

/// Gathers evidence per server (ip:port) as flows are reported.
#[derive(Debug, Default)]
pub struct Estimator {
    servers: HashMap<SocketAddr, Evidence>,
    order: Vec<SocketAddr>,
}

impl Estimator {
    pub fn add(&mut self, f: &FlowSummary) {
        if f.findings.idle.survived.is_none()
            && f.findings.idle.killed.is_none()
            && f.findings.idle.bridged.is_none()
        {
            return;
        }
        if !self.servers.contains_key(&f.server) {
            if self.servers.len() >= MAX_SERVERS {
                return;
            }
            self.order.push(f.server);
        }
        let e = self.servers.entry(f.server).or_default();
        e.killed_flows += u32::from(f.findings.idle.killed.is_some());
        e.survived_flows += u32::from(f.findings.idle.survived.is_some());
        if let Some(s) = f.findings.idle.survived
            && f.findings.idle.killed.is_none_or(|(k, _)| s < k)
            && e.survived.is_none_or(|(best, _)| s > best)
        {
            e.survived = Some((s, f.id));
        }
        if let Some((k, cause)) = f.findings.idle.killed
            && e.killed.is_none_or(|(best, _, _)| k < best)
        {
            e.killed = Some((k, f.id, cause));
        }
        if let Some(b) = f.findings.idle.bridged
            && e.bridged.is_none_or(|(best, _)| b > best)
        {
            e.bridged = Some((b, f.id));
        }
    }

    /// The advice for every server whose connections a middlebox killed.
    pub fn advice(&self) -> String {
        let mut o = String::new();
        for server in &self.order {
            let e = self.servers[server];
            let Some((killed, kflow, cause)) = e.killed else {
                continue;
            };
            let lower = e.survived.map(|(s, _)| s).filter(|s| *s < killed);
            let range = match lower {
                Some(s) => format!("between {} and {}", Secs(s), Secs(killed)),
                None => format!("under {}", Secs(killed)),
            };
            let _ = writeln!(
                o,
                "A middlebox toward {server} forgets idle connections: its idle timeout is {range}."
            );
            if let Some((s, sflow)) = e.survived.filter(|(s, _)| *s < killed) {
                let _ = writeln!(
                    o,
                    "  evidence: flow {sflow} survived {} of silence;",
                    Secs(s)
                );
            }
            let how = match cause {
                Cause::SilentDrop => "its next data was dropped without an answer (silent drop)",
                Cause::InjectedRst => {
                    "its next segment was answered by a RST the middlebox injected"
                }
            };
            let _ = writeln!(
                o,
                "  evidence: flow {kflow} died after {} of silence: {how}.",
                Secs(killed)
            );
            let _ = writeln!(o, "  {}", support(&e));
            if let Some((b, bflow)) = e.bridged.filter(|(b, _)| *b >= killed) {
                let _ = writeln!(
                    o,
                    "  proof the fix works: flow {bflow}'s keepalive probes carried it through a {} pause in its data.",
                    Secs(b)
                );
            }
            let target = lower.unwrap_or(killed);
            let idle = (target / 2.0).floor().max(1.0);
            let _ = writeln!(
                o,
                "  fix: turn keepalive on (SO_KEEPALIVE) with TCP_KEEPIDLE below {} (e.g. {idle:.0} s), so that a probe, \
                 and a retry TCP_KEEPINTVL later if one is lost, reaches the middlebox before it forgets the \
                 connection; or raise the middlebox's idle timeout above the application's longest pause.",
                Secs(target)
            );
        }
        o
    }
}

/// How many connections the bound rests on, and what else would look the same.
fn support(e: &Evidence) -> String {
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    let mut s = format!(
        "support: {} connection{} killed, {} survived a silence",
        e.killed_flows,
        plural(e.killed_flows),
        e.survived_flows
    );
    if e.killed_flows == 1 {
        s.push_str(
            "; with one killed connection, a dead host or a firewall that started dropping would look the \
             same — more connections to this server would tell",
        );
    }
    s.push('.');
    s
}

/// The account of a flow a middlebox killed, for `--explain`.
pub fn explain(f: &FlowSummary) -> Option<String> {
    let (killed, cause) = f.findings.idle.killed?;
    let mut o = String::new();
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
         or load balancer keeps state per connection and forgets it after an idle timeout (AWS NLB 350 s, \
         Azure LB 4 min, Linux conntrack's nf_conntrack_tcp_timeout_established).",
        Secs(killed)
    );
    if let Some(s) = f.findings.idle.survived.filter(|s| *s < killed) {
        let _ = writeln!(
            o,
            "  Earlier it survived {} of silence, so the timeout lies between {} and {}.",
            Secs(s),
            Secs(s),
            Secs(killed)
        );
    }
    if f.findings.keepalive.probes == 0 {
        let _ = writeln!(
            o,
            "  No keepalive probe was sent: nothing kept the middlebox's state fresh during the pause."
        );
    } else if let Some(idle) = f.findings.keepalive.idle {
        let _ = writeln!(
            o,
            "  Keepalive was on, but its TCP_KEEPIDLE ({}) is longer than the middlebox's timeout.",
            Secs(idle)
        );
    }
    Some(o)
}
