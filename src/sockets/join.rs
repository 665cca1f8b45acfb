//! `-i IFACE --sockets`: the socket table beside the sniffer, joined per
//! connection (as bandwhich joins its socket table to its packets). When a
//! connection is first seen, its ends are looked up among this host's
//! sockets (the table is read again at most once a second, when a
//! connection is not in it yet); the sinks then show the owner and the
//! configuration on the connection's first line, in the table and in the
//! flow record, and check what the packets showed against it.

use super::{Host, Socket, Source, Sysctls, TcpState};
use crate::event::{PacketEvent, Revisions, Sink, Stats};
use crate::summary::FlowSummary;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A connection's ends that are sockets of this host.
#[derive(Clone, Debug, PartialEq)]
pub struct Joined {
    /// The socket at the connection's client end, if it is on this host.
    pub client: Option<Socket>,
    /// The socket at its server end (both: a connection over loopback).
    pub server: Option<Socket>,
    pub sysctls: Sysctls,
    /// The host's sysctls when `--netns` entered another namespace whose
    /// differ.
    pub host_sysctls: Option<Sysctls>,
}

impl Joined {
    /// The end whose configuration matters for `side`'s probes.
    pub fn of(&self, side: crate::tcp::Side) -> Option<&Socket> {
        match side {
            crate::tcp::Side::Client => self.client.as_ref(),
            crate::tcp::Side::Server => self.server.as_ref(),
        }
    }
}

/// The socket table, read when needed.
pub struct Joiner {
    host: Box<dyn Host>,
    /// (local, remote) → the socket.
    table: HashMap<(SocketAddr, SocketAddr), Socket>,
    sysctls: Option<Sysctls>,
    host_sysctls: Option<Sysctls>,
    read_at: Option<Instant>,
    /// The table is read again at most this often.
    every: Duration,
}

impl Joiner {
    pub fn new(host: Box<dyn Host>, host_sysctls: Option<Sysctls>) -> Joiner {
        Joiner {
            host,
            table: HashMap::new(),
            sysctls: None,
            host_sysctls,
            read_at: None,
            every: Duration::from_secs(1),
        }
    }

    fn read(&mut self) {
        self.read_at = Some(Instant::now());
        if let Ok((sysctls, sockets)) = super::collect(self.host.as_ref(), &|d| {
            !matches!(d.state, TcpState::Listen | TcpState::TimeWait)
        }) {
            self.sysctls = Some(sysctls);
            // What is gone is gone: a later connection on the same ports
            // must not inherit a closed socket's entry (flows keep theirs).
            self.table.clear();
            for s in sockets {
                self.table.insert((s.diag.local, s.diag.remote), s);
            }
        }
    }

    /// The sockets at the ends of the connection `client` ↔ `server`; the
    /// table is read again when they are not in it (`fresh`: whenever the
    /// last read is older than a second, so that options set after the
    /// connection opened are seen).
    pub fn lookup(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        fresh: bool,
    ) -> Option<Joined> {
        let known = |t: &HashMap<_, _>| {
            t.contains_key(&(client, server)) || t.contains_key(&(server, client))
        };
        if (fresh || !known(&self.table))
            && self.read_at.is_none_or(|at| at.elapsed() >= self.every)
        {
            self.read();
        }
        let client_end = self.table.get(&(client, server)).cloned();
        let server_end = self.table.get(&(server, client)).cloned();
        if client_end.is_none() && server_end.is_none() {
            return None;
        }
        let sysctls = self.sysctls?;
        Some(Joined {
            client: client_end,
            server: server_end,
            sysctls,
            host_sysctls: self.host_sysctls.filter(|h| *h != sysctls),
        })
    }
}

/// A sink with the socket table joined in: the first packet of each
/// connection carries its sockets, and so does its flow summary.
pub struct SocketJoin<S: Sink> {
    inner: S,
    joiner: Joiner,
    flows: HashMap<u32, Option<Box<Joined>>>,
}

impl<S: Sink> SocketJoin<S> {
    pub fn new(inner: S, joiner: Joiner) -> Self {
        SocketJoin {
            inner,
            joiner,
            flows: HashMap::new(),
        }
    }

    /// `f` with its sockets: as they are now when still on this host (a
    /// socket's options may have changed since the first packet), else as
    /// they were then.
    fn with_sockets(&mut self, f: &FlowSummary) -> FlowSummary {
        let mut f = f.clone();
        let then = self.flows.get(&f.id).cloned().flatten();
        if then.is_some() {
            f.sockets = self
                .joiner
                .lookup(f.client, f.server, true)
                .map(Box::new)
                .or(then);
        }
        f
    }
}

impl<S: Sink> Sink for SocketJoin<S> {
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        if self.flows.contains_key(&ev.flow_id) {
            return self.inner.packet(ev);
        }
        let (client, server) = match ev.from {
            crate::tcp::Side::Client => (
                SocketAddr::new(ev.seg.src, ev.seg.sport),
                SocketAddr::new(ev.seg.dst, ev.seg.dport),
            ),
            crate::tcp::Side::Server => (
                SocketAddr::new(ev.seg.dst, ev.seg.dport),
                SocketAddr::new(ev.seg.src, ev.seg.sport),
            ),
        };
        let joined = self.joiner.lookup(client, server, false).map(Box::new);
        self.flows.insert(ev.flow_id, joined);
        let joined = self.flows.get(&ev.flow_id).and_then(|j| j.as_deref());
        let first = PacketEvent {
            socket: joined,
            ..*ev
        };
        self.inner.packet(&first)
    }

    fn revise(&mut self, r: &Revisions) -> io::Result<()> {
        self.inner.revise(r)
    }

    fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        let joined = self.with_sockets(f);
        self.flows.remove(&f.id);
        self.inner.flow(&joined)
    }

    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        self.inner.finish(stats)
    }

    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        let open: Vec<FlowSummary> = open.iter().map(|f| self.with_sockets(f)).collect();
        self.inner.snapshot(&open, stats)
    }
}

/// `pid 4242 python3: SO_KEEPALIVE on, TCP_KEEPIDLE 20 (socket) / TCP_KEEPINTVL 75 (sysctl) / TCP_KEEPCNT 9 (sysctl)`.
pub fn describe(s: &Socket) -> String {
    let who = match &s.owner {
        Some(o) => format!("pid {} {}", o.pid, o.comm),
        None => "a socket of no known process".to_string(),
    };
    let src = |x: Source| x.as_str();
    let mark = if s.exact { "" } else { "~" };
    let mut words = match s.keepalive {
        Some(false) => format!("{who}: SO_KEEPALIVE off"),
        None => format!("{who}: SO_KEEPALIVE unknown"),
        Some(true) => format!(
            "{who}: SO_KEEPALIVE on, TCP_KEEPIDLE {mark}{} ({}) / TCP_KEEPINTVL {mark}{} ({}) / TCP_KEEPCNT {mark}{} ({})",
            s.idle.value,
            src(s.idle.source),
            s.interval.value,
            src(s.interval.source),
            s.count.value,
            src(s.count.source)
        ),
    };
    if let Some(u) = s.user_timeout {
        words.push_str(&format!(", TCP_USER_TIMEOUT {u} s"));
    }
    words
}

/// What the packets showed, checked against the configuration: one line
/// per finding, for the table's notes and `--explain`.
pub fn checks(f: &FlowSummary) -> Vec<String> {
    let Some(j) = f.sockets.as_deref() else {
        return Vec::new();
    };
    let k = &f.findings.keepalive;
    let mut lines = Vec::new();
    for (side, s) in [
        (crate::tcp::Side::Client, j.client.as_ref()),
        (crate::tcp::Side::Server, j.server.as_ref()),
    ] {
        let Some(s) = s else { continue };
        let who = s
            .owner
            .as_ref()
            .map_or("its".to_string(), |o| format!("pid {}'s", o.pid));
        let probed = match k.prober {
            Some(p) => p.includes(side),
            None => false,
        };
        match s.keepalive {
            Some(false) if !probed => lines.push(format!(
                "the {} end: no keepalive probe will come from it: SO_KEEPALIVE is off on {who} socket",
                side.name()
            )),
            Some(true) if probed => {
                if let Some(idle) = k.idle {
                    let set = f64::from(s.idle.value);
                    let verb = if (idle - set).abs() <= 1.0 + set * 0.05 {
                        "matches"
                    } else {
                        "differs from"
                    };
                    lines.push(format!(
                        "the {} end: observed idle {idle:.1} s {verb} TCP_KEEPIDLE {} on {who} socket ({})",
                        side.name(),
                        s.idle.value,
                        s.idle.source.as_str()
                    ));
                }
                if let Some(intvl) = k.interval {
                    let set = f64::from(s.interval.value);
                    let verb = if (intvl - set).abs() <= 1.0 + set * 0.05 {
                        "matches"
                    } else {
                        "differs from"
                    };
                    lines.push(format!(
                        "the {} end: observed interval {intvl:.1} s {verb} TCP_KEEPINTVL {} ({})",
                        side.name(),
                        s.interval.value,
                        s.interval.source.as_str()
                    ));
                }
            }
            Some(true) if k.probes == 0 => lines.push(format!(
                "the {} end: SO_KEEPALIVE is on ({who} socket) but no probe was seen: the connection was not idle for TCP_KEEPIDLE {} s within the capture",
                side.name(),
                s.idle.value
            )),
            _ => {}
        }
        if let Some(h) = j.host_sysctls
            && s.keepalive == Some(true)
            && s.idle.source == Source::Sysctl
            && h.time != j.sysctls.time
        {
            lines.push(format!(
                "the {} end follows its namespace's tcp_keepalive_time {}, not the host's {}",
                side.name(),
                j.sysctls.time,
                h.time
            ));
        }
    }
    lines
}
