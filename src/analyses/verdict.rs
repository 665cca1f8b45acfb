//! The verdicts, as data: one row each — its name, the analysis whose
//! finding it is (which words it: the `flow N ended` line, the `--explain`
//! account), how telling it is (what bounded reports keep first), its tone
//! (the report's colour), and what it means. Every output reads this table;
//! the rule that decides a verdict is `registry::verdict`.

/// The verdict on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    DeadPeer,
    PeerReset,
    /// A middlebox forgot the connection after an idle gap (see `middlebox`).
    IdleTimeout,
    /// Data went unanswered, retransmitted until the sender gave up (see
    /// `retransmit`).
    RetransmitTimeout,
    /// The peer answered the probes on the wire, but the prober behaved as
    /// if it heard nothing: the answers were lost between the capture point
    /// and the prober's socket.
    AcksDropped,
    /// The HTTP keep-alive race: a request sent on a connection the server
    /// had closed, answered by RST (a stale pooled connection).
    StaleConnection,
    /// The server refused the client's HTTP/2 pings: GOAWAY
    /// ENHANCE_YOUR_CALM (gRPC's `too_many_pings`).
    TooManyPings,
    /// The application's latest keepalive pings went unanswered (two or
    /// more in a row, or one and then the connection ended): its peer's
    /// application stopped answering — see `app`.
    AppPingTimeout,
    /// One probe, unanswered, and the capture ended less than a second
    /// after it: too soon to tell a dead peer from an answer on its way.
    Undecided,
    Alive,
    /// No TCP keepalive; the application keeps the connection alive with
    /// its own pings (HTTP/2 PING, WebSocket ping, Redis PING, MySQL
    /// COM_PING, or an encrypted rhythm) — see `app`.
    AppKeepalive,
    NoKeepalive,
}

/// How a verdict reads in a report: a failure, a connection that works,
/// or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Bad,
    Good,
    Plain,
}

/// One verdict's row.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub verdict: Verdict,
    /// As every output writes it (`dead-peer`).
    pub name: &'static str,
    /// The analysis whose finding it is (its name in the registry): its
    /// words say what the verdict means for this connection.
    pub owner: &'static str,
    /// How telling it is: 0 dead, reset or killed; 1 alive or undecided;
    /// 2 without keepalive. Bounded reports keep the most telling first.
    pub rank: usize,
    pub tone: Tone,
    /// What happened, in one line (the README's and the docs' tables).
    pub meaning: &'static str,
}

/// Every verdict, most telling first (the order of the report's menu).
pub const TABLE: [Row; 12] = [
    Row {
        verdict: Verdict::DeadPeer,
        name: "dead-peer",
        owner: "keepalive",
        rank: 0,
        tone: Tone::Bad,
        meaning: "probes went unanswered in a row: the peer stopped answering (the prober's kernel resets the connection, ETIMEDOUT, after TCP_KEEPCNT of them)",
    },
    Row {
        verdict: Verdict::PeerReset,
        name: "peer-reset",
        owner: "keepalive",
        rank: 0,
        tone: Tone::Bad,
        meaning: "a probe was answered by RST: the peer lost the connection (ECONNRESET)",
    },
    Row {
        verdict: Verdict::IdleTimeout,
        name: "idle-timeout",
        owner: "middlebox",
        rank: 0,
        tone: Tone::Bad,
        meaning: "a NAT, firewall or load balancer forgot the idle connection (only claimed with evidence)",
    },
    Row {
        verdict: Verdict::RetransmitTimeout,
        name: "retransmit-timeout",
        owner: "retransmit",
        rank: 0,
        tone: Tone::Bad,
        meaning: "data went unanswered, retransmitted with backoff until the sender gave up",
    },
    Row {
        verdict: Verdict::AcksDropped,
        name: "acks-dropped",
        owner: "keepalive",
        rank: 0,
        tone: Tone::Bad,
        meaning: "the peer answered, but the answers never reached the prober (a firewall or conntrack on its host)",
    },
    Row {
        verdict: Verdict::StaleConnection,
        name: "stale-connection",
        owner: "http",
        rank: 0,
        tone: Tone::Bad,
        meaning: "the HTTP keep-alive race: a pooled client sent a request on a connection the server had closed, and got RST (ECONNRESET after idle)",
    },
    Row {
        verdict: Verdict::TooManyPings,
        name: "too-many-pings",
        owner: "app",
        rank: 0,
        tone: Tone::Bad,
        meaning: "a gRPC server refused the client's keepalive pings: GOAWAY ENHANCE_YOUR_CALM `too_many_pings`",
    },
    Row {
        verdict: Verdict::AppPingTimeout,
        name: "app-ping-timeout",
        owner: "app",
        rank: 0,
        tone: Tone::Bad,
        meaning: "the application's latest pings went unanswered: the peer's application stopped answering (frozen, overloaded, gone)",
    },
    Row {
        verdict: Verdict::Undecided,
        name: "undecided",
        owner: "keepalive",
        rank: 1,
        tone: Tone::Plain,
        meaning: "one probe, and the capture ended less than a second after it: too soon to tell a dead peer from an answer on its way",
    },
    Row {
        verdict: Verdict::Alive,
        name: "alive",
        owner: "keepalive",
        rank: 1,
        tone: Tone::Good,
        meaning: "the peer answered the probes",
    },
    Row {
        verdict: Verdict::AppKeepalive,
        name: "app-keepalive",
        owner: "app",
        rank: 1,
        tone: Tone::Good,
        meaning: "no TCP keepalive, but the application pings: HTTP/2 PING (gRPC), WebSocket ping, Redis `PING`, MySQL `COM_PING`, or a steady rhythm of small encrypted exchanges (TLS, SSH; said to be likely, not certain)",
    },
    Row {
        verdict: Verdict::NoKeepalive,
        name: "no-keepalive",
        owner: "keepalive",
        rank: 2,
        tone: Tone::Plain,
        meaning: "no probe was seen: nothing would notice a vanished peer",
    },
];

impl Verdict {
    /// It rests on something the capture did not show (an answer, an ACK):
    /// a packet the capture itself dropped looks the same.
    pub fn rests_on_silence(self) -> bool {
        matches!(
            self,
            Verdict::DeadPeer
                | Verdict::IdleTimeout
                | Verdict::RetransmitTimeout
                | Verdict::AppPingTimeout
        )
    }

    /// Every verdict, most telling first.
    pub const ALL: [Verdict; 12] = {
        let mut all = [Verdict::Alive; 12];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].verdict;
            i += 1;
        }
        all
    };

    /// Its row of the table.
    pub fn row(self) -> &'static Row {
        // The table is in the enum's order (a test pins it).
        &TABLE[self as usize]
    }

    /// As every output writes it (`dead-peer`).
    pub fn as_str(self) -> &'static str {
        self.row().name
    }

    /// How telling it is (see [`Row::rank`]).
    pub fn rank(self) -> usize {
        self.row().rank
    }
}

#[cfg(test)]
mod tests {
    use super::{TABLE, Verdict};

    #[test]
    fn the_table_has_one_row_per_verdict_in_the_enums_order_most_telling_first() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.verdict as usize, i, "{}", row.name);
            assert_eq!(row.verdict.row().name, row.name);
        }
        assert!(TABLE.windows(2).all(|w| w[0].rank <= w[1].rank));
        let mut names: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }
}
