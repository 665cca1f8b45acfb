//! What the keepalive analysis says in `--explain` and the diagrams: who
//! probed, after how long, what became of the probes and what the kernel
//! did, tied to TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT and to the
//! prober's stack's defaults; each arrow's label and remark.

use super::diagram::{Fate, fate};
use super::{Keepalive, LINUX_DEFAULTS, Note, Prober, SystemDefaults, WINDOWS_DEFAULTS};
use crate::analyses::describe::{FindingsOf, MarkOf};
use crate::analyses::event::{Close, Step, Summary, time_wait};
use crate::analyses::verdict::Verdict;
use crate::core::tcp::{Kind, Side};
use crate::core::text::{Secs, join_and, seconds};
use std::fmt::Write as _;

/// The account of how the connection's keepalive fared (`--explain`).
pub(super) fn account<F: FindingsOf<Keepalive>, M: MarkOf<Keepalive>>(
    f: &Summary<F>,
    steps: &[Step<M>],
    o: &mut String,
) {
    if f.findings.found().probes == 0 {
        no_keepalive(o, f);
        return;
    }
    let who = Roles::of(f);
    probing(o, f, who, steps);
    match f.verdict {
        Verdict::Alive => alive(o, f, who, steps),
        Verdict::DeadPeer => dead_peer(o, f, who, steps),
        Verdict::PeerReset => peer_reset(o, who, steps),
        Verdict::AcksDropped => acks_dropped(o, f, who),
        Verdict::Undecided => undecided(o, f, who, steps),
        _ => {}
    }
    let missed = f.findings.found().missed;
    if missed > 0 {
        let _ = writeln!(
            o,
            "  {} not in the capture, yet the {prober} got {}: its next probe came one \
             TCP_KEEPIDLE later, not one TCP_KEEPINTVL, and its TS ecr echoes a TS val the capture \
             never showed from the {peer} (ts_recent moves only on what the {prober} accepts). \
             Counted as answered; the capture dropped packets (see the drop count tcpdump or the \
             capture tool reported) or saw only part of the path.",
            if missed == 1 {
                "One answer is".to_string()
            } else {
                format!("{missed} answers are")
            },
            if missed == 1 { "it" } else { "them" },
            prober = who.prober,
            peer = who.peer,
        );
    }
    let stack = stack(steps);
    let k = f.findings.found();
    let [idle, interval, _] = stack.defaults.differing(k.idle, k.interval, None);
    if idle || interval {
        let d = stack.defaults;
        let _ = writeln!(
            o,
            "  These timings are not {} defaults ({:.0} s / {:.0} s / {}): {}.",
            stack.possessive,
            d.time,
            d.intvl,
            d.probes,
            stack.set_by.replace("{prober}", who.prober)
        );
    }
    ending(o, f, who, steps);
}

/// Whose defaults a prober is compared with, and what sets its timers.
struct Stack {
    name: &'static str,
    possessive: &'static str,
    defaults: SystemDefaults,
    /// The name of the idle-time default (sysctl or registry value).
    time_name: &'static str,
    /// Where the timings come from when they are not the defaults.
    set_by: &'static str,
}

/// Linux: zero-byte probes.
const LINUX: Stack = Stack {
    name: "Linux",
    possessive: "Linux's",
    defaults: LINUX_DEFAULTS,
    time_name: "tcp_keepalive_time",
    set_by: "the {prober}'s socket sets TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT itself (setsockopt), or \
             the host changed net.ipv4.tcp_keepalive_*",
};

/// Windows (and RFC 1122-style stacks): one-byte probes, 1 s apart, 10 of them.
const WINDOWS: Stack = Stack {
    name: "Windows",
    possessive: "Windows'",
    defaults: WINDOWS_DEFAULTS,
    time_name: "KeepAliveTime",
    set_by: "the {prober}'s application sets them (SIO_KEEPALIVE_VALS, or SO_KEEPALIVE with TCP_KEEPIDLE / \
             TCP_KEEPINTVL / TCP_KEEPCNT), or the host's registry does \
             (HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters: KeepAliveTime, KeepAliveInterval) — \
             net.ipv4.tcp_keepalive_* are Linux's",
};

/// The stack a flow's probes look like: one garbage byte is Windows-style.
fn stack<M: MarkOf<Keepalive>>(steps: &[Step<M>]) -> &'static Stack {
    if steps
        .iter()
        .any(|s| s.kind == Kind::Keepalive && s.len == 1)
    {
        &WINDOWS
    } else {
        &LINUX
    }
}

/// A value as `num` prints it, so that sums of printed values add up.
fn shown(v: f64) -> f64 {
    if v >= 100.0 {
        v.round()
    } else {
        (v * 100.0).round() / 100.0
    }
}

/// The prober and its peer, by name.
#[derive(Clone, Copy)]
struct Roles {
    prober: &'static str,
    peer: &'static str,
}

impl Roles {
    fn of<F: FindingsOf<Keepalive>>(f: &Summary<F>) -> Roles {
        let side = f.findings.found().prober.map_or(Side::Client, |p| p.side());
        Roles {
            prober: side.name(),
            peer: side.other().name(),
        }
    }
}

/// No probe: what that means for an idle connection.
fn no_keepalive<F>(o: &mut String, f: &Summary<F>) {
    if f.shared.app_pings > 0 {
        let _ = writeln!(
            o,
            "  No TCP keepalive probe was seen: the kernel did not check the peer; the application's pings \
             above did, at their own level. They protect the connection from middlebox idle timeouts only \
             while they are more frequent than the shortest one on the path."
        );
        return;
    }
    if f.shared.http {
        let _ = writeln!(
            o,
            "  No TCP keepalive probe was seen: the kernel never checked whether the peer was still there. \
             HTTP keep-alive does not do that either; it only decides whether the connection is reused."
        );
        return;
    }
    let _ = writeln!(
        o,
        "  No keepalive probe was seen: {}. If this \
         connection sits idle and the peer disappears (power loss, a cable, a NAT or firewall forgetting \
         it), nothing notices: the half-open connection lives forever unless the application sends \
         something. Turn SO_KEEPALIVE on and set TCP_KEEPIDLE below any middlebox idle timeout.",
        if f.close == Close::Open {
            format!(
                "the capture ended with the connection still open, before it was idle for TCP_KEEPIDLE \
                 (the Linux default tcp_keepalive_time is {:.0} s, two hours), or neither side had \
                 SO_KEEPALIVE on — this capture cannot tell which",
                LINUX.defaults.time
            )
        } else {
            format!(
                "neither side had SO_KEEPALIVE on, or the connection was never idle for TCP_KEEPIDLE \
                 (the Linux default tcp_keepalive_time is {:.0} s, two hours)",
                LINUX.defaults.time
            )
        }
    );
}

/// Who probes, after how long, and what a probe is.
fn probing<F: FindingsOf<Keepalive>, M: MarkOf<Keepalive>>(
    o: &mut String,
    f: &Summary<F>,
    who: Roles,
    steps: &[Step<M>],
) {
    let Roles { prober, peer } = who;
    let _ = writeln!(
        o,
        "  The {prober} had SO_KEEPALIVE on{}.{}",
        if prober == "server" {
            " (set on the accepted socket, as servers like Redis `tcp-keepalive` or nginx `so_keepalive` do)"
        } else {
            ""
        },
        if f.findings.found().prober == Some(Prober::Both) {
            " So did the other side."
        } else {
            ""
        }
    );
    let stack = stack(steps);
    // The probe the silence is told of: the first one after a silence the
    // capture shows whole (probe #1 when the capture starts during the idle
    // period comes before it, its silence unknown).
    let first = |known: bool| {
        steps.iter().find_map(|s| match *s.marks.mark() {
            Note::Probe {
                number: 1,
                idle,
                ordinal,
                ..
            } if s.kind == Kind::Keepalive && (!known || idle.is_some()) => Some(ordinal),
            _ => None,
        })
    };
    let told = first(f.findings.found().idle.is_some())
        .or_else(|| first(false))
        .unwrap_or(1);
    let idle_src = match f.findings.found().idle {
        Some(idle) => format!(
            "After {} of silence (its TCP_KEEPIDLE; the {} default {} is {:.0} s) it",
            seconds(idle),
            stack.name,
            stack.time_name,
            stack.defaults.time
        ),
        None => format!(
            "The capture starts during the idle period, so the silence before the first probe \
             (TCP_KEEPIDLE) is not in it. The {prober}"
        ),
    };
    let payload = if steps
        .iter()
        .any(|s| s.kind == Kind::Keepalive && s.len == 1)
    {
        "one garbage byte (as Windows and RFC 1122-style stacks send)"
    } else {
        "no data"
    };
    let _ = writeln!(
        o,
        "  {idle_src} sent probe #{told}: an ACK carrying {payload} whose sequence number is one below the next \
         byte, so the {peer}'s TCP must answer with an ACK if it still has the connection."
    );
}

/// Verdict `alive`: the peer answered.
fn alive<F: FindingsOf<Keepalive>, M: MarkOf<Keepalive>>(
    o: &mut String,
    f: &Summary<F>,
    who: Roles,
    steps: &[Step<M>],
) {
    let worst = steps
        .iter()
        .filter_map(|s| match *s.marks.mark() {
            Note::ProbeAnswered { rtt, .. } => Some(rtt),
            _ => None,
        })
        .fold(0.0, f64::max);
    let _ = writeln!(
        o,
        "  The {} answered {} of {} probes (slowest answer {}): the peer is alive and the path \
         between them works. While the peer answers, probes come one TCP_KEEPIDLE apart; \
         TCP_KEEPINTVL and TCP_KEEPCNT only show when probes go unanswered, so this capture cannot \
         tell them.",
        who.peer,
        f.findings.found().answered,
        f.findings.found().probes,
        Secs(worst)
    );
}

/// Verdict `dead-peer`: probes went unanswered, and what the kernel did.
fn dead_peer<F: FindingsOf<Keepalive>, M: MarkOf<Keepalive>>(
    o: &mut String,
    f: &Summary<F>,
    who: Roles,
    steps: &[Step<M>],
) {
    let stack = stack(steps);
    let k = &f.findings.found();
    let interval = k.interval.unwrap_or(0.0);
    let nums: Vec<String> = steps
        .iter()
        .filter_map(|s| match *s.marks.mark() {
            Note::Probe { ordinal, .. }
                if s.kind == Kind::Keepalive && fate(steps, s) == Fate::Unanswered =>
            {
                Some(format!("#{ordinal}"))
            }
            _ => None,
        })
        .collect();
    let _ = writeln!(
        o,
        "  Probe{} {}{} went unanswered.",
        if nums.len() > 1 { "s" } else { "" },
        join_and(&nums),
        if nums.len() > 1 {
            format!(
                ", {} apart (TCP_KEEPINTVL; {} default {:.0} s),",
                seconds(interval),
                stack.name,
                stack.defaults.intvl
            )
        } else {
            String::new()
        }
    );
    let gave_up = steps.iter().find_map(|s| match *s.marks.mark() {
        Note::GaveUp {
            count,
            at_least,
            ordinal,
            after,
            ..
        } => Some((count, at_least, ordinal, after)),
        _ => None,
    });
    let Some((count, at_least, ordinal, after)) = gave_up else {
        let _ = writeln!(
            o,
            "  The capture ends before the {}'s kernel gave up, so TCP_KEEPCNT is not known; \
             when it does, it will reset the connection and the application will see ETIMEDOUT.",
            who.prober
        );
        return;
    };
    let one_interval = (after - interval).abs() <= interval * 0.25 + 0.05;
    let _ = writeln!(
        o,
        "  {} after probe #{ordinal} its kernel gave up (TCP_KEEPCNT {}{count}; {} default \
         {}) and reset the connection: the application sees ETIMEDOUT (\"Connection \
         timed out\") on its next read or write.{}",
        if one_interval {
            "One interval".to_string()
        } else {
            Secs(after).to_string()
        },
        if at_least { "≥ " } else { "= " },
        stack.name,
        stack.defaults.probes,
        if at_least {
            " The first probe the capture shows may not be the first sent: nothing from the \
             peer came before it in the capture, so TCP_KEEPCNT is at least that many."
        } else {
            ""
        }
    );
    if let Some(idle) = k.idle.filter(|_| !at_least) {
        let total = shown(idle) + f64::from(count) * shown(interval);
        let _ = writeln!(
            o,
            "  Time to detect the dead peer: {} = idle + count × interval ({} + {count} × {}).",
            seconds(total),
            seconds(idle),
            seconds(interval)
        );
    }
    if interval > 0.0 && !one_interval && stack.name == "Linux" {
        let _ = writeln!(
            o,
            "  Linux resets one interval after the last probe; here the RST came after {}: the \
             prober may not be Linux, or TCP_USER_TIMEOUT cut the wait short.",
            Secs(after)
        );
    }
}

/// Verdict `acks-dropped`: answered on the wire, not heard by the prober.
fn acks_dropped<F: FindingsOf<Keepalive>>(o: &mut String, f: &Summary<F>, who: Roles) {
    let k = &f.findings.found();
    let Some(run) = k.acks_dropped else {
        return;
    };
    let Roles { prober, peer } = who;
    let mut evidence = Vec::new();
    if run.unheard > 0 {
        evidence.push(format!(
            "on {} probe{} its TCP timestamp echo (TS ecr) did not move to the TS val of the answer \
             before it, so that answer never reached its TCP",
            run.unheard,
            if run.unheard == 1 { "" } else { "s" }
        ));
    }
    if let Some(after) = run.gave_up {
        evidence.push(format!(
            "it reset the connection {} after an answered probe, as a kernel does one TCP_KEEPINTVL \
             after TCP_KEEPCNT unanswered probes",
            Secs(after)
        ));
    }
    let _ = writeln!(
        o,
        "  The {peer} answered {} of the {prober}'s {} probes on the wire, yet the {prober} behaved as if \
         it heard nothing: {}. The answers were lost between this capture point and the {prober}'s \
         socket — on the {prober}'s host: an INPUT firewall rule, conntrack dropping them as INVALID \
         (its entry for this connection expired), an ACL, or a socket filter.",
        run.answered,
        run.probes,
        join_and(&evidence)
    );
    let idle = k.idle.map_or_else(
        || "the silence before the first probe began before the capture".to_string(),
        |i| {
            format!(
                "{} of silence before the first probe (TCP_KEEPIDLE)",
                seconds(i)
            )
        },
    );
    let count = k.count.map_or_else(
        || "the capture ends before it gave up (TCP_KEEPCNT not known)".to_string(),
        |c| {
            format!(
                "{}{c} of them before the reset (TCP_KEEPCNT)",
                if k.count_at_least { "at least " } else { "" }
            )
        },
    );
    let _ = writeln!(
        o,
        "  Inferred from the {prober}'s behaviour, not from the answers: {idle}; probes {} apart \
         (TCP_KEEPINTVL; while answers are heard they come one TCP_KEEPIDLE apart); {count}. The \
         application sees ETIMEDOUT although the {peer} is alive.",
        k.interval.map_or_else(|| "-".to_string(), seconds)
    );
    let port = if prober == "client" {
        f.server.port()
    } else {
        f.client.port()
    };
    let _ = writeln!(
        o,
        "  To check on the {prober}'s host: `iptables -L -v -n` (packet counters of DROP rules matching \
         port {port}), `conntrack -S` (the invalid and drop counters), `nstat -az TcpExtTCPKeepAlive` \
         (probes sent), and a capture there: answers on that host's wire that never reach the socket are \
         dropped on that host."
    );
}

/// Verdict `undecided`: one probe, and the capture ended right after it.
fn undecided<F: FindingsOf<Keepalive>, M: MarkOf<Keepalive>>(
    o: &mut String,
    f: &Summary<F>,
    who: Roles,
    steps: &[Step<M>],
) {
    let waited = f.findings.found().pending.map_or(0.0, |p| p.waited);
    let last = steps.iter().rev().find_map(|s| match *s.marks.mark() {
        Note::Probe { ordinal, .. } if s.kind == Kind::Keepalive => Some(ordinal),
        _ => None,
    });
    let _ = writeln!(
        o,
        "  The capture ends {} after probe #{}, with no answer yet: too soon to tell. A dead {}, an \
         answer still on its way, and a capture stopped (or rotated into the next file) right after \
         the probe look the same. A capture that goes on for one TCP_KEEPINTVL after a probe tells \
         (for rotated files: kacap --merge).",
        Secs(waited),
        last.unwrap_or(1),
        who.peer
    );
}

/// Verdict `peer-reset`: a probe was answered by RST.
fn peer_reset<M: MarkOf<Keepalive>>(o: &mut String, who: Roles, steps: &[Step<M>]) {
    let n = steps.iter().find_map(|s| match *s.marks.mark() {
        Note::PeerReset { ordinal, .. } => Some(ordinal),
        _ => None,
    });
    let _ = writeln!(
        o,
        "  Probe #{} was answered by RST: the {} no longer knows this connection — it rebooted, or \
         its socket vanished without a FIN (process killed, state dropped). The {}'s application \
         sees ECONNRESET (\"Connection reset by peer\") on its next read or write. Without keepalive \
         it would have learned only when it next sent data.",
        n.unwrap_or(1),
        who.peer,
        who.prober
    );
}

/// How the connection ended, unless the verdict already said it.
fn ending<F: FindingsOf<Keepalive>, M: MarkOf<Keepalive>>(
    o: &mut String,
    f: &Summary<F>,
    who: Roles,
    steps: &[Step<M>],
) {
    let ended = match f.close {
        // The HTTP account said it already.
        Close::Fin(_) if f.shared.http => return,
        Close::Fin(side) => time_wait(side, steps),
        Close::Rst(side)
            if matches!(f.verdict, Verdict::DeadPeer | Verdict::AcksDropped)
                && side.name() == who.prober =>
        {
            return;
        }
        Close::Rst(side) if f.verdict == Verdict::PeerReset && side.name() == who.peer => {
            return;
        }
        Close::Rst(side) => format!("The {} ended the connection with RST.", side.name()),
        Close::Open => "The connection is still open at the end of the capture.".to_string(),
    };
    let _ = writeln!(o, "  {ended}");
}
