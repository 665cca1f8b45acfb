//! What the keepalive analysis says about a segment (the timeline's words,
//! its colour, the JSON members) and about a connection (the table's
//! columns, the JSON, HTML and Zeek members, the `flow N ended` words, the
//! metrics); `explain` says the rest.

use super::settings::{self, opt_count, opt_secs};
use super::{Keepalive, Note, SystemDefaults};
use super::{diagram, explain};
use crate::analyses::describe::{Column, Describe, Field, FindingsOf, MarkOf, NoteOf, metric_head};
use crate::analyses::event::{Event, Shared, Step, Summary};
use crate::analyses::verdict::Verdict;
use crate::core::emit::Emit;
use crate::core::tcp::Kind;
use crate::core::text::{Num, Secs, Str, plural};
use crate::core::time::Timestamp;
use crate::host::sysctls::Sysctls;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Upper bounds (seconds) of the dead-peer detection histogram: from a
/// loopback lab's seconds to Linux's default 2 h 11 min.
const DETECT_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 10800.0,
];

/// What `--metrics` keeps of keepalive over the run.
#[derive(Debug, Default)]
pub struct Tally {
    /// [prober client/server][answered, unanswered, rst]
    probes: [[u64; 3]; 2],
    detect_count: u64,
    detect_sum: f64,
    detect_buckets: [u64; DETECT_BUCKETS.len()],
}

/// The latest inferred settings of a server's connections.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerSettings {
    idle: Option<f64>,
    interval: Option<f64>,
}

impl Describe for Keepalive {
    type Mark = Note;
    type Tally = Tally;
    type ServerTally = ServerSettings;
    type Evidence = ();

    const CORE: bool = true;
    const COLUMNS: &'static [Column] = &[
        Column {
            header: "prober",
            right: false,
            key: "prober",
        },
        Column {
            header: "probes sent/ans/unans/rst",
            right: true,
            key: "probes",
        },
        Column {
            header: "idle",
            right: true,
            key: "idle",
        },
        Column {
            header: "intvl",
            right: true,
            key: "interval",
        },
        Column {
            header: "count",
            right: true,
            key: "count",
        },
    ];
    const COMPACT: &'static str = "prober s/a/u/r\nidle/intvl ×count";
    const ZEEK: &'static [(&'static str, &'static str)] = &[
        ("prober", "string"),
        ("probes", "count"),
        ("probes_answered", "count"),
        ("probes_unanswered", "count"),
        ("probes_rst", "count"),
        ("ka_idle", "interval"),
        ("ka_interval", "interval"),
        ("ka_count", "count"),
    ];

    fn mark(note: &Note) -> Note {
        *note
    }

    /// A probe, its answer, the peer's RST and the prober's, in words.
    fn lead<N: NoteOf<Self>>(ev: &Event<N>, out: &mut Vec<u8>) -> io::Result<bool> {
        let who = ev.from.name();
        let peer = ev.from.other().name();
        let seg = ev.seg;
        match (ev.kind, *ev.notes.note()) {
            (
                Kind::Keepalive,
                Note::Probe {
                    number: 1,
                    ordinal,
                    idle,
                    missed,
                    ..
                },
            ) => {
                match idle {
                    Some(idle) => write!(
                        out,
                        "keepalive probe #{ordinal} from {who} after {} idle{}",
                        Secs(idle),
                        if (idle - 7200.0).abs() < 1.0 {
                            " (the Linux, Windows and macOS default)"
                        } else {
                            ""
                        }
                    )?,
                    None => write!(
                        out,
                        "keepalive probe #{ordinal} from {who} (idle since before the capture)"
                    )?,
                }
                if seg.len == 1 {
                    out.write_all(b" (1 garbage byte)")?;
                }
                if missed {
                    write!(
                        out,
                        "; the answer to #{} is not in the capture, but this probe's TS ecr shows the {who} got it (the capture missed it)",
                        ordinal - 1
                    )?;
                }
                Ok(())
            }
            (
                Kind::Keepalive,
                Note::Probe {
                    ordinal,
                    since_prev,
                    unheard: true,
                    ..
                },
            ) => write!(
                out,
                "keepalive probe #{ordinal} from {who}, {} after #{}, although #{} was answered: its TS ecr did not move, the answer never reached the {who}",
                Secs(since_prev.unwrap_or(0.0)),
                ordinal - 1,
                ordinal - 1
            ),
            (
                Kind::Keepalive,
                Note::Probe {
                    ordinal,
                    since_prev,
                    ..
                },
            ) => write!(
                out,
                "keepalive probe #{ordinal} from {who}: #{} went unanswered, retried {} later{}",
                ordinal - 1,
                Secs(since_prev.unwrap_or(0.0)),
                if since_prev.is_some_and(|g| (g - 75.0).abs() < 0.5) {
                    " (Linux's default interval)"
                } else {
                    ""
                }
            ),
            (Kind::Keepalive, _) => return Ok(false),
            (_, Note::ProbeAnswered { ordinal, rtt, .. }) => {
                if ev.kind == Kind::KeepaliveAck {
                    write!(
                        out,
                        "keepalive ACK to probe #{ordinal} in {}: {who} alive",
                        Secs(rtt)
                    )
                } else {
                    write!(
                        out,
                        "{} from {who}, answers keepalive probe #{ordinal}: {who} alive",
                        ev.kind.as_str()
                    )
                }
            }
            (_, Note::PeerReset { ordinal, .. }) => write!(
                out,
                "RST in reply to keepalive probe #{ordinal}: {who} no longer knows this connection (rebooted, or its socket is gone)"
            ),
            (
                _,
                Note::GaveUp {
                    count,
                    at_least,
                    ordinal,
                    after,
                    unheard: true,
                },
            ) => write!(
                out,
                "RST from {who} {} after probe #{ordinal}: {}{count} probes in a row whose answers never reached the {who}, {peer} declared dead (ETIMEDOUT) although it answered",
                Secs(after),
                if at_least { "at least " } else { "" }
            ),
            (
                _,
                Note::GaveUp {
                    count,
                    at_least,
                    ordinal,
                    after,
                    ..
                },
            ) => write!(
                out,
                "RST from {who} {} after probe #{ordinal}: {}{count} unanswered probes in a row{}, {peer} declared dead (ETIMEDOUT)",
                Secs(after),
                if at_least { "at least " } else { "" },
                if at_least {
                    " (the first may have gone before the capture began)"
                } else {
                    ""
                }
            ),
            _ => return Ok(false),
        }?;
        Ok(true)
    }

    fn color<N: NoteOf<Self>>(ev: &Event<N>) -> Option<&'static str> {
        match (ev.kind, *ev.notes.note()) {
            (_, Note::GaveUp { .. }) | (_, Note::PeerReset { .. }) => Some("1;31"),
            (Kind::Rst | Kind::Keepalive, _) => None,
            (_, Note::ProbeAnswered { .. }) => Some("1;32"),
            _ => None,
        }
    }

    /// Live: when the prober's next probe is due, after a probe or its answer.
    fn expect<N: NoteOf<Self>>(ev: &Event<N>, out: &mut Vec<u8>) -> io::Result<()> {
        let (what, due) = match *ev.notes.note() {
            Note::Probe { next_due, .. } => ("next probe (or the RST) expected in", next_due),
            Note::ProbeAnswered { next_due, .. } => ("next probe expected in", next_due),
            _ => return Ok(()),
        };
        if let Some(due) = due {
            write!(out, "; {what} ~{}", Secs(due.since(ev.ts).max(0.0)))?;
        }
        Ok(())
    }

    fn revised(note: &Note) -> Option<String> {
        match note {
            Note::Probe { ordinal, .. } => Some(format!("#{ordinal}")),
            _ => None,
        }
    }

    fn json_packet<N: NoteOf<Self>>(ev: &Event<N>, l: &mut Vec<u8>) {
        match *ev.notes.note() {
            Note::Probe { number, idle, .. } => {
                l.s(",\"probe\":").n(number).s(",\"idle\":").num(idle);
            }
            Note::ProbeAnswered { reply_to, .. } | Note::PeerReset { reply_to, .. } => {
                l.s(",\"reply_to\":").n(reply_to);
            }
            Note::GaveUp { .. } | Note::None => {}
        }
    }

    fn json_revise(note: &Note, l: &mut Vec<u8>) {
        if let Note::Probe { number, idle, .. } = *note {
            l.s(",\"probe\":").n(number).s(",\"idle\":").num(idle);
        }
    }

    fn label<M: MarkOf<Self>>(s: &Step<M>) -> Option<String> {
        diagram::label(s)
    }

    fn remark<M: MarkOf<Self>>(s: &Step<M>, all: &[Step<M>]) -> Option<String> {
        diagram::remark(s, all)
    }

    fn lost<M: MarkOf<Self>>(s: &Step<M>, all: &[Step<M>]) -> bool {
        diagram::lost(s, all)
    }

    fn shape<M: MarkOf<Self>>(s: &Step<M>, all: &[Step<M>]) -> Option<&'static str> {
        diagram::shape(s, all)
    }

    fn share(k: &super::KeepaliveSummary, shared: &mut Shared) {
        shared.probes = k.probes;
        shared.keepalive_idle = k.idle;
    }

    fn json_flow<F: FindingsOf<Self>>(f: &Summary<F>, out: &mut Vec<u8>) {
        let k = f.findings.found();
        out.s(",\"prober\":")
            .opt_str(k.prober.map(|p| p.as_str()))
            .s(",\"probes\":")
            .n(k.probes)
            .s(",\"probes_answered\":")
            .n(k.answered)
            .s(",\"probes_unanswered\":")
            .n(k.unanswered)
            .s(",\"probes_rst\":")
            .n(k.rst)
            .s(",\"keepalive\":{\"idle\":")
            .num(k.idle)
            .s(",\"interval\":")
            .num(k.interval)
            .s(",\"count\":");
        match k.count {
            Some(c) => out.n(c),
            None => out.s("null"),
        };
        if k.count_at_least {
            // Inside "keepalive": the count is a lower bound.
            out.s(",\"count_at_least\":true");
        }
        out.s("}");
        if k.missed > 0 {
            // Of `probes_answered`: answers the capture missed.
            out.s(",\"probes_answered_not_captured\":").n(k.missed);
        }
    }

    fn html<F: FindingsOf<Self>>(f: &Summary<F>, o: &mut String) {
        let k = f.findings.found();
        let _ = write!(
            o,
            ",\"prober\":{},\"probes\":[{},{},{},{}],\"idle\":{},\"interval\":{},\"count\":{}",
            Str(Some(k.prober.map_or("-", |p| p.as_str()))),
            k.probes,
            k.answered,
            k.unanswered,
            k.rst,
            Num(k.idle),
            Num(k.interval),
            k.count.map_or("null".into(), |c| c.to_string()),
        );
    }

    fn cells<F: FindingsOf<Self>>(f: &Summary<F>) -> Vec<String> {
        let k = f.findings.found();
        vec![
            k.prober.map_or("-", |p| p.as_str()).to_string(),
            format!("{}/{}/{}/{}", k.probes, k.answered, k.unanswered, k.rst),
            opt_secs(k.idle),
            opt_secs(k.interval),
            settings::shown_count(k),
        ]
    }

    fn compact_cell<F: FindingsOf<Self>>(f: &Summary<F>) -> String {
        let k = f.findings.found();
        let counts = format!("{}/{}/{}/{}", k.probes, k.answered, k.unanswered, k.rst);
        match (k.prober, k.idle, k.interval, k.count) {
            (None, None, None, None) => counts,
            (prober, idle, interval, count) => format!(
                "{} {counts}\n{}/{} ×{}",
                prober.map_or("-", |p| p.as_str()),
                opt_secs(idle),
                opt_secs(interval),
                if k.count_at_least {
                    format!("≥{}", opt_count(count))
                } else {
                    opt_count(count)
                }
            ),
        }
    }

    fn zeek<F: FindingsOf<Self>>(f: &Summary<F>, out: &mut Vec<Field>) {
        let k = f.findings.found();
        let secs = |v: Option<f64>| v.map_or(Field::Unset, Field::Secs);
        out.extend([
            k.prober
                .map_or(Field::Unset, |p| Field::Str(p.as_str().into())),
            Field::Count(u64::from(k.probes)),
            Field::Count(u64::from(k.answered)),
            Field::Count(u64::from(k.unanswered)),
            Field::Count(u64::from(k.rst)),
            secs(k.idle),
            secs(k.interval),
            k.count.map_or(Field::Unset, |c| Field::Count(u64::from(c))),
        ]);
    }

    fn ended<F: FindingsOf<Self>>(f: &Summary<F>) -> Option<String> {
        let k = f.findings.found();
        Some(match f.verdict {
            Verdict::DeadPeer => format!(
                " after {}",
                plural(u64::from(k.unanswered), "unanswered probe")
            ),
            Verdict::PeerReset => ": a keepalive probe was answered by RST".to_string(),
            Verdict::Alive if k.answered == 0 => format!(
                ": {} unanswered, but the peer answered the data that followed",
                if k.probes == 1 {
                    "the probe went".to_string()
                } else {
                    format!("all {} probes went", k.probes)
                }
            ),
            Verdict::Alive => format!(": {} of {} probes answered", k.answered, k.probes),
            Verdict::NoKeepalive => ": no keepalive probe was seen".to_string(),
            Verdict::AcksDropped => {
                ": the peer answered, the answers never reached the prober".to_string()
            }
            Verdict::Undecided => {
                ": a probe, and the capture ended before its answer could come".to_string()
            }
            _ => return None,
        })
    }

    fn account<F: FindingsOf<Self>, M: MarkOf<Self>>(
        f: &Summary<F>,
        steps: &[Step<M>],
        o: &mut String,
    ) -> bool {
        explain::account(f, steps, o);
        true
    }

    fn inferred<F: FindingsOf<Self>>(f: &Summary<F>) -> Option<String> {
        let k = f.findings.found();
        let prober = k.prober?;
        Some(format!(
            "keepalive by {}: idle {}, interval {}, count {}{} (inferred from the probes seen)",
            prober.as_str(),
            opt_secs(k.idle),
            opt_secs(k.interval),
            if k.count_at_least { "at least " } else { "" },
            opt_count(k.count),
        ))
    }

    fn checks<F: FindingsOf<Self>>(f: &Summary<F>) -> Vec<String> {
        settings::checks(f)
    }

    fn live_notes<F: FindingsOf<Self>>(
        flows: &[Summary<F>],
        sysctls: Option<Sysctls>,
        now: Timestamp,
        o: &mut Vec<String>,
    ) {
        settings::live_notes(o, flows, sysctls.map(SystemDefaults::from), now);
    }

    fn overview<F: FindingsOf<Self>, M: MarkOf<Self>>(
        flows: &[(&Summary<F>, &[Step<M>])],
        sysctls: Option<Sysctls>,
        o: &mut Vec<String>,
    ) {
        o.extend(settings::settings_notes(
            flows,
            sysctls.map(SystemDefaults::from),
        ));
    }

    fn tally<F: FindingsOf<Self>>(t: &mut Tally, s: &mut ServerSettings, f: &Summary<F>) {
        let k = f.findings.found();
        if let Some(p) = k.prober {
            let side = p.side().idx();
            t.probes[side][0] += u64::from(k.answered);
            t.probes[side][1] += u64::from(k.unanswered);
            t.probes[side][2] += u64::from(k.rst);
        }
        if f.verdict == Verdict::DeadPeer
            && let (Some(idle), Some(interval), Some(count)) = (k.idle, k.interval, k.exact_count())
        {
            // From the last sign of life to the kernel's RST.
            let d = idle + interval * f64::from(count);
            t.detect_count += 1;
            t.detect_sum += d;
            for (b, le) in t.detect_buckets.iter_mut().zip(DETECT_BUCKETS) {
                if d <= le {
                    *b += 1;
                }
            }
        }
        if k.idle.is_some() {
            s.idle = k.idle;
        }
        if k.interval.is_some() {
            s.interval = k.interval;
        }
    }

    fn render(t: &Tally, o: &mut String) {
        metric_head(
            o,
            "kacap_keepalive_probes_total",
            "counter",
            "Keepalive probes of reported connections, by probing side and what became of them.",
        );
        for (side, name) in [(0, "client"), (1, "server")] {
            for (r, result) in ["answered", "unanswered", "rst"].iter().enumerate() {
                let _ = writeln!(
                    o,
                    "kacap_keepalive_probes_total{{prober=\"{name}\",result=\"{result}\"}} {}",
                    t.probes[side][r]
                );
            }
        }
        metric_head(
            o,
            "kacap_dead_peer_detection_seconds",
            "histogram",
            "Time from a dead-peer connection's last sign of life to its prober's reset (inferred TCP_KEEPIDLE + TCP_KEEPINTVL x TCP_KEEPCNT).",
        );
        for (le, n) in DETECT_BUCKETS.iter().zip(t.detect_buckets) {
            let _ = writeln!(
                o,
                "kacap_dead_peer_detection_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "kacap_dead_peer_detection_seconds_bucket{{le=\"+Inf\"}} {}\nkacap_dead_peer_detection_seconds_sum {}\nkacap_dead_peer_detection_seconds_count {}",
            t.detect_count, t.detect_sum, t.detect_count
        );
    }

    fn render_servers(servers: &[(&str, &ServerSettings)], o: &mut String) {
        let families: [Family; 2] = [
            (
                "kacap_keepalive_idle_seconds",
                "Latest inferred TCP_KEEPIDLE of a server's connections.",
                |s| s.idle,
            ),
            (
                "kacap_keepalive_interval_seconds",
                "Latest inferred TCP_KEEPINTVL of a server's connections.",
                |s| s.interval,
            ),
        ];
        for (family, help, value) in families {
            metric_head(o, family, "gauge", help);
            for (name, s) in servers {
                if let Some(v) = value(s) {
                    let _ = writeln!(o, "{family}{{server=\"{name}\"}} {v}");
                }
            }
        }
    }
}

/// A per-server metric family: its name, its help, its value.
type Family = (
    &'static str,
    &'static str,
    fn(&ServerSettings) -> Option<f64>,
);

impl From<Sysctls> for SystemDefaults {
    fn from(s: Sysctls) -> SystemDefaults {
        SystemDefaults {
            time: f64::from(s.time),
            intvl: f64::from(s.intvl),
            probes: s.probes,
        }
    }
}
