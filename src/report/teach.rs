//! Teaching: `--explain` (a plain-language account of each connection, tied
//! to TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT), `--diagram` (a sequence
//! diagram in the terminal) and `--diagram-svg` (the same, for a browser).

use super::annotate::Secs;
use crate::analyses::app::{AppEvent, Label, Protocol};
use crate::analyses::http::HttpSummary;
use crate::analyses::keepalive::Note;
use crate::analyses::keepalive::{LINUX_DEFAULTS, Prober, SystemDefaults, WINDOWS_DEFAULTS};
use crate::analyses::retransmit::GaveUp;
use crate::core::decode::flags;
use crate::core::tcp::Kind;
use crate::core::tcp::Side;
use crate::core::time::Timestamp;
use crate::pipeline::event::PacketEvent;
use crate::pipeline::summary::Verdict;
use crate::pipeline::summary::{Close, FlowSummary};
use std::collections::HashMap;
use std::fmt::Write as _;

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
fn stack(steps: &[Step]) -> &'static Stack {
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

/// Most steps kept per flow; the middle of longer flows is elided.
const MAX_STEPS: usize = 400;

/// `Recorder::with_lines`: a flow's first segments that keep their line
/// even when they are plain data or ACKs.
pub const LINE_HEAD: u64 = 16;

/// One segment, as the diagram and the explanation need it.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub n: u64,
    pub ts: Timestamp,
    pub from: Side,
    pub kind: Kind,
    pub note: Note,
    pub flags: u8,
    pub len: u32,
    pub late: bool,
    pub injected: bool,
    /// An application frame it carries (`app`), for the diagram's label.
    pub app: Option<(Label, Protocol)>,
    /// Its slot in [`FlowSteps::lines`] (when the recorder keeps lines).
    slot: u16,
    /// A later segment changed what it is (`revise`).
    pub revised: bool,
}

/// The steps of every open flow, until the flow is reported.
#[derive(Debug, Default)]
pub struct Recorder {
    flows: HashMap<u32, FlowSteps>,
    /// `with_lines`: the printer of each kept step's tcpdump line (it owns
    /// the relative-sequence bases, as tcpdump's printer does), and the
    /// buffer lines are written into.
    lines: Option<(super::tcpdump::Tcpdump, Vec<u8>)>,
}

#[derive(Debug, Default)]
pub struct FlowSteps {
    pub head: Vec<Step>,
    /// The latest steps once `head` is full (a ring of MAX_STEPS / 2).
    pub tail: Vec<Step>,
    tail_at: usize,
    pub elided: u64,
    /// With `Recorder::with_lines`: each kept step's tcpdump line and
    /// annotation, by the step's slot (head steps first, then the ring).
    lines: Vec<Box<str>>,
}

impl FlowSteps {
    /// Keeps `s` (and its line, when there is one) in the head or the ring.
    fn push(&mut self, mut s: Step, line: Option<Box<str>>) {
        let slot = if self.head.len() < MAX_STEPS / 2 {
            s.slot = self.head.len() as u16;
            self.head.push(s);
            s.slot
        } else if self.tail.len() < MAX_STEPS / 2 {
            s.slot = (MAX_STEPS / 2 + self.tail.len()) as u16;
            self.tail.push(s);
            s.slot
        } else {
            s.slot = (MAX_STEPS / 2 + self.tail_at) as u16;
            self.tail[self.tail_at] = s;
            self.tail_at = (self.tail_at + 1) % self.tail.len();
            self.elided += 1;
            s.slot
        };
        if let Some(line) = line {
            let slot = usize::from(slot);
            if self.lines.len() <= slot {
                self.lines.resize(slot + 1, Box::from(""));
            }
            self.lines[slot] = line;
        }
    }

    /// The tcpdump line and, after a newline, its annotation, kept for a
    /// step ("" without).
    pub fn line(&self, s: &Step) -> &str {
        self.lines.get(usize::from(s.slot)).map_or("", |l| l)
    }

    /// All kept steps in order, with the count of elided ones between.
    pub fn ordered(&self) -> (Vec<Step>, Vec<Step>) {
        let mut tail = self.tail[self.tail_at..].to_vec();
        tail.extend_from_slice(&self.tail[..self.tail_at]);
        (self.head.clone(), tail)
    }
}

impl Recorder {
    /// A recorder that also keeps each kept step's tcpdump line and
    /// annotation (`--html`: a mark shows them).
    pub fn with_lines(style: super::tcpdump::Style) -> Recorder {
        Recorder {
            lines: Some((super::tcpdump::Tcpdump::new(style), Vec::new())),
            ..Recorder::default()
        }
    }

    /// `record`, or, for a connection whose steps would never be shown
    /// (`Kept::closed_to`), only what later lines of other connections
    /// depend on (the stamps' clock); its steps so far are dropped.
    pub fn offer(&mut self, ev: &PacketEvent, shown: bool) {
        if shown {
            return self.record(ev);
        }
        if self.flows.remove(&ev.flow_id).is_some()
            && let Some((printer, _)) = self.lines.as_mut()
        {
            printer.forget(ev.flow_id);
        }
        if let Some((printer, _)) = self.lines.as_mut() {
            printer.pass_time(ev.ts);
        }
    }

    pub fn record(&mut self, ev: &PacketEvent) {
        let fs = self.flows.entry(ev.flow_id).or_default();
        let line = self.lines.as_mut().and_then(|(printer, buf)| {
            // Lines are kept for a connection's first segments and for every
            // segment that is not plain data or a plain ACK: the marks
            // people click. The rest only move the printer's state.
            let seen = fs.head.len() as u64 + fs.tail.len() as u64 + fs.elided;
            let plain = matches!(ev.kind, Kind::Data | Kind::Ack)
                && ev.notes.app.label.is_none()
                && ev.notes.http.message.is_none()
                && ev.notes.http.stale.is_none();
            if plain && seen >= LINE_HEAD {
                printer.skip(ev);
                return None;
            }
            buf.clear();
            printer.write_line(buf, ev);
            buf.push(b'\n');
            let _ = super::annotate::write(buf, ev);
            std::str::from_utf8(buf).ok().map(Box::from)
        });
        let step = Step {
            n: ev.n,
            ts: ev.ts,
            from: ev.from,
            kind: ev.kind,
            note: ev.notes.keepalive,
            flags: ev.seg.flags,
            len: ev.seg.len,
            late: ev.late,
            injected: ev.injected.is_some(),
            app: ev
                .notes
                .app
                .label
                .map(|l| (l, app_protocol(ev.notes.app.event))),
            slot: 0,
            revised: false,
        };
        fs.push(step, line);
    }

    /// Earlier steps of a flow turned out to be of another kind.
    pub fn revise(&mut self, r: &crate::pipeline::event::Revisions) {
        let Some(fs) = self.flows.get_mut(&r.flow_id) else {
            return;
        };
        for item in r.items {
            for s in fs.head.iter_mut().chain(fs.tail.iter_mut()) {
                if s.n == item.n {
                    s.kind = item.kind;
                    s.note = item.notes.keepalive;
                    s.revised = true;
                }
            }
        }
    }

    /// The steps of a flow still open, left where they are.
    pub fn peek(&self, flow: u32) -> Option<&FlowSteps> {
        self.flows.get(&flow)
    }

    pub fn take(&mut self, flow: u32) -> FlowSteps {
        if let Some((printer, _)) = self.lines.as_mut() {
            printer.forget(flow);
        }
        self.flows.remove(&flow).unwrap_or_default()
    }
}

/// How a probe fared, looking at what followed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Answered,
    Reset,
    Unanswered,
}

fn fate(steps: &[Step], probe: u64) -> Fate {
    for s in steps {
        match s.note {
            Note::ProbeAnswered { reply_to, .. } if reply_to == probe => return Fate::Answered,
            Note::PeerReset { reply_to, .. } if reply_to == probe => return Fate::Reset,
            _ => {}
        }
    }
    Fate::Unanswered
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} s")
    } else {
        format!("{v:.2} s")
    }
}

/// The plain-language account of one flow: a heading, then by topic.
pub fn explain(f: &FlowSummary, steps: &[Step]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "flow {}: {} → {} — {}",
        f.id,
        f.client,
        f.server,
        f.verdict.as_str()
    );
    if let Some(h) = f.findings.http {
        let _ = writeln!(o, "  {}", http_account(f, h, steps));
        if let Some(race) = super::app::http_ending(&h) {
            let _ = writeln!(o, "  {race}");
        }
    }
    if let Some(app) = super::app::explain(f) {
        o.push_str(&app);
    }
    if let Some(j) = f.sockets.as_deref() {
        for (end, s) in [("client", &j.client), ("server", &j.server)] {
            if let Some(s) = s {
                let _ = writeln!(
                    o,
                    "  On this host, the {end} end is {}.",
                    crate::host::sockets::join::describe(s)
                );
            }
        }
        for check in super::sockets::checks(f) {
            let _ = writeln!(o, "  Checked against it: {check}.");
        }
    }
    zero_window_stall(&mut o, steps);
    if let Some(account) = super::idle::explain(f) {
        o.push_str(&account);
        return o;
    }
    if f.verdict == Verdict::RetransmitTimeout {
        retransmit_timeout(&mut o, f);
        return o;
    }
    if f.findings.keepalive.probes == 0 {
        no_keepalive(&mut o, f);
        return o;
    }
    let who = Roles::of(f);
    probing(&mut o, f, who, steps);
    match f.verdict {
        Verdict::Alive => alive(&mut o, f, who, steps),
        Verdict::DeadPeer => dead_peer(&mut o, f, who, steps),
        Verdict::PeerReset => peer_reset(&mut o, who, steps),
        Verdict::AcksDropped => acks_dropped(&mut o, f, who),
        Verdict::Undecided => undecided(&mut o, f, who, steps),
        Verdict::NoKeepalive
        | Verdict::IdleTimeout
        | Verdict::RetransmitTimeout
        | Verdict::AppKeepalive
        | Verdict::AppPingTimeout
        | Verdict::TooManyPings
        | Verdict::StaleConnection => {}
    }
    let stack = stack(steps);
    let k = &f.findings.keepalive;
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
    ending(&mut o, f, who, steps);
    o
}

/// The prober and its peer, by name.
#[derive(Clone, Copy)]
struct Roles {
    prober: &'static str,
    peer: &'static str,
}

impl Roles {
    fn of(f: &FlowSummary) -> Roles {
        let side = f
            .findings
            .keepalive
            .prober
            .map_or(Side::Client, |p| p.side());
        Roles {
            prober: side.name(),
            peer: side.other().name(),
        }
    }
}

/// Verdict `retransmit-timeout`: data never acknowledged, retransmitted
/// until the sender gave up; what else would look the same.
fn retransmit_timeout(o: &mut String, f: &FlowSummary) {
    let Some(r) = f.findings.retransmit else {
        return;
    };
    let (who, peer) = (r.sender.name(), r.sender.other().name());
    let times = if r.count == 1 { "once" } else { "times" };
    let count = if r.count == 1 {
        String::new()
    } else {
        format!("{} ", r.count)
    };
    let backoff = if r.backoff {
        ", each time waiting twice as long (exponential backoff)"
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "  Data from the {who} was never acknowledged: it was retransmitted {count}{times}{backoff}."
    );
    let after = r.gave_up_after.map(num).unwrap_or_default();
    let _ = match r.how {
        GaveUp::Rst => writeln!(
            o,
            "  {after} after the first transmission the {who} gave up and reset the connection."
        ),
        GaveUp::Silent => writeln!(
            o,
            "  {after} after the first transmission the retransmissions stopped and the {who} fell silent: \
             Linux gives up without a RST when TCP_USER_TIMEOUT or net.ipv4.tcp_retries2 runs out, and \
             the application sees ETIMEDOUT (\"Connection timed out\")."
        ),
        GaveUp::CaptureEnded => writeln!(
            o,
            "  The capture ends before the {who}'s next retransmission was due: whether it gave up, and \
             when, is not in it."
        ),
    };
    let _ = writeln!(
        o,
        "  Keepalive cannot help while data is in flight: the kernel does not probe then. What bounds \
         the wait is TCP_USER_TIMEOUT (per socket: how long data may stay unacknowledged) or, without \
         it, net.ipv4.tcp_retries2 (default 15: about 924 s with a 200 ms RTO)."
    );
    if f.same_host() {
        let _ = writeln!(
            o,
            "  Both ends are on this host ({}), so no middlebox is involved: segments for the {peer}'s \
             socket were dropped on this host (a socket filter, a firewall rule), or the {peer} stopped \
             taking them.",
            f.server.ip()
        );
    } else {
        let _ = writeln!(
            o,
            "  One connection cannot tell why the {peer} went silent: a host that vanished (power, cable), \
             a firewall that started dropping, or a middlebox that forgot the connection would all look \
             the same. Other connections to {} would tell them apart.",
            f.server
        );
    }
}

/// A receiver that stopped reading: flow control, not keepalive.
fn zero_window_stall(o: &mut String, steps: &[Step]) {
    let mut zero = steps.iter().filter(|s| s.kind == Kind::ZeroWindow);
    let Some(first) = zero.next() else {
        return;
    };
    let times = 1 + zero.count();
    let (who, peer) = (first.from.name(), first.from.other().name());
    let probed = steps
        .iter()
        .any(|s| s.kind == Kind::ZeroWindowProbe && s.from == first.from.other());
    let reopened = steps
        .iter()
        .find(|s| s.kind == Kind::WindowUpdate && s.from == first.from && s.ts >= first.ts)
        .map_or_else(
            || "; no window update was seen after it".to_string(),
            |u| format!("; the window reopened {} later", Secs(u.ts.since(first.ts))),
        );
    let _ = writeln!(
        o,
        "  The {who} advertised a zero window{}: its receive buffer was full because its application \
         was not reading, so the {peer} had to wait{}{reopened}. This is flow control, not keepalive: a \
         stalled receiver is alive, and keepalive does not probe while data waits to be sent.",
        if times == 1 {
            String::new()
        } else {
            format!(" {times} times")
        },
        if probed {
            " and asked with zero-window probes"
        } else {
            ""
        }
    );
}

/// No probe: what that means for an idle connection.
fn no_keepalive(o: &mut String, f: &FlowSummary) {
    if f.findings.app.is_some_and(|a| a.pings > 0) {
        let _ = writeln!(
            o,
            "  No TCP keepalive probe was seen: the kernel did not check the peer; the application's pings \
             above did, at their own level. They protect the connection from middlebox idle timeouts only \
             while they are more frequent than the shortest one on the path."
        );
        return;
    }
    if f.findings.http.is_some() {
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
fn probing(o: &mut String, f: &FlowSummary, who: Roles, steps: &[Step]) {
    let Roles { prober, peer } = who;
    let _ = writeln!(
        o,
        "  The {prober} had SO_KEEPALIVE on{}.{}",
        if prober == "server" {
            " (set on the accepted socket, as servers like Redis `tcp-keepalive` or nginx `so_keepalive` do)"
        } else {
            ""
        },
        if f.findings.keepalive.prober == Some(Prober::Both) {
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
        steps.iter().find_map(|s| match s.note {
            Note::Probe {
                number: 1,
                idle,
                ordinal,
                ..
            } if s.kind == Kind::Keepalive && (!known || idle.is_some()) => Some(ordinal),
            _ => None,
        })
    };
    let told = first(f.findings.keepalive.idle.is_some())
        .or_else(|| first(false))
        .unwrap_or(1);
    let idle_src = match f.findings.keepalive.idle {
        Some(idle) => format!(
            "After {} of silence (its TCP_KEEPIDLE; the {} default {} is {:.0} s) it",
            num(idle),
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
fn alive(o: &mut String, f: &FlowSummary, who: Roles, steps: &[Step]) {
    let worst = steps
        .iter()
        .filter_map(|s| match s.note {
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
        f.findings.keepalive.answered,
        f.findings.keepalive.probes,
        Secs(worst)
    );
}

/// Verdict `dead-peer`: probes went unanswered, and what the kernel did.
fn dead_peer(o: &mut String, f: &FlowSummary, who: Roles, steps: &[Step]) {
    let stack = stack(steps);
    let k = &f.findings.keepalive;
    let interval = k.interval.unwrap_or(0.0);
    let nums: Vec<String> = steps
        .iter()
        .filter_map(|s| match s.note {
            Note::Probe { ordinal, .. }
                if s.kind == Kind::Keepalive && fate(steps, s.n) == Fate::Unanswered =>
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
                num(interval),
                stack.name,
                stack.defaults.intvl
            )
        } else {
            String::new()
        }
    );
    let gave_up = steps.iter().find_map(|s| match s.note {
        Note::GaveUp {
            count,
            ordinal,
            after,
            ..
        } => Some((count, ordinal, after)),
        _ => None,
    });
    let Some((count, ordinal, after)) = gave_up else {
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
        "  {} after probe #{ordinal} its kernel gave up (TCP_KEEPCNT = {count}; {} default \
         {}) and reset the connection: the application sees ETIMEDOUT (\"Connection \
         timed out\") on its next read or write.",
        if one_interval {
            "One interval".to_string()
        } else {
            Secs(after).to_string()
        },
        stack.name,
        stack.defaults.probes
    );
    if let Some(idle) = k.idle {
        let total = shown(idle) + f64::from(count) * shown(interval);
        let _ = writeln!(
            o,
            "  Time to detect the dead peer: {} = idle + count × interval ({} + {count} × {}).",
            num(total),
            num(idle),
            num(interval)
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
fn acks_dropped(o: &mut String, f: &FlowSummary, who: Roles) {
    let k = &f.findings.keepalive;
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
                num(i)
            )
        },
    );
    let count = k.count.map_or_else(
        || "the capture ends before it gave up (TCP_KEEPCNT not known)".to_string(),
        |c| format!("{c} of them before the reset (TCP_KEEPCNT)"),
    );
    let _ = writeln!(
        o,
        "  Inferred from the {prober}'s behaviour, not from the answers: {idle}; probes {} apart \
         (TCP_KEEPINTVL; while answers are heard they come one TCP_KEEPIDLE apart); {count}. The \
         application sees ETIMEDOUT although the {peer} is alive.",
        k.interval.map_or_else(|| "-".to_string(), num)
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
fn undecided(o: &mut String, f: &FlowSummary, who: Roles, steps: &[Step]) {
    let waited = f.findings.keepalive.pending.map_or(0.0, |p| p.waited);
    let last = steps.iter().rev().find_map(|s| match s.note {
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
fn peer_reset(o: &mut String, who: Roles, steps: &[Step]) {
    let n = steps.iter().find_map(|s| match s.note {
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
fn ending(o: &mut String, f: &FlowSummary, who: Roles, steps: &[Step]) {
    let ended = match f.close {
        // The HTTP account said it already.
        Close::Fin(_) if f.findings.http.is_some() => return,
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

/// Who keeps TIME_WAIT after `side` closed first with FIN — nobody when a
/// RST followed (it aborts both sockets).
fn time_wait(side: Side, steps: &[Step]) -> String {
    let reset = steps
        .iter()
        .skip_while(|s| s.kind != Kind::Fin)
        .find(|s| s.kind == Kind::Rst && !s.injected);
    match reset {
        Some(r) => format!(
            "The {} closed first with FIN, then the {} reset the connection: neither side keeps TIME_WAIT.",
            side.name(),
            r.from.name()
        ),
        None => format!(
            "The {} closed first with FIN; it holds TIME_WAIT for 2×MSL (60 s on Linux).",
            side.name()
        ),
    }
}

/// HTTP keep-alive in words, distinct from TCP keepalive.
fn http_account(f: &FlowSummary, h: HttpSummary, steps: &[Step]) -> String {
    let version = h.version.unwrap_or("1.x");
    let mut s = format!(
        "HTTP/{version}: {} request{} and {} response{} on this connection. ",
        h.requests,
        if h.requests == 1 { "" } else { "s" },
        h.responses,
        if h.responses == 1 { "" } else { "s" }
    );
    let upgraded = f
        .findings
        .app
        .filter(|a| matches!(a.protocol, Protocol::WebSocket | Protocol::Http2));
    if let Some(a) = upgraded
        && h.requests == 1
    {
        let _ = write!(
            s,
            "The request upgraded the connection to {} (101 Switching Protocols); what follows is not HTTP/1.x. ",
            a.protocol.name()
        );
    } else if h.keep_alive && h.requests > 1 {
        s.push_str("HTTP keep-alive: the client reused the connection instead of opening a new one per request");
        if let Some(g) = h.max_gap {
            let _ = write!(
                s,
                " (longest pause between a response and the next request {})",
                Secs(g)
            );
        }
        s.push_str(". ");
    } else if h.keep_alive {
        s.push_str("Both sides agreed to keep the connection open for more requests (HTTP keep-alive), but only one came. ");
    } else if version == "1.0" {
        s.push_str("HTTP/1.0 closes after each response unless both sides send `Connection: keep-alive`: no keep-alive here. ");
    } else {
        s.push_str("`Connection: close` ended HTTP keep-alive: one request per connection. ");
    }
    if let Close::Fin(side) = f.close {
        let tw = time_wait(side, steps);
        s.push_str(&tw);
        if side == Side::Server && !tw.contains("neither") && upgraded.is_none() {
            s.push_str(" A server that closes every connection collects TIME_WAIT sockets.");
        }
    }
    s.push_str(
        " HTTP keep-alive is about reusing a connection; TCP keepalive is the kernel probing an idle one.",
    );
    s
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The footnote on HTTP keep-alive, for flows on HTTP ports.
pub fn http_footnote(flows: &[FlowSummary]) -> Option<String> {
    let http = flows
        .iter()
        .any(|f| matches!(f.server.port(), 80 | 8080 | 8000 | 443 | 8443));
    http.then(|| {
        "Not to be confused with HTTP keep-alive (`Connection: keep-alive`, the default in HTTP/1.1): that \
         reuses one connection for several requests and is decided by the applications; TCP keepalive is the \
         kernel probing an idle connection to find out whether the peer is still there. A connection can have \
         either, both or neither. Without HTTP keep-alive the server closes after each response, so it is the \
         server that collects TIME_WAIT sockets."
            .to_string()
    })
}

fn app_protocol(e: Option<AppEvent>) -> Protocol {
    match e {
        Some(AppEvent::Ping { protocol, .. })
        | Some(AppEvent::Answer { protocol, .. })
        | Some(AppEvent::Close { protocol, .. })
        | Some(AppEvent::Recognized(protocol)) => protocol,
        Some(AppEvent::Goaway(_)) => Protocol::Http2,
        Some(AppEvent::Exchange { .. }) | None => Protocol::Encrypted,
    }
}

/// An application frame's arrow label: `HTTP/2 PING`, `WebSocket pong`, …
fn app_label(l: Label, p: Protocol, len: u32) -> String {
    match (p, l) {
        (Protocol::Http2, Label::Ping) => "HTTP/2 PING".to_string(),
        (Protocol::Http2, Label::PingAck) => "HTTP/2 PING ACK".to_string(),
        (Protocol::Http2, _) => "HTTP/2 GOAWAY".to_string(),
        (Protocol::WebSocket, Label::Ping) => "WebSocket ping".to_string(),
        (Protocol::WebSocket, Label::Close) => "WebSocket close".to_string(),
        (Protocol::WebSocket, _) => "WebSocket pong".to_string(),
        (Protocol::Redis, Label::Ping) => "Redis PING".to_string(),
        (Protocol::Redis, _) => "Redis +PONG".to_string(),
        (Protocol::Mysql, Label::Ping) => "MySQL COM_PING".to_string(),
        (Protocol::Mysql, Label::Close) => "MySQL COM_QUIT".to_string(),
        (Protocol::Mysql, _) => "MySQL OK".to_string(),
        (Protocol::Encrypted, Label::Ping) => format!("keepalive? {len} B"),
        (Protocol::Encrypted, _) => format!("answer? {len} B"),
    }
}

/// What an arrow is labelled with.
pub(crate) fn label(s: &Step) -> String {
    if let Some((l, p)) = s.app {
        return app_label(l, p, s.len);
    }
    match (s.kind, s.note) {
        (Kind::Keepalive, Note::Probe { ordinal, .. }) => format!("keepalive probe #{ordinal}"),
        (Kind::KeepaliveAck, _) => "keepalive ACK".to_string(),
        (Kind::Syn, _) => "SYN".to_string(),
        (Kind::SynAck, _) => "SYN-ACK".to_string(),
        (Kind::HandshakeAck, _) => "ACK".to_string(),
        (Kind::Data, _) => format!("data {} B", s.len),
        (Kind::Ack, _) => "ACK".to_string(),
        (Kind::Retransmission, _) if s.flags & flags::FIN != 0 => "FIN (again)".to_string(),
        (Kind::Retransmission, _) => format!("retransmission {} B", s.len),
        (Kind::Fin, _) => "FIN".to_string(),
        (Kind::Rst, _) => "RST".to_string(),
        (Kind::ZeroWindowProbe, _) => "zero-window probe".to_string(),
        (Kind::ZeroWindowProbeAck, _) => "zero-window ACK".to_string(),
        (Kind::ZeroWindow, _) => "ACK, window 0".to_string(),
        (Kind::WindowUpdate, _) => "window update".to_string(),
        (Kind::Keepalive, _) => "keepalive probe".to_string(),
    }
}

/// What the right margin says about a step.
fn remark(s: &Step, all: &[Step]) -> String {
    match s.note {
        Note::Probe { .. } => match fate(all, s.n) {
            Fate::Answered => String::new(),
            Fate::Reset => "answered by RST".to_string(),
            Fate::Unanswered => "unanswered".to_string(),
        },
        Note::ProbeAnswered { rtt, .. } => format!("alive ({})", Secs(rtt)),
        Note::PeerReset { .. } => "peer lost the connection".to_string(),
        Note::GaveUp { count, .. } => format!("gave up after {count} probes: ETIMEDOUT"),
        Note::None if s.injected => "injected by a middlebox, not the peer".to_string(),
        Note::None if s.late => "after the end".to_string(),
        Note::None => String::new(),
    }
}

const INNER: usize = 46;

fn arrow(text: &str, right: bool, lost: bool) -> String {
    let text = format!(" {text} ");
    let tlen = text.chars().count().min(INNER - 4);
    let text: String = text.chars().take(tlen).collect();
    if lost {
        // Stops short of the other side: nothing arrived.
        let body = INNER - 8;
        let left = (body - tlen) / 2;
        let rest = body - tlen - left;
        let line = format!("{}{text}{}✗", "─".repeat(left), "─".repeat(rest));
        return if right {
            format!("{line}{}", " ".repeat(INNER - body - 1))
        } else {
            format!(
                "{}✗{}{text}{}",
                " ".repeat(INNER - body - 1),
                "─".repeat(rest),
                "─".repeat(left)
            )
        };
    }
    let body = INNER - 1;
    let left = (body - tlen) / 2;
    let rest = body - tlen - left;
    if right {
        format!("{}{text}{}▶", "─".repeat(left), "─".repeat(rest))
    } else {
        format!("◀{}{text}{}", "─".repeat(left), "─".repeat(rest))
    }
}

fn gap(prev: Option<Timestamp>, ts: Timestamp) -> String {
    match prev {
        None => "0s".to_string(),
        Some(p) => format!("+{}", Secs(ts.since(p).max(0.0))),
    }
}

/// The sequence diagram of one flow, in the terminal.
pub fn diagram(f: &FlowSummary, fs: &FlowSteps) -> String {
    let (head, tail) = fs.ordered();
    let all: Vec<Step> = head.iter().chain(tail.iter()).copied().collect();
    let mut o = String::new();
    let left = format!("client {}", f.client);
    let right = format!("server {}", f.server);
    let _ = writeln!(o, "flow {} sequence diagram", f.id);
    let _ = writeln!(
        o,
        "{:>9}  {left:<w$}{right}",
        "",
        w = (INNER + 2).saturating_sub(0).max(left.chars().count() + 2)
    );
    let _ = writeln!(o, "{:>9}  │{}│", "", " ".repeat(INNER));
    let mut prev: Option<Timestamp> = None;
    let emit = |o: &mut String, s: &Step, prev: &mut Option<Timestamp>| {
        let lost = s.kind == Kind::Keepalive && fate(&all, s.n) == Fate::Unanswered;
        let a = arrow(&label(s), s.from == Side::Client, lost);
        let r = remark(s, &all);
        let line = format!("{:>9}  │{a}│  {r}", gap(*prev, s.ts));
        let _ = writeln!(o, "{}", line.trim_end());
        *prev = Some(s.ts);
    };
    for s in &head {
        emit(&mut o, s, &mut prev);
    }
    if fs.elided > 0 {
        let _ = writeln!(
            o,
            "{:>9}  │{:^w$}│",
            "",
            format!("⋮ {} more segments ⋮", fs.elided),
            w = INNER
        );
    }
    for s in &tail {
        emit(&mut o, s, &mut prev);
    }
    o.push('\n');
    o
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One SVG document with the sequence diagram of every flow.
pub fn svg(flows: &[(FlowSummary, FlowSteps)]) -> String {
    svg_of(flows.iter().map(|(f, fs)| (f, fs)))
}

/// The same, from references (one flow's diagram for the HTML report).
pub fn svg_of<'a>(flows: impl IntoIterator<Item = (&'a FlowSummary, &'a FlowSteps)>) -> String {
    let mut body = String::new();
    let mut y = 30.0;
    let mut width = 900.0f64;
    for (f, fs) in flows {
        let (next, wide) = svg_flow(&mut body, f, fs, y);
        y = next;
        width = width.max(wide);
    }
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="monospace" font-size="13">
<title>kacap sequence diagrams</title>
<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="context-stroke"/></marker></defs>
<style>
line {{ stroke: #444; stroke-width: 1.5; }}
line.life {{ stroke: #999; stroke-dasharray: 4 3; }}
.injected line {{ stroke-dasharray: 6 3; }}
.middlebox {{ fill: #c02020; }}
.probe line {{ stroke: #d08000; stroke-width: 2; }}
.ka-ack line {{ stroke: #2a8a2a; }}
.rst line {{ stroke: #c02020; stroke-width: 2; }}
.ctl line {{ stroke: #2060c0; }}
.title {{ font-weight: bold; font-size: 15px; }}
.gap, .remark {{ fill: #555; }}
.lost {{ fill: #c02020; font-weight: bold; }}
</style>
<rect width="100%" height="100%" fill="white"/>
{body}</svg>
"##,
        h = y as u32 + 10,
        w = width.ceil() as u32
    )
}

/// Width of a monospace character at the diagrams' font size (13 px).
const SVG_CHAR: f64 = 8.0;

/// Geometry of the SVG diagrams: row height, the two lifelines' x.
const SVG_ROW: f64 = 30.0;
const SVG_X_C: f64 = 190.0;
const SVG_X_S: f64 = 610.0;

/// One flow's diagram at height `y`; returns where the next one starts and
/// how wide its remarks reach.
fn svg_flow(body: &mut String, f: &FlowSummary, fs: &FlowSteps, mut y: f64) -> (f64, f64) {
    let (head, tail) = fs.ordered();
    let all: Vec<Step> = head.iter().chain(tail.iter()).copied().collect();
    let _ = writeln!(
        body,
        r#"<text class="title" x="20" y="{y}">flow {} — {}</text>"#,
        f.id,
        xml_escape(f.verdict.as_str())
    );
    y += 26.0;
    let _ = writeln!(
        body,
        r#"<text class="host" x="{SVG_X_C}" y="{y}" text-anchor="middle">client {}</text><text class="host" x="{SVG_X_S}" y="{y}" text-anchor="middle">server {}</text>"#,
        xml_escape(&f.client.to_string()),
        xml_escape(&f.server.to_string())
    );
    let top = y + 8.0;
    let bottom = top + SVG_ROW * (all.len() as f64 + 1.0);
    let _ = writeln!(
        body,
        r#"<line class="life" x1="{SVG_X_C}" y1="{top}" x2="{SVG_X_C}" y2="{bottom}"/><line class="life" x1="{SVG_X_S}" y1="{top}" x2="{SVG_X_S}" y2="{bottom}"/>"#
    );
    let mut prev = None;
    let mut ry = top + SVG_ROW;
    let mut width: f64 = 0.0;
    for s in &all {
        let chars = svg_packet(body, s, &all, prev, ry);
        width = width.max(SVG_X_S + 16.0 + SVG_CHAR * chars as f64 + 20.0);
        prev = Some(s.ts);
        ry += SVG_ROW;
    }
    (bottom + 40.0, width)
}

/// One packet's arrow, label and remark at height `ry`; returns the
/// remark's length in characters. A RST a middlebox injected starts between
/// the lifelines, where the middlebox is, not at the peer it pretends to be.
fn svg_packet(
    body: &mut String,
    s: &Step,
    all: &[Step],
    prev: Option<Timestamp>,
    ry: f64,
) -> usize {
    let lost = s.kind == Kind::Keepalive && fate(all, s.n) == Fate::Unanswered;
    let (x1, x2) = if s.from == Side::Client {
        (SVG_X_C, SVG_X_S)
    } else {
        (SVG_X_S, SVG_X_C)
    };
    let middle = (SVG_X_C + SVG_X_S) / 2.0;
    let x1 = if s.injected {
        middle + (x2 - middle) * -0.2
    } else {
        x1
    };
    let x2 = if lost { x1 + (x2 - x1) * 0.7 } else { x2 };
    let class = match s.kind {
        Kind::Keepalive => "probe",
        Kind::KeepaliveAck => "ka-ack",
        Kind::Rst if s.injected => "rst injected",
        Kind::Rst => "rst",
        Kind::Syn | Kind::SynAck | Kind::HandshakeAck | Kind::Fin => "ctl",
        _ => "seg",
    };
    let origin = if s.injected {
        format!(
            r#"<text class="middlebox" x="{x1}" y="{}" text-anchor="middle">⚡ middlebox</text>"#,
            ry + 14.0
        )
    } else {
        String::new()
    };
    let remark_text = remark(s, all);
    let marker = if lost {
        ""
    } else {
        r#" marker-end="url(#head)""#
    };
    let _ = writeln!(
        body,
        r#"<g class="packet {class}" data-n="{}"><text class="gap" x="20" y="{ry}">{}</text><line x1="{x1}" y1="{ry}" x2="{x2}" y2="{ry}"{marker}/>{origin}<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>{}<text class="remark" x="{}" y="{ry}">{}</text></g>"#,
        s.n,
        xml_escape(&gap(prev, s.ts)),
        (SVG_X_C + SVG_X_S) / 2.0,
        ry - 5.0,
        xml_escape(&label(s)),
        if lost {
            format!(
                r#"<text class="lost" x="{x2}" y="{}" text-anchor="middle">✗</text>"#,
                ry + 5.0
            )
        } else {
            String::new()
        },
        SVG_X_S + 16.0,
        xml_escape(&remark_text),
    );
    remark_text.chars().count()
}
