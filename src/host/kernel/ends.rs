//! How each TCP connection of the host ended, as the kernel's tracepoints
//! tell it: the reset it sent and why (`tcp:tcp_send_reset`, its reason
//! since Linux 6.10), the reset it received (`tcp:tcp_receive_reset`),
//! the error it reported to the application (`sock:inet_sk_error_report`),
//! its retransmissions (`tcp:tcp_retransmit_skb`), and its states
//! (`sock:inet_sock_set_state`: when it was established, when it closed).

use super::format::Format;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The tracepoints read, by tracefs path under `events/`.
pub const TRACEPOINTS: [&str; 5] = [
    "tcp/tcp_send_reset",
    "tcp/tcp_receive_reset",
    "sock/inet_sk_error_report",
    "tcp/tcp_retransmit_skb",
    "sock/inet_sock_set_state",
];

/// The kernel-side filter set on each of [`TRACEPOINTS`]: of the state
/// changes only TCP's to ESTABLISHED and CLOSE are read (a clean close
/// passes through five others), and only TCP's error reports.
pub const FILTERS: [Option<&str>; 5] = [
    None,
    None,
    Some("protocol == 6"),
    None,
    Some("protocol == 6 && (newstate == 1 || newstate == 7)"),
];

const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_CLOSE: i32 = 7;
const TCP_LISTEN: i32 = 10;
const IPPROTO_TCP: u64 = 6;
const ETIMEDOUT: i32 = 110;
const ECONNRESET: i32 = 104;
const EPIPE: i32 = 32;
const ECONNREFUSED: i32 = 111;

/// `enum sk_rst_reason` (include/net/rstreason.h) as the format prints it.
pub fn reason_name(r: u64) -> &'static str {
    match r {
        0 => "NOT_SPECIFIED",
        1 => "NO_SOCKET",
        2 => "TCP_INVALID_ACK_SEQUENCE",
        3 => "TCP_RFC7323_PAWS",
        4 => "TCP_TOO_OLD_ACK",
        5 => "TCP_ACK_UNSENT_DATA",
        6 => "TCP_FLAGS",
        7 => "TCP_OLD_ACK",
        8 => "TCP_ABORT_ON_DATA",
        9 => "TCP_TIMEWAIT_SOCKET",
        10 => "INVALID_SYN",
        11 => "TCP_ABORT_ON_CLOSE",
        12 => "TCP_ABORT_ON_LINGER",
        13 => "TCP_ABORT_ON_MEMORY",
        14 => "TCP_STATE",
        15 => "TCP_KEEPALIVE_TIMEOUT",
        16 => "TCP_DISCONNECT_WITH_DATA",
        _ => "OTHER",
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Its keepalive probes went unanswered: RST sent (TCP_KEEPALIVE_TIMEOUT), ETIMEDOUT.
    KeepaliveTimeout,
    /// Data went unacknowledged until the retransmission limit
    /// (`tcp_retries2`; or TCP_USER_TIMEOUT when the socket table could
    /// not say it was set): ETIMEDOUT.
    RetransmitTimeout,
    /// The same, with TCP_USER_TIMEOUT set on the socket: its limit.
    UserTimeout,
    /// The peer's window stayed shut and its zero-window probes went
    /// unanswered until the limit (`tcp_retries2`'s backoff or
    /// TCP_USER_TIMEOUT): ETIMEDOUT with no reset sent and nothing
    /// retransmitted (window probes are not retransmissions).
    ZeroWindowTimeout,
    /// The peer reset it: ECONNRESET (or EPIPE on a write).
    PeerReset,
    /// This host reset it: closed with unread data, SO_LINGER 0, memory.
    LocalAbort,
    /// The connection attempt was refused (RST to the SYN): ECONNREFUSED.
    Refused,
    /// A clean close (shown with `-v`).
    Closed,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::KeepaliveTimeout => "keepalive-timeout",
            Cause::RetransmitTimeout => "retransmit-timeout",
            Cause::UserTimeout => "user-timeout",
            Cause::ZeroWindowTimeout => "zero-window-timeout",
            Cause::PeerReset => "peer-reset",
            Cause::LocalAbort => "local-abort",
            Cause::Refused => "refused",
            Cause::Closed => "closed",
        }
    }
}

/// What the socket table said of a connection while it lived (`kacap
/// watch` joins it when the connection is established).
#[derive(Clone, Debug, PartialEq)]
pub struct Owned {
    pub pid: u32,
    pub comm: String,
    /// SO_KEEPALIVE on: TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and where
    /// they came from ("socket", "sysctl", "inferred" when unreadable).
    pub keepalive: Option<(u32, u32, u32, &'static str)>,
    /// TCP_USER_TIMEOUT, seconds.
    pub user_timeout: Option<f64>,
}

/// The kernel's account of one connection: the client's socket's end and
/// the server's (either may be missing: not on this host, or not ended).
#[derive(Clone, Debug, PartialEq)]
pub struct KernelEnds {
    pub client: Option<End>,
    pub server: Option<End>,
}

impl KernelEnds {
    /// The end that tells most: one with a cause other than a clean close,
    /// the client's first.
    pub fn telling(&self) -> Option<&End> {
        let bad = |e: &&End| e.cause != Cause::Closed;
        self.client
            .as_ref()
            .filter(bad)
            .or(self.server.as_ref().filter(bad))
            .or(self.client.as_ref())
            .or(self.server.as_ref())
    }
}

/// One connection's end, as reported.
#[derive(Clone, Debug, PartialEq)]
pub struct End {
    /// When it closed (ns since the epoch).
    pub ts: u64,
    pub cause: Cause,
    /// The reset reason this host sent, if any (`None` also on kernels
    /// before 6.10, whose tracepoint has none).
    pub reason: Option<&'static str>,
    pub errno: Option<i32>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub retransmissions: u32,
    /// Seconds from ESTABLISHED to CLOSE, when the watch saw both.
    pub age: Option<f64>,
    /// Its owner and settings, when the socket table showed them.
    pub owned: Option<Owned>,
    /// The socket table of the watch's network namespace showed it.
    pub here: bool,
}

#[derive(Clone, Debug, Default)]
struct Conn {
    established: Option<u64>,
    closed: Option<(u64, i32)>,
    sent_reset: Option<Option<u64>>,
    received_reset: bool,
    errno: Option<i32>,
    retransmissions: u32,
    /// When it last retransmitted (ns).
    last_retransmit: Option<u64>,
    owned: Option<Owned>,
    here: bool,
}

/// The tracepoints' formats (by their common_type), and the connections
/// seen so far, by (local, remote).
pub struct Ends {
    formats: Vec<(usize, Format)>,
    conns: HashMap<(SocketAddr, SocketAddr), Conn>,
    /// Connections established since the last [`Ends::take_new`].
    new: Vec<(SocketAddr, SocketAddr)>,
    /// Closes in the order they came: what [`Ends::settled`] looks at.
    closed: std::collections::VecDeque<(u64, (SocketAddr, SocketAddr))>,
}

/// Waited after a close for the error report that follows it.
const SETTLE_NS: u64 = 200_000_000;
/// Connections tracked at most (the oldest go first beyond).
const MAX_CONNS: usize = 1 << 18;

impl Ends {
    /// `formats`: the layout of each of [`TRACEPOINTS`] (in that order).
    pub fn new(formats: Vec<Format>) -> Ends {
        Ends {
            formats: formats.into_iter().enumerate().collect(),
            conns: HashMap::new(),
            new: Vec::new(),
            closed: std::collections::VecDeque::new(),
        }
    }

    /// Whether `tcp_send_reset` carries the reason (Linux 6.10 and later).
    pub fn has_reasons(&self) -> bool {
        self.formats
            .iter()
            .any(|(i, f)| *i == 0 && f.field("reason").is_some())
    }

    /// One raw sample stamped `ts`.
    pub fn sample(&mut self, ts: u64, raw: &[u8]) {
        let Some(kind) = raw
            .get(0..2)
            .map(|b| u64::from(u16::from_ne_bytes([b[0], b[1]])))
        else {
            return;
        };
        let Some((which, f)) = self.formats.iter().find(|(_, f)| f.id == kind) else {
            return;
        };
        let which = *which;
        let Some((local, remote)) = ends_of(f, raw) else {
            return;
        };
        if which != 0 && which != 3 && f.uint(raw, "protocol").is_some_and(|p| p != IPPROTO_TCP) {
            return;
        }
        let reason = f.uint(raw, "reason");
        let (old, new) = (f.int(raw, "oldstate"), f.int(raw, "newstate"));
        let error = f.int(raw, "error");
        if self.conns.len() >= MAX_CONNS && !self.conns.contains_key(&(local, remote)) {
            return;
        }
        let c = self.conns.entry((local, remote)).or_default();
        match which {
            // Its own reset (the first): tcp_disconnect (SO_LINGER 0)
            // closes, then resets at once; one sent for its 4-tuple later
            // answers from no socket (NO_SOCKET, or a millisecond on).
            0 if reason != Some(1)
                && c.sent_reset.is_none()
                && c.closed
                    .is_none_or(|(t, _)| ts.saturating_sub(t) < 1_000_000) =>
            {
                c.sent_reset = Some(reason);
            }
            0 => {}
            1 => c.received_reset = true,
            2 => c.errno = error.map(i32::abs),
            3 => {
                c.retransmissions += 1;
                c.last_retransmit = Some(ts);
            }
            _ => match new {
                Some(TCP_ESTABLISHED) => {
                    *c = Conn {
                        established: Some(ts),
                        ..Conn::default()
                    };
                    if self.new.len() < 4096 {
                        self.new.push((local, remote));
                    }
                }
                Some(TCP_CLOSE) => {
                    c.closed = Some((ts, old.unwrap_or(0)));
                    self.closed.push_back((ts, (local, remote)));
                }
                _ => {}
            },
        }
    }

    /// The connections established since the last call (at most 4,096).
    pub fn take_new(&mut self) -> Vec<(SocketAddr, SocketAddr)> {
        std::mem::take(&mut self.new)
    }

    /// What the socket table says of the live connection `key` (`None`:
    /// it is there, with no owner found).
    pub fn own(&mut self, key: (SocketAddr, SocketAddr), owned: Option<Owned>) {
        if let Some(c) = self.conns.get_mut(&key) {
            c.here = true;
            c.owned = owned;
        }
    }

    /// The connections closed at least [`SETTLE_NS`] before `now` (all,
    /// with `now` = `u64::MAX`), in closing order: their ends.
    pub fn settled(&mut self, now: u64) -> Vec<End> {
        let mut done = Vec::new();
        while let Some(&(t, k)) = self.closed.front() {
            if now.saturating_sub(t) < SETTLE_NS {
                break;
            }
            self.closed.pop_front();
            // Its latest close only (a 4-tuple reused closes again later).
            if self
                .conns
                .get(&k)
                .and_then(|c| c.closed)
                .is_some_and(|(c, _)| c == t)
            {
                done.push(k);
            }
        }
        done.into_iter()
            .filter_map(|k| {
                let c = self.conns.remove(&k)?;
                let (ts, old) = c.closed?;
                if old == TCP_LISTEN {
                    return None; // a listener closed: no connection
                }
                let user_timeout = c
                    .owned
                    .as_ref()
                    .and_then(|o| o.user_timeout)
                    .filter(|t| *t > 0.0);
                let cause = match cause(&c, old) {
                    Cause::RetransmitTimeout if window_probes_last(&c, ts, user_timeout) => {
                        Cause::ZeroWindowTimeout
                    }
                    Cause::RetransmitTimeout if user_timeout.is_some() => Cause::UserTimeout,
                    other => other,
                };
                Some(End {
                    ts,
                    cause,
                    reason: c.sent_reset.flatten().map(reason_name),
                    errno: c.errno,
                    local: k.0,
                    remote: k.1,
                    retransmissions: c.retransmissions,
                    age: c.established.map(|e| ts.saturating_sub(e) as f64 / 1e9),
                    here: c.here,
                    owned: c.owned,
                })
            })
            .collect()
    }
}

fn cause(c: &Conn, old: i32) -> Cause {
    match (c.sent_reset, c.errno) {
        (Some(Some(15)), _) => Cause::KeepaliveTimeout,
        (Some(Some(8 | 11 | 12 | 13 | 16)), _) => Cause::LocalAbort,
        _ if old == TCP_SYN_SENT && (c.errno == Some(ECONNREFUSED) || c.received_reset) => {
            Cause::Refused
        }
        (_, Some(ECONNRESET | EPIPE)) => Cause::PeerReset,
        _ if c.received_reset => Cause::PeerReset,
        // Before 6.10 no reason: a timeout with nothing retransmitted is
        // the keepalive's (its probes are not retransmissions).
        (Some(None), Some(ETIMEDOUT)) if c.retransmissions == 0 => Cause::KeepaliveTimeout,
        // No reset and nothing retransmitted: the probe0 timer gave up (a
        // keepalive timeout always sends its RST; a retransmission timeout
        // retransmits; a connect timeout retransmits its SYN).
        (None, Some(ETIMEDOUT)) if c.retransmissions == 0 && old != TCP_SYN_SENT => {
            Cause::ZeroWindowTimeout
        }
        (_, Some(ETIMEDOUT)) => Cause::RetransmitTimeout,
        (Some(_), _) => Cause::LocalAbort,
        _ => Cause::Closed,
    }
}

/// The longest a retransmission timeout waits after its last
/// retransmission before giving up: TCP_RTO_MAX.
const RTO_MAX_NS: u64 = 120_000_000_000;

/// Whether a timeout that closed at `closed` (no reset sent) came after a
/// stretch of window probes rather than retransmissions. Window probes run
/// only once everything sent is acknowledged, so retransmissions before
/// them ended earlier; and their limit (TCP_USER_TIMEOUT from the first
/// unanswered probe, or `tcp_retries2`'s backoff of several minutes) is
/// longer than a retransmission timeout's last wait after its last
/// retransmission (shorter than TCP_USER_TIMEOUT, which counts from the
/// first, and at most TCP_RTO_MAX).
fn window_probes_last(c: &Conn, closed: u64, user_timeout: Option<f64>) -> bool {
    let Some(last) = c.last_retransmit else {
        return false;
    };
    let limit = user_timeout.map_or(RTO_MAX_NS, |t| ((t * 1e9) as u64).min(RTO_MAX_NS));
    c.sent_reset.is_none() && closed.saturating_sub(last) > limit
}

/// The sample's (local, remote) ends: `sockaddr`s in `tcp_send_reset`,
/// family + addresses + ports in the others.
fn ends_of(f: &Format, raw: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    if let (Some(s), Some(d), None) = (
        f.bytes(raw, "saddr"),
        f.bytes(raw, "daddr"),
        f.field("sport"),
    ) {
        return Some((sockaddr(s)?, sockaddr(d)?));
    }
    let (sport, dport) = (f.uint(raw, "sport")? as u16, f.uint(raw, "dport")? as u16);
    let (s, d) = match f.uint(raw, "family") {
        Some(10) => (
            IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(f.bytes(raw, "saddr_v6")?).ok()?,
            )),
            IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(f.bytes(raw, "daddr_v6")?).ok()?,
            )),
        ),
        _ => (
            IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(f.bytes(raw, "saddr")?).ok()?,
            )),
            IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(f.bytes(raw, "daddr")?).ok()?,
            )),
        ),
    };
    Some((
        unmapped(SocketAddr::new(s, sport)),
        unmapped(SocketAddr::new(d, dport)),
    ))
}

/// A `struct sockaddr_in` / `sockaddr_in6` as the tracepoint copies it.
fn sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    let ip = match family {
        2 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b.get(4..8)?).ok()?)),
        10 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b.get(8..24)?).ok()?)),
        _ => return None,
    };
    Some(unmapped(SocketAddr::new(ip, port)))
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn unmapped(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_from_what_the_kernel_said() {
        let with =
            |sent: Option<Option<u64>>, errno: Option<i32>, received: bool, retx: u32| Conn {
                sent_reset: sent,
                errno,
                received_reset: received,
                retransmissions: retx,
                ..Conn::default()
            };
        assert_eq!(
            cause(&with(Some(Some(15)), Some(110), false, 0), 1),
            Cause::KeepaliveTimeout
        );
        assert_eq!(
            cause(&with(None, Some(110), false, 6), 1),
            Cause::RetransmitTimeout
        );
        assert_eq!(cause(&with(None, Some(104), true, 0), 1), Cause::PeerReset);
        assert_eq!(
            cause(&with(Some(Some(12)), None, false, 0), 1),
            Cause::LocalAbort
        );
        assert_eq!(
            cause(&with(None, Some(111), true, 0), TCP_SYN_SENT),
            Cause::Refused
        );
        assert_eq!(cause(&with(None, None, false, 0), 9), Cause::Closed);
        // Before 6.10: no reason; no retransmission: the keepalive's.
        assert_eq!(
            cause(&with(Some(None), Some(110), false, 0), 1),
            Cause::KeepaliveTimeout
        );
        assert_eq!(
            cause(&with(Some(None), Some(110), false, 3), 1),
            Cause::RetransmitTimeout
        );
        // No reset, nothing retransmitted: the zero-window probes'.
        assert_eq!(
            cause(&with(None, Some(110), false, 0), 1),
            Cause::ZeroWindowTimeout
        );
    }

    #[test]
    fn window_probes_after_the_last_retransmission_outlast_its_wait() {
        let s = 1_000_000_000u64;
        let c = Conn {
            errno: Some(110),
            retransmissions: 1,
            last_retransmit: Some(10 * s),
            ..Conn::default()
        };
        // TCP_USER_TIMEOUT 2 s: a retransmission timeout gives up less
        // than 2 s after its last retransmission; window probes later.
        assert!(!window_probes_last(&c, 11 * s, Some(2.0)));
        assert!(window_probes_last(&c, 13 * s, Some(2.0)));
        // Without: TCP_RTO_MAX.
        assert!(!window_probes_last(&c, 100 * s, None));
        assert!(window_probes_last(&c, 200 * s, None));
        // A reset sent: not a timeout of either kind.
        let reset = Conn {
            sent_reset: Some(Some(15)),
            ..c
        };
        assert!(!window_probes_last(&reset, 200 * s, None));
    }

    #[test]
    fn sockaddrs_as_tcp_send_reset_copies_them() {
        let mut v4 = [0u8; 28];
        v4[0..2].copy_from_slice(&2u16.to_ne_bytes());
        v4[2..4].copy_from_slice(&2333u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(sockaddr(&v4), Some("127.0.0.1:2333".parse().unwrap()));
        let mut v6 = [0u8; 28];
        v6[0..2].copy_from_slice(&10u16.to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(sockaddr(&v6), Some("[2001:db8::1]:443".parse().unwrap()));
    }
}
