//! The keepalive settings the connections showed, against the defaults of
//! the prober's stack, this host's sysctls and, with `--sockets`, the
//! sockets' own configuration.

use super::{Keepalive, LINUX_DEFAULTS, SystemDefaults, WINDOWS_DEFAULTS};
use crate::analyses::describe::FindingsOf;
use crate::analyses::event::{Step, Summary};
use crate::core::tcp::Kind;
use crate::core::text::Secs;
use crate::core::time::Timestamp;
use crate::host::sockets::Source;
use std::collections::BTreeMap;

/// `2.00s`, or `-`.
pub(super) fn opt_secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| Secs(s).to_string())
}

/// `9`, or `-`.
pub(super) fn opt_count(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |c| c.to_string())
}

/// The inferred TCP_KEEPCNT as the table shows it: "≥2" for a lower bound.
pub(super) fn shown_count(k: &super::KeepaliveSummary) -> String {
    if k.count_at_least {
        format!("≥{}", opt_count(k.count))
    } else {
        opt_count(k.count)
    }
}

/// The keepalive settings the connections showed, per server and prober,
/// next to the defaults: Linux's (or Windows' for one-byte probes) and,
/// live, this host's sysctls.
pub(super) fn settings_notes<F: FindingsOf<Keepalive>, M>(
    flows: &[(&Summary<F>, &[Step<M>])],
    host: Option<SystemDefaults>,
) -> Vec<String> {
    /// Server, prober, Windows-style probes.
    type Key = (std::net::SocketAddr, &'static str, bool);
    let mut groups: BTreeMap<Key, Seen> = BTreeMap::new();
    for (f, steps) in flows {
        let k = f.findings.found();
        let Some(prober) = k.prober else { continue };
        if k.idle.is_none() && k.interval.is_none() && k.count.is_none() {
            continue;
        }
        let windows = steps
            .iter()
            .any(|s| s.kind == Kind::Keepalive && s.len == 1);
        let d = if windows {
            WINDOWS_DEFAULTS
        } else {
            LINUX_DEFAULTS
        };
        let e = groups
            .entry((f.server, prober.as_str(), windows))
            .or_default();
        e.n += 1;
        e.idle.add(k.idle);
        e.interval.add(k.interval);
        e.count.add(k.exact_count().map(f64::from));
        let or = |a: &mut [bool; 3], b: [bool; 3]| {
            for (x, y) in a.iter_mut().zip(b) {
                *x |= y;
            }
        };
        or(
            &mut e.differ,
            d.differing(k.idle, k.interval, k.exact_count()),
        );
        if let Some(h) = host {
            or(
                &mut e.differ_host,
                h.differing(k.idle, k.interval, k.exact_count()),
            );
        }
    }
    const MAX_GROUPS: usize = 20;
    let mut notes = Vec::new();
    for ((server, prober, windows), e) in groups.iter().take(MAX_GROUPS) {
        let mut seen = Vec::new();
        if let Some(i) = e.idle.show(|v| Secs(v).to_string()) {
            seen.push(format!("after {i} idle"));
        }
        if let Some(i) = e.interval.show(|v| Secs(v).to_string()) {
            seen.push(format!("every {i}"));
        }
        if let Some(c) = e.count.show(|v| format!("{v:.0}")) {
            seen.push(format!("gives up after {c} unanswered"));
        }
        let (stack, d) = if *windows {
            ("Windows'", WINDOWS_DEFAULTS)
        } else {
            ("Linux's", LINUX_DEFAULTS)
        };
        let who = match *prober {
            "both" => "both sides probe".to_string(),
            side => format!("the {side} probes"),
        };
        let mut text = format!(
            "{} connection{} to {server}: {who} {} — {}",
            e.n,
            if e.n == 1 { "" } else { "s" },
            seen.join(", "),
            compare(stack, "defaults", d, e.differ)
        );
        if let Some(h) = host {
            text.push_str("; ");
            text.push_str(&compare(
                "this host's",
                "tcp_keepalive_* sysctls",
                h,
                e.differ_host,
            ));
        }
        notes.push(text);
    }
    if groups.len() > MAX_GROUPS {
        notes.push(format!(
            "… and {} more server and prober pairs with keepalive settings (kacap --json has each connection's)",
            groups.len() - MAX_GROUPS
        ));
    }
    notes
}

/// The keepalive settings a server's connections showed.
#[derive(Default)]
struct Seen {
    n: u32,
    idle: Range,
    interval: Range,
    count: Range,
    /// Idle, interval, count: some connection's differ from the stack's
    /// defaults; from the host's sysctls.
    differ: [bool; 3],
    differ_host: [bool; 3],
}

/// The smallest and largest of some values.
#[derive(Default)]
struct Range(Option<(f64, f64)>);

impl Range {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.0 = Some(self.0.map_or((v, v), |(a, b)| (a.min(v), b.max(v))));
        }
    }

    /// "2.00s", or "2.00s–25.00s" when they differ.
    fn show(&self, f: impl Fn(f64) -> String) -> Option<String> {
        let (a, b) = self.0?;
        let (a, b) = (f(a), f(b));
        Some(if a == b { a } else { format!("{a}–{b}") })
    }
}

/// "Linux's defaults are 7200 s / 75 s / 9: idle and interval differ".
fn compare(whose: &str, what: &str, d: SystemDefaults, differ: [bool; 3]) -> String {
    let differ: Vec<&str> = differ
        .iter()
        .zip(["idle", "interval", "count"])
        .filter_map(|(&off, name)| off.then_some(name))
        .collect();
    let head = format!(
        "{whose} {what} are {} s / {} s / {}",
        d.time, d.intvl, d.probes
    );
    let differ = match differ.as_slice() {
        [] => String::new(),
        [one] => format!("{one} differs"),
        [a, b] => format!("{a} and {b} differ"),
        _ => "idle, interval and count differ".to_string(),
    };
    if differ.is_empty() {
        format!("{head}: what was seen matches them")
    } else {
        format!("{head}: {differ} (set by the application's setsockopt, or the host's settings)")
    }
}

/// After a live capture: this host's keepalive defaults next to what the
/// flows did, and when each open flow's next probe is due.
pub(super) fn live_notes<F: FindingsOf<Keepalive>>(
    out: &mut Vec<String>,
    flows: &[Summary<F>],
    defaults: Option<SystemDefaults>,
    now: Timestamp,
) {
    if let Some(d) = defaults {
        out.push(format!(
            "system defaults (/proc/sys/net/ipv4): tcp_keepalive_time {}s, tcp_keepalive_intvl {}s, tcp_keepalive_probes {}",
            d.time, d.intvl, d.probes
        ));
        for f in flows {
            let k = f.findings.found();
            let [idle, interval, count] = d.differing(k.idle, k.interval, k.exact_count());
            let mut parts = Vec::new();
            if idle {
                parts.push(format!("idle {}", opt_secs(k.idle)));
            }
            if interval {
                parts.push(format!("interval {}", opt_secs(k.interval)));
            }
            if count {
                parts.push(format!("count {}", opt_count(k.count)));
            }
            if parts.is_empty() {
                continue;
            }
            out.push(format!(
                "flow {}: {} differ{} from them: its {} sets TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT itself",
                f.id,
                parts.join(", "),
                if parts.len() == 1 { "s" } else { "" },
                k.prober.map_or("socket", |p| p.as_str()),
            ));
        }
    }
    for f in flows {
        for check in checks(f) {
            out.push(format!("flow {}: {check}", f.id));
        }
    }
    for f in flows {
        if let Some(due) = f.findings.found().next_probe {
            let wait = due.since(now);
            if wait >= 0.0 {
                out.push(format!(
                    "flow {} still open: next probe expected in ~{}",
                    f.id,
                    Secs(wait)
                ));
            } else {
                out.push(format!(
                    "flow {} still open: a probe was due {} ago and none was seen",
                    f.id,
                    Secs(-wait)
                ));
            }
        }
    }
}

/// What the packets showed, checked against the configuration: one line
/// per finding, for the table's notes and `--explain`.
pub(super) fn checks<F: FindingsOf<Keepalive>>(f: &Summary<F>) -> Vec<String> {
    let Some(j) = f.sockets.as_deref() else {
        return Vec::new();
    };
    let k = f.findings.found();
    let mut lines = Vec::new();
    for (side, s) in [
        (crate::core::tcp::Side::Client, j.client.as_ref()),
        (crate::core::tcp::Side::Server, j.server.as_ref()),
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
