//! `-i IFACE --sockets`: the socket table beside the sniffer, joined per
//! connection (as bandwhich joins its socket table to its packets). When a
//! connection is first seen, its ends are looked up among this host's
//! sockets (the table is read again at most once a second, when a
//! connection is not in it yet); `report::sockets::SocketJoin` hands what
//! it finds to the sinks, which show the owner and the configuration on the
//! connection's first line, in the table and in the flow record, and check
//! what the packets showed against it.

use super::{Host, Joined, Socket, Source, Sysctls, TcpState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
