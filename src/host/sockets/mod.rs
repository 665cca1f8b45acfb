//! The host's side of the story (`kacap sockets`): every TCP socket of a
//! network namespace, its owner, and its keepalive configuration with where
//! each value comes from.
//!
//! Sources, each behind [`Host`] so the logic runs in tests without
//! privileges (as bandwhich injects its OS inputs):
//! - the kernel's socket table through sock_diag ([`diag`]): state, the
//!   running timer, probes out, last send/receive, inode;
//! - the owner, by that inode among `/proc/PID/fd` ([`proc`]);
//! - the exact per-socket options, read on a copy of the owner's descriptor
//!   (`pidfd_open` + `pidfd_getfd`, Linux ≥ 5.6, root or CAP_SYS_PTRACE:
//!   [`proc::sockopts`]), closed at once;
//! - the namespace's `net.ipv4.tcp_keepalive_*` and `tcp_retries2`.
//!
//! `getsockopt(TCP_KEEPIDLE)` returns the socket's own value or, when it set
//! none, the namespace's sysctl: a value equal to the sysctl is reported as
//! coming from it (a socket that set the same value looks the same). When
//! the options cannot be read, keepalive is inferred from the timer (a
//! running keepalive timer means SO_KEEPALIVE is on; otherwise unknown),
//! the settings are the sysctls, and the record says so (`exact: false`).

pub mod diag;
pub mod filter;
pub mod join;
pub mod netns;
pub mod proc;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

/// A TCP state, named as `ss` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    Other(u8),
}

impl TcpState {
    /// From `include/net/tcp_states.h`.
    pub fn from_kernel(s: u8) -> TcpState {
        match s {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            n => TcpState::Other(n),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn-sent",
            TcpState::SynRecv => "syn-recv",
            TcpState::FinWait1 => "fin-wait-1",
            TcpState::FinWait2 => "fin-wait-2",
            TcpState::TimeWait => "time-wait",
            TcpState::Close => "close",
            TcpState::CloseWait => "close-wait",
            TcpState::LastAck => "last-ack",
            TcpState::Listen => "listen",
            TcpState::Closing => "closing",
            TcpState::Other(_) => "unknown",
        }
    }

    pub const NAMES: [&'static str; 11] = [
        "established",
        "syn-sent",
        "syn-recv",
        "fin-wait-1",
        "fin-wait-2",
        "time-wait",
        "close",
        "close-wait",
        "last-ack",
        "listen",
        "closing",
    ];
}

/// The timer running on a socket (`idiag_timer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    Retransmit,
    Keepalive,
    TimeWait,
    ZeroWindow,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Retransmit => "retransmit",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "time-wait",
            TimerKind::ZeroWindow => "zero-window",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timer {
    pub kind: Option<TimerKind>,
    /// Seconds until it fires.
    pub expires: f64,
    /// For the keepalive timer: probes sent and unanswered; for the
    /// retransmit timer: retransmissions.
    pub probes: u32,
}

/// One socket as sock_diag reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    pub timer: Timer,
    pub uid: u32,
    pub inode: u64,
    /// `tcp_info`: unanswered probes (keepalive or zero-window).
    pub probes: Option<u32>,
    /// Seconds since the last data sent / received (`tcp_info`).
    pub lastsnd: Option<f64>,
    pub lastrcv: Option<f64>,
}

/// The process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub fd: u32,
    pub comm: String,
}

/// Options read on a copy of the owner's descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOpts {
    pub keepalive: bool,
    pub idle: u32,
    pub interval: u32,
    pub count: u32,
    /// TCP_USER_TIMEOUT in milliseconds (0: none).
    pub user_timeout_ms: u32,
}

pub use crate::host::sysctls::Sysctls;

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Set on the socket (setsockopt).
    Socket,
    /// The namespace's sysctl.
    Sysctl,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Socket => "socket",
            Source::Sysctl => "sysctl",
        }
    }
}

/// One keepalive setting and its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    pub value: u32,
    pub source: Source,
}

/// One socket, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Socket {
    pub diag: DiagSocket,
    pub owner: Option<Owner>,
    /// SO_KEEPALIVE; `None`: unknown (options unreadable, no keepalive
    /// timer running).
    pub keepalive: Option<bool>,
    pub idle: Setting,
    pub interval: Setting,
    pub count: Setting,
    /// TCP_USER_TIMEOUT, seconds.
    pub user_timeout: Option<f64>,
    /// The options were read on the socket (else inferred).
    pub exact: bool,
    /// Why they could not be read.
    pub why: Option<String>,
}

/// The operating system's inputs (real, or a test's).
pub trait Host {
    /// Every TCP socket of the current network namespace.
    fn sockets(&self) -> io::Result<Vec<DiagSocket>>;
    /// Socket inode → its owner.
    fn owners(&self) -> HashMap<u64, Owner>;
    /// The owner's socket options, or why they cannot be read.
    fn sockopts(&self, owner: &Owner) -> Result<SockOpts, String>;
    /// The current network namespace's sysctls.
    fn sysctls(&self) -> io::Result<Sysctls>;
}

/// This machine.
pub struct RealHost;

impl Host for RealHost {
    fn sockets(&self) -> io::Result<Vec<DiagSocket>> {
        diag::dump()
    }
    fn owners(&self) -> HashMap<u64, Owner> {
        proc::owners()
    }
    fn sockopts(&self, owner: &Owner) -> Result<SockOpts, String> {
        proc::sockopts(owner.pid, owner.fd)
    }
    fn sysctls(&self) -> io::Result<Sysctls> {
        proc::sysctls()
    }
}

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
    pub fn of(&self, side: crate::core::tcp::Side) -> Option<&Socket> {
        match side {
            crate::core::tcp::Side::Client => self.client.as_ref(),
            crate::core::tcp::Side::Server => self.server.as_ref(),
        }
    }
}

/// What `kacap sockets` found.
#[derive(Clone, Debug)]
pub struct Table {
    pub sysctls: Sysctls,
    /// The host's (initial namespace's) sysctls, when kacap entered another
    /// namespace and they differ.
    pub host_sysctls: Option<Sysctls>,
    /// Which namespace (`net:[4026531840]`), when known.
    pub netns: Option<String>,
    pub sockets: Vec<Socket>,
}

/// Resolves every socket `keep` accepts.
pub fn collect(
    host: &dyn Host,
    keep: &dyn Fn(&DiagSocket) -> bool,
) -> io::Result<(Sysctls, Vec<Socket>)> {
    let sysctls = host.sysctls()?;
    let mut found: Vec<DiagSocket> = host.sockets()?.into_iter().filter(|s| keep(s)).collect();
    found.sort_by_key(|s| (s.state != TcpState::Established, s.local, s.remote));
    let owners = if found.iter().any(|s| s.inode != 0) {
        host.owners()
    } else {
        HashMap::new()
    };
    let sockets = found
        .into_iter()
        .map(|d| {
            let owner = owners.get(&d.inode).cloned();
            resolve(host, d, owner, sysctls)
        })
        .collect();
    Ok((sysctls, sockets))
}

fn resolve(host: &dyn Host, diag: DiagSocket, owner: Option<Owner>, sys: Sysctls) -> Socket {
    let from = |value: u32, sysctl: u32| Setting {
        value,
        source: if value == sysctl {
            Source::Sysctl
        } else {
            Source::Socket
        },
    };
    let read = match &owner {
        Some(o) => host.sockopts(o),
        None if diag.inode == 0 => Err("no process holds it".to_string()),
        // SAFETY: geteuid has no preconditions.
        None if unsafe { libc::geteuid() } != 0 => Err(
            "finding its owner needs root (other users' /proc/PID/fd are private): sudo kacap sockets"
                .to_string(),
        ),
        None => Err("its owner was not found in /proc (another PID namespace, or it exited)".to_string()),
    };
    match read {
        Ok(o) => Socket {
            keepalive: Some(o.keepalive),
            idle: from(o.idle, sys.time),
            interval: from(o.interval, sys.intvl),
            count: from(o.count, sys.probes),
            user_timeout: (o.user_timeout_ms > 0).then(|| f64::from(o.user_timeout_ms) / 1000.0),
            exact: true,
            why: None,
            diag,
            owner,
        },
        Err(why) => Socket {
            keepalive: (diag.timer.kind == Some(TimerKind::Keepalive)).then_some(true),
            idle: from(sys.time, sys.time),
            interval: from(sys.intvl, sys.intvl),
            count: from(sys.probes, sys.probes),
            user_timeout: None,
            exact: false,
            why: Some(why),
            diag,
            owner,
        },
    }
}

/// `tcp_keepalive_time 600` — and the host's, when it differs.
fn sysctl_words(t: &Table) -> String {
    match t.host_sysctls.filter(|h| h.time != t.sysctls.time) {
        Some(h) => format!(
            "this namespace's tcp_keepalive_time {}, the host's {}",
            t.sysctls.time, h.time
        ),
        None => format!("tcp_keepalive_time {}", t.sysctls.time),
    }
}

/// One line on why a socket will or will not send keepalive probes.
pub fn verdict(s: &Socket, t: &Table) -> Option<String> {
    if !matches!(s.diag.state, TcpState::Established | TcpState::CloseWait) {
        return None;
    }
    let who = match &s.owner {
        Some(o) => format!("pid {} {}", o.pid, o.comm),
        None => "no known process".to_string(),
    };
    let head = format!("{} → {} ({who})", s.diag.local, s.diag.remote);
    let host_differs = t.host_sysctls.filter(|h| *h != t.sysctls);
    match s.keepalive {
        Some(false) => Some(format!(
            "{head}: no keepalive probe will ever come: SO_KEEPALIVE is off on this socket. The sysctls \
             ({}) only apply to sockets that turn it on: set SO_KEEPALIVE in the application (setsockopt, \
             or its runtime's keepalive option).",
            sysctl_words(t)
        )),
        Some(true) => {
            let mut line = format!(
                "{head}: SO_KEEPALIVE on; first probe after {} s idle ({}), then every {} s ({}), reset after {} \
                 unanswered ({})",
                s.idle.value,
                place(s.idle.source, "TCP_KEEPIDLE", "tcp_keepalive_time"),
                s.interval.value,
                place(s.interval.source, "TCP_KEEPINTVL", "tcp_keepalive_intvl"),
                s.count.value,
                place(s.count.source, "TCP_KEEPCNT", "tcp_keepalive_probes"),
            );
            if let Some(h) = host_differs
                && s.idle.source == Source::Sysctl
                && h.time != t.sysctls.time
            {
                line.push_str(&format!(
                    "; the host's tcp_keepalive_time is {} but this namespace's is {}: the socket follows its \
                     own namespace (set it there, e.g. a pod's `securityContext.sysctls`, or on the socket)",
                    h.time, t.sysctls.time
                ));
            }
            if !s.exact {
                line.push_str(" — inferred: SO_KEEPALIVE from its running keepalive timer, the settings from the sysctls");
            }
            line.push('.');
            Some(line)
        }
        None => Some(format!(
            "{head}: SO_KEEPALIVE unknown ({}); no keepalive timer runs on it now.",
            s.why.as_deref().unwrap_or("its options could not be read")
        )),
    }
}

/// The lines under the table: connections with SO_KEEPALIVE off grouped by
/// process (one line each), then one line per other connection.
pub fn verdicts(t: &Table) -> Vec<String> {
    let mut off: Vec<(Option<&Owner>, Vec<&Socket>)> = Vec::new();
    let mut lines = Vec::new();
    for s in &t.sockets {
        if s.keepalive == Some(false)
            && matches!(s.diag.state, TcpState::Established | TcpState::CloseWait)
        {
            let pid = |o: Option<&Owner>| o.map(|o| o.pid);
            match off
                .iter_mut()
                .find(|(o, _)| pid(*o) == pid(s.owner.as_ref()))
            {
                Some((_, group)) => group.push(s),
                None => off.push((s.owner.as_ref(), vec![s])),
            }
        }
    }
    for (owner, group) in off {
        if let [one] = group[..] {
            lines.extend(verdict(one, t));
            continue;
        }
        let who = owner.map_or("no known process".to_string(), |o| {
            format!("pid {} {}", o.pid, o.comm)
        });
        let shown: Vec<String> = group
            .iter()
            .take(2)
            .map(|s| format!("{} → {}", s.diag.local, s.diag.remote))
            .collect();
        let more = if group.len() > 2 {
            format!(" and {} more", group.len() - 2)
        } else {
            String::new()
        };
        lines.push(format!(
            "{who}, {} connections ({}{more}): no keepalive probe will ever come: SO_KEEPALIVE is off on these \
             sockets. The sysctls ({}) only apply to sockets that turn it on: set SO_KEEPALIVE in the \
             application (setsockopt, or its runtime's keepalive option).",
            group.len(),
            shown.join(", "),
            sysctl_words(t)
        ));
    }
    lines.extend(
        t.sockets
            .iter()
            .filter(|s| s.keepalive != Some(false))
            .filter_map(|s| verdict(s, t)),
    );
    lines
}

fn place(source: Source, option: &str, sysctl: &str) -> String {
    match source {
        Source::Socket => format!("{option}, set on the socket"),
        Source::Sysctl => format!("the namespace's {sysctl}"),
    }
}

#[cfg(test)]
mod tests;
