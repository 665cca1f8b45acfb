//! What the application-keepalive analysis says: the words on a ping, its
//! answer, a GOAWAY or a close; its JSON members, table column and Zeek
//! field; its `--explain` account; its diagram labels; its metric.

use super::explain::explain;
use super::{AppAnalysis, AppEvent, AppSummary, Label, Protocol, h2, ws};
use crate::analyses::describe::{Column, Describe, Field, FindingsOf, MarkOf, NoteOf, metric_head};
use crate::analyses::event::{Event, Shared, Step, Summary};
use crate::analyses::verdict::Verdict;
use crate::core::emit::Emit;
use crate::core::text::{Num, Secs, Str, escape};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

impl Describe for AppAnalysis {
    /// What a frame in the step is, and of which protocol.
    type Mark = Option<(Label, Protocol)>;
    /// Keepalive pings by protocol.
    type Tally = BTreeMap<&'static str, u64>;
    type ServerTally = ();
    type Evidence = ();

    const COLUMNS: &'static [Column] = &[Column {
        header: "app keepalive",
        right: false,
        key: "app",
    }];
    const COMPACT: &'static str = "app";
    const ZEEK: &'static [(&'static str, &'static str)] = &[("app_keepalive", "string")];

    fn mark(note: &Self::Note) -> Self::Mark {
        note.label.map(|l| (l, protocol_of(note.event)))
    }

    fn words<N: NoteOf<Self>>(ev: &Event<N>, out: &mut Vec<u8>) -> io::Result<()> {
        match ev.notes.note().event {
            Some(event) => write_app(out, ev, event),
            None => Ok(()),
        }
    }

    fn telling(note: &Self::Note) -> bool {
        note.label.is_some()
    }

    fn json_packet<N: NoteOf<Self>>(ev: &Event<N>, out: &mut Vec<u8>) {
        if let Some(label) = ev.notes.note().label {
            out.s(",\"app\":\"").s(label.as_str()).s("\"");
        }
    }

    fn json_revise(note: &super::AppNote, out: &mut Vec<u8>) {
        if let Some(label) = note.label {
            out.s(",\"app\":\"").s(label.as_str()).s("\"");
        }
    }

    fn revised(note: &super::AppNote) -> Option<String> {
        note.label.map(|l| l.as_str().to_string())
    }

    fn label<M: MarkOf<Self>>(s: &Step<M>) -> Option<String> {
        s.marks.mark().map(|(l, p)| label_of(l, p, s.len))
    }

    fn shape<M: MarkOf<Self>>(s: &Step<M>, _all: &[Step<M>]) -> Option<&'static str> {
        s.marks.mark().map(|_| "app")
    }

    fn share(own: &Option<AppSummary>, shared: &mut Shared) {
        if let Some(a) = own {
            shared.app_pings = a.pings;
            if matches!(a.protocol, Protocol::WebSocket | Protocol::Http2) {
                shared.upgraded = Some(a.protocol.name());
            }
        }
    }

    fn shown<F: FindingsOf<Self>>(f: &Summary<F>) -> bool {
        f.findings.found().is_some()
    }

    fn json_flow<F: FindingsOf<Self>>(f: &Summary<F>, out: &mut Vec<u8>) {
        let Some(a) = *f.findings.found() else {
            return;
        };
        let _ = write!(
            out,
            ",\"app_keepalive\":{{\"protocol\":\"{}\",\"pings\":{},\"pongs\":{},\"interval\":{},\"unanswered\":{},\"pinger\":{},\"rtt\":{}",
            a.protocol.as_str(),
            a.pings,
            a.pongs,
            Num(a.interval),
            a.unanswered,
            Str(if a.both {
                Some("both")
            } else {
                a.pinger.map(|s| s.name())
            }),
            Num(a.rtt),
        );
        if let Some((req, ans)) = a.exchange {
            let _ = write!(out, ",\"exchange\":[{req},{ans}]");
        }
        if a.protocol == Protocol::WebSocket {
            let _ = write!(
                out,
                ",\"close_code\":{},\"abrupt\":{}",
                a.close_code
                    .map_or_else(|| "null".to_string(), |c| c.to_string()),
                a.abrupt
            );
        }
        out.push(b'}');
        if let Some(g) = a.goaway {
            let _ = write!(
                out,
                ",\"goaway\":{{\"error\":\"{}\",\"debug\":\"{}\",\"last_stream\":{},\"from\":\"{}\"}}",
                h2::error_name(g.error),
                escape(&g.debug.to_string()),
                g.last_stream,
                g.from.name()
            );
        }
    }

    fn cells<F: FindingsOf<Self>>(f: &Summary<F>) -> Vec<String> {
        vec![cell(*f.findings.found())]
    }

    fn compact_cell<F: FindingsOf<Self>>(f: &Summary<F>) -> String {
        cell(*f.findings.found())
    }

    fn zeek<F: FindingsOf<Self>>(f: &Summary<F>, out: &mut Vec<Field>) {
        out.push(
            f.findings
                .found()
                .map_or(Field::Unset, |a| Field::Str(a.protocol.as_str().into())),
        );
    }

    fn ended<F: FindingsOf<Self>>(f: &Summary<F>) -> Option<String> {
        let a = *f.findings.found();
        Some(match f.verdict {
            Verdict::AppKeepalive => match a {
                Some(a) => format!(
                    ": {} pings by the application, {} answered",
                    a.protocol.name(),
                    a.pongs.min(a.pings)
                ),
                None => ": application pings".to_string(),
            },
            Verdict::AppPingTimeout => match a {
                Some(a) => format!(
                    ": the latest {} went unanswered",
                    crate::core::text::plural(
                        u64::from(a.trailing_unanswered),
                        &format!("{} ping", a.protocol.name())
                    )
                ),
                None => ": application pings went unanswered".to_string(),
            },
            Verdict::TooManyPings => {
                ": the server refused the client's HTTP/2 pings (GOAWAY too_many_pings)".to_string()
            }
            _ => return None,
        })
    }

    fn context<F: FindingsOf<Self>, M: MarkOf<Self>>(
        f: &Summary<F>,
        _steps: &[Step<M>],
        o: &mut String,
    ) {
        if let Some(a) = *f.findings.found() {
            o.push_str(&explain(f, a));
        }
    }

    fn tally<F: FindingsOf<Self>>(t: &mut Self::Tally, _server: &mut (), f: &Summary<F>) {
        if let Some(a) = f.findings.found() {
            *t.entry(a.protocol.as_str()).or_default() += u64::from(a.pings);
        }
    }

    fn render(t: &Self::Tally, o: &mut String) {
        metric_head(
            o,
            "kacap_app_keepalive_pings_total",
            "counter",
            "Application keepalive pings of reported connections, by protocol.",
        );
        for p in ["http2", "websocket", "redis", "mysql", "encrypted"] {
            let _ = writeln!(
                o,
                "kacap_app_keepalive_pings_total{{protocol=\"{p}\"}} {}",
                t.get(p).copied().unwrap_or(0)
            );
        }
    }
}

/// A ping and its answer, in the protocol's own words.
fn ping_words(p: Protocol) -> (&'static str, &'static str) {
    match p {
        Protocol::Http2 => ("HTTP/2 PING", "PING ACK"),
        Protocol::WebSocket => ("WebSocket ping", "WebSocket pong"),
        Protocol::Redis => ("Redis PING", "+PONG"),
        Protocol::Mysql => ("MySQL COM_PING", "OK to COM_PING"),
        Protocol::Encrypted => ("encrypted record", "encrypted answer"),
    }
}

fn write_app<N>(out: &mut Vec<u8>, ev: &Event<N>, event: AppEvent) -> io::Result<()> {
    let who = ev.from.name();
    match event {
        AppEvent::Ping {
            protocol,
            ordinal,
            keepalive: true,
        } => write!(
            out,
            "; {} from {who} (application keepalive #{ordinal})",
            ping_words(protocol).0
        ),
        AppEvent::Ping {
            protocol,
            keepalive: false,
            ..
        } => write!(
            out,
            "; {} from {who} just after data from its peer (flow-control/BDP probe, not a keepalive)",
            ping_words(protocol).0
        ),
        AppEvent::Answer { protocol, rtt } => {
            write!(out, "; {}", ping_words(protocol).1)?;
            match rtt {
                Some(r) => write!(out, " in {}", Secs(f64::from(r))),
                None => out.write_all(b" (unsolicited: a one-way heartbeat)"),
            }
        }
        AppEvent::Goaway(g) => {
            write!(
                out,
                "; HTTP/2 GOAWAY {} from {}",
                h2::error_name(g.error),
                g.from.name()
            )?;
            if g.too_many_pings_text {
                out.write_all(b" \"too_many_pings\"")?;
            } else if g.has_debug {
                out.write_all(b" (with debug data: --json or --explain shows it)")?;
            }
            write!(out, " (last stream {})", g.last_stream)?;
            if g.too_many_pings() {
                out.write_all(b": the peer pings more often than this side's policy allows")?;
                if let Some(i) = g.pinged_every {
                    write!(out, " (it pinged every {})", Secs(f64::from(i)))?;
                }
            }
            Ok(())
        }
        AppEvent::Close {
            protocol: Protocol::WebSocket,
            code,
        } => match code {
            Some(c) => write!(
                out,
                "; WebSocket Close {c} ({}) from {who}",
                ws::close_meaning(c)
            ),
            None => write!(out, "; WebSocket Close (no status) from {who}"),
        },
        AppEvent::Close { protocol, .. } => {
            write!(out, "; {} COM_QUIT from {who}", protocol.name())
        }
        AppEvent::Exchange {
            request: true,
            size,
            period,
            repeats,
        } => write!(
            out,
            "; likely application keepalive (encrypted): {size}-byte record from {who}, #{repeats} of an exchange every {}",
            Secs(f64::from(period))
        ),
        AppEvent::Exchange {
            request: false,
            size,
            period,
            repeats,
        } => write!(
            out,
            "; its {size}-byte answer: {repeats} alike every {} — likely an encrypted keepalive",
            Secs(f64::from(period))
        ),
        AppEvent::Recognized(_) => Ok(()),
    }
}

/// The app column: `http2 4 pings/1.00s`, `websocket 6/6 …, close 1006`,
/// `encrypted? 6×39/39 B/1.00s`, `http2 GOAWAY ENHANCE_YOUR_CALM`.
fn cell(a: Option<AppSummary>) -> String {
    let Some(a) = a else {
        return "-".to_string();
    };
    let every = a
        .interval
        .map(|i| format!(" every {}", Secs(i)))
        .unwrap_or_default();
    let mut cell = match a.exchange {
        Some((req, ans)) => format!("encrypted? {}×{req}/{ans} B{every}", a.pings),
        None => format!(
            "{} {}/{} pings{every}",
            a.protocol.as_str(),
            a.pongs.min(a.pings),
            a.pings
        ),
    };
    if let Some(g) = a.goaway {
        cell.push_str(", GOAWAY ");
        cell.push_str(crate::analyses::app::h2::error_name(g.error));
    }
    if a.abrupt {
        cell.push_str(", no close frame (1006)");
    } else if let Some(code) = a.close_code {
        cell.push_str(&format!(", close {code}"));
    }
    cell
}

fn protocol_of(e: Option<AppEvent>) -> Protocol {
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
fn label_of(l: Label, p: Protocol, len: u32) -> String {
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
