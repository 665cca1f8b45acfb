//! A middlebox's idle timeout across connections: per server, the evidence
//! every connection reported gives (the advice after the table), and the
//! bounds the connections a report shows give (the HTML report's bands).

use super::{Cause, IdleSummary};
use crate::core::text::Secs;
use std::collections::{BTreeMap, HashMap};
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
    /// Connection `id` to `server` found `idle`.
    pub fn add(&mut self, id: u32, server: SocketAddr, idle: &IdleSummary) {
        if idle.survived.is_none() && idle.killed.is_none() && idle.bridged.is_none() {
            return;
        }
        if !self.servers.contains_key(&server) {
            if self.servers.len() >= MAX_SERVERS {
                return;
            }
            self.order.push(server);
        }
        let e = self.servers.entry(server).or_default();
        e.killed_flows += u32::from(idle.killed.is_some());
        e.survived_flows += u32::from(idle.survived.is_some());
        if let Some(s) = idle.survived
            && idle.killed.is_none_or(|(k, _)| s < k)
            && e.survived.is_none_or(|(best, _)| s > best)
        {
            e.survived = Some((s, id));
        }
        if let Some((k, cause)) = idle.killed
            && e.killed.is_none_or(|(best, _, _)| k < best)
        {
            e.killed = Some((k, id, cause));
        }
        if let Some(b) = idle.bridged
            && e.bridged.is_none_or(|(best, _)| b > best)
        {
            e.bridged = Some((b, id));
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
            if let Some(named) = super::suspects::named(lower, killed) {
                let _ = writeln!(o, "  {named}.");
            }
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

/// Per server, the middlebox idle timeout its connections bound: the
/// longest silence one survived, the shortest that killed one, and how many
/// were killed.
#[derive(Debug, Default)]
pub struct Bounds(BTreeMap<SocketAddr, (Option<f64>, Option<f64>, u32)>);

impl Bounds {
    pub fn of<'a>(flows: impl Iterator<Item = (SocketAddr, &'a IdleSummary)>) -> Bounds {
        let mut by: BTreeMap<SocketAddr, (Option<f64>, Option<f64>, u32)> = BTreeMap::new();
        for (server, idle) in flows {
            let e = by.entry(server).or_default();
            if let Some(s) = idle.survived {
                e.0 = Some(e.0.map_or(s, |m: f64| m.max(s)));
            }
            if let Some((k, _)) = idle.killed {
                e.1 = Some(e.1.map_or(k, |m: f64| m.min(k)));
                e.2 += 1;
            }
        }
        Bounds(by)
    }

    /// A server's band: (lower, upper), when a connection was killed.
    pub fn band(&self, server: SocketAddr) -> Option<(f64, f64)> {
        self.0
            .get(&server)
            .and_then(|&(lo, hi, _)| Some((lo.unwrap_or(0.0), hi?)))
    }

    /// A line per server whose connections a middlebox killed.
    pub fn bands(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|(server, &(lo, hi, killed))| {
                let hi = hi?;
                let secs = |v: f64| Secs(v).to_string();
                Some(match lo {
                    Some(lo) => format!(
                        "{server}: connections idle longer than {}–{} died ({killed} killed by a middlebox after an idle gap): keep them busier than every {}{}",
                        secs(lo),
                        secs(hi),
                        secs(lo),
                        super::suspects::named(Some(lo), hi)
                            .map_or_else(String::new, |n| format!("; {n}"))
                    ),
                    None => format!(
                        "{server}: {killed} connection(s) killed by a middlebox after {} idle",
                        secs(hi)
                    ),
                })
            })
            .collect()
    }
}
