//! What the HTTP analysis says: the words on a request, a response and
//! the keep-alive race, its JSON member and table column, its `--explain`
//! account, and across connections the keep-alive timeout a server's
//! behaviour bounds.

use super::{HttpAnalysis, HttpNote, HttpSummary, Stale};
use crate::analyses::describe::{Column, Describe, FindingsOf, MarkOf, NoteOf};
use crate::analyses::event::{Close, Event, Shared, Step, Summary, time_wait};
use crate::analyses::verdict::Verdict;
use crate::core::tcp::Side;
use crate::core::text::{Num, Secs, Str};
use crate::host::sysctls::Sysctls;
use std::fmt::Write as _;
use std::io::{self, Write};

impl Describe for HttpAnalysis {
    type Mark = ();
    type Tally = ();
    type ServerTally = ();
    type Evidence = ();

    const COLUMNS: &'static [Column] = &[Column {
        header: "http",
        right: false,
        key: "http",
    }];
    const COMPACT: &'static str = "http";

    fn mark(_: &Self::Note) {}

    fn words<N: NoteOf<Self>>(ev: &Event<N>, out: &mut Vec<u8>) -> io::Result<()> {
        let note = ev.notes.note();
        if let Some(m) = note.message {
            write_http(out, &m)?;
        }
        if let Some(stale) = note.stale {
            write_stale(out, stale)?;
        }
        Ok(())
    }

    fn telling(note: &Self::Note) -> bool {
        note.message.is_some() || note.stale.is_some()
    }

    fn share(own: &Option<HttpSummary>, shared: &mut Shared) {
        shared.http = own.is_some();
    }

    fn shown<F: FindingsOf<Self>>(f: &Summary<F>) -> bool {
        f.findings.found().is_some()
    }

    fn json_flow<F: FindingsOf<Self>>(f: &Summary<F>, out: &mut Vec<u8>) {
        if let Some(h) = f.findings.found() {
            let _ = write!(
                out,
                ",\"http\":{{\"requests\":{},\"responses\":{},\"keep_alive\":{},\"version\":{},\"server_idle_close\":{},\"client_idle_close\":{},\"advertised_timeout\":{},\"stale_request\":{}}}",
                h.requests,
                h.responses,
                h.keep_alive,
                Str(h.version),
                Num(h.server_idle_close),
                Num(h.client_idle_close),
                Num(h.advertised_timeout),
                h.stale_request
            );
        }
    }

    fn cells<F: FindingsOf<Self>>(f: &Summary<F>) -> Vec<String> {
        vec![cell(*f.findings.found())]
    }

    fn compact_cell<F: FindingsOf<Self>>(f: &Summary<F>) -> String {
        cell(*f.findings.found())
    }

    fn ended<F: FindingsOf<Self>>(f: &Summary<F>) -> Option<String> {
        (f.verdict == Verdict::StaleConnection)
            .then(|| ": a request sent after the server had closed, answered by RST".to_string())
    }

    fn context<F: FindingsOf<Self>, M: MarkOf<Self>>(
        f: &Summary<F>,
        steps: &[Step<M>],
        o: &mut String,
    ) {
        if let Some(h) = *f.findings.found() {
            let _ = writeln!(o, "  {}", account(f, h, steps));
            if let Some(race) = race(&h) {
                let _ = writeln!(o, "  {race}");
            }
        }
    }

    fn afterword<F: FindingsOf<Self>>(flows: &[&Summary<F>], o: &mut Vec<String>) {
        o.extend(server_timeouts(flows));
    }

    fn footnote<F: FindingsOf<Self>>(flows: &[&Summary<F>]) -> Option<String> {
        footnote(flows)
    }

    fn overview<F: FindingsOf<Self>, M: MarkOf<Self>>(
        flows: &[(&Summary<F>, &[Step<M>])],
        _sysctls: Option<Sysctls>,
        o: &mut Vec<String>,
    ) {
        let flows: Vec<&Summary<F>> = flows.iter().map(|(f, _)| *f).collect();
        o.extend(server_timeouts(&flows));
    }
}

fn write_stale(out: &mut Vec<u8>, stale: Stale) -> io::Result<()> {
    let closed = |i: Option<f32>| match i {
        Some(i) => format!(" {} after its last response", Secs(f64::from(i))),
        None => String::new(),
    };
    match stale {
        Stale::Request { idle_close } => write!(
            out,
            "; sent after the server closed{} (its FIN above): a stale pooled connection if the server answers RST, a half-close if it acknowledges",
            closed(idle_close)
        ),
        Stale::Crossed { idle_close } => write!(
            out,
            "; the server closes the idle connection{} while the client's next request is already on its way (they cross)",
            closed(idle_close)
        ),
        Stale::HalfClose => out.write_all(
            b"; the server acknowledges the data sent after its FIN: it closed only its sending side and still reads (a half-close, not a stale connection)",
        ),
        Stale::Reset { .. } => out.write_all(
            b"; the server's kernel rejects the request sent after its close: the client sees ECONNRESET (keep-alive race)",
        ),
    }
}

fn write_http(out: &mut Vec<u8>, note: &HttpNote) -> io::Result<()> {
    match *note {
        HttpNote::Request {
            number,
            method,
            target,
            reused,
            gap,
            persistent,
        } => {
            write!(
                out,
                "; HTTP {method} {target} — request {number} on this connection"
            )?;
            match (reused, gap) {
                (true, Some(g)) => write!(
                    out,
                    " (reused: keep-alive, {} after the previous response)",
                    Secs(g)
                ),
                (true, None) => out.write_all(b" (reused: keep-alive)"),
                (false, _) if persistent => out.write_all(b" (asks for keep-alive)"),
                (false, _) => out.write_all(b" (asks the server to close after it)"),
            }
        }
        HttpNote::Response {
            number,
            status,
            persistent,
        } => write!(
            out,
            "; HTTP {status} — response {number}{}",
            if persistent {
                ""
            } else {
                " (Connection: close)"
            }
        ),
    }
}

/// The HTTP column: `3 req, keep-alive, 1.1`.
fn cell(h: Option<HttpSummary>) -> String {
    match h {
        Some(h) => format!(
            "{} req/{} resp, {}{}",
            h.requests,
            h.responses,
            if h.keep_alive { "keep-alive" } else { "close" },
            h.version.map(|v| format!(", {v}")).unwrap_or_default()
        ),
        None => "-".to_string(),
    }
}

/// HTTP keep-alive in words, distinct from TCP keepalive.
fn account<F, M>(f: &Summary<F>, h: HttpSummary, steps: &[Step<M>]) -> String {
    let version = h.version.unwrap_or("1.x");
    let mut s = format!(
        "HTTP/{version}: {} request{} and {} response{} on this connection. ",
        h.requests,
        if h.requests == 1 { "" } else { "s" },
        h.responses,
        if h.responses == 1 { "" } else { "s" }
    );
    let upgraded = f.shared.upgraded;
    if let Some(to) = upgraded
        && h.requests == 1
    {
        let _ = write!(
            s,
            "The request upgraded the connection to {to} (101 Switching Protocols); what follows is not HTTP/1.x. "
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

/// The footnote on HTTP keep-alive, for flows on HTTP ports.
fn footnote<F>(flows: &[&Summary<F>]) -> Option<String> {
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

/// The HTTP keep-alive race, or the order of idle closes, in words.
fn race(h: &HttpSummary) -> Option<String> {
    let advertised = h
        .advertised_timeout
        .map(|t| format!(", advertised as `Keep-Alive: timeout={t}`"))
        .unwrap_or_default();
    if h.stale_request {
        let closed = h
            .server_idle_close
            .map(|i| format!(" {} after its last response", Secs(i)))
            .unwrap_or_default();
        return Some(format!(
            "The keep-alive race: the server closed this idle connection{closed} (its keep-alive timeout{advertised}), \
             but the client's pool still held it and sent the next request after the server's FIN; the server's \
             kernel answered RST, which the client sees as ECONNRESET (\"socket hang up\"). Order the timeouts: \
             the client pool's idle timeout < the server's keep-alive timeout{} < any load balancer's idle \
             timeout — or retry idempotent requests that fail on a reused connection.",
            h.server_idle_close
                .map(|i| format!(" (here about {})", Secs(i)))
                .unwrap_or_default()
        ));
    }
    if let Some(i) = h.client_idle_close {
        let advertised = h
            .advertised_timeout
            .map(|t| format!(" (advertised as `Keep-Alive: timeout={t}`)"))
            .unwrap_or_default();
        return Some(format!(
            "The client closed the idle connection {} after the last response, before the server's keep-alive \
             timeout{advertised}: the safe order (the client holds TIME_WAIT).",
            Secs(i)
        ));
    }
    h.server_idle_close.map(|i| {
        format!(
            "The server closed the idle connection {} after its last response (its keep-alive timeout{advertised}); \
             a client pool that keeps idle connections longer than that races it.",
            Secs(i)
        )
    })
}

/// Across connections to one server: the keep-alive timeout the server's
/// behaviour bounds. A connection reused after an idle gap, or closed idle
/// by its client, shows the server keeps idle connections at least that
/// long; the server's own idle closes show how long at most. Said only when
/// two or more connections to the server support it.
fn server_timeouts<F: FindingsOf<HttpAnalysis>>(flows: &[&Summary<F>]) -> Vec<String> {
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Bounds {
        flows: u32,
        at_least: Option<f64>,
        closes: Vec<f64>,
        stale: u32,
        advertised: Option<f64>,
    }
    let mut by_server: BTreeMap<std::net::SocketAddr, Bounds> = BTreeMap::new();
    for f in flows {
        let Some(h) = *f.findings.found() else {
            continue;
        };
        if !h.keep_alive {
            continue;
        }
        let b = by_server.entry(f.server).or_default();
        b.flows += 1;
        for kept in [h.max_gap, h.client_idle_close].into_iter().flatten() {
            b.at_least = Some(b.at_least.map_or(kept, |m: f64| m.max(kept)));
        }
        b.closes.extend(h.server_idle_close);
        b.stale += u32::from(h.stale_request);
        b.advertised = b.advertised.or(h.advertised_timeout);
    }
    let mut out = Vec::new();
    for (server, b) in by_server {
        if b.flows < 2 || (b.closes.is_empty() && b.at_least.is_none()) {
            continue;
        }
        let mut s = format!("Server {server}, from {} kept-alive connections: ", b.flows);
        let lo = b.at_least.map(Secs);
        let closes = b.closes.len();
        match (b.closes.iter().copied().reduce(f64::min), lo) {
            (Some(first), Some(lo)) => {
                let _ = write!(
                    s,
                    "it keeps an idle connection at least {lo} and closes it after about {} ({} idle close{})",
                    Secs(first),
                    closes,
                    if closes == 1 { "" } else { "s" }
                );
            }
            (Some(first), None) => {
                let _ = write!(
                    s,
                    "it closes idle connections after about {} ({} idle close{})",
                    Secs(first),
                    closes,
                    if closes == 1 { "" } else { "s" }
                );
            }
            (None, Some(lo)) => {
                let _ = write!(
                    s,
                    "it keeps idle connections at least {lo} (it never closed one first here)"
                );
            }
            (None, None) => continue,
        }
        if let Some(t) = b.advertised {
            let _ = write!(s, "; it advertises `Keep-Alive: timeout={t}`");
        }
        s.push('.');
        if closes > 0 {
            let _ = write!(
                s,
                " A client pool must drop idle connections sooner than that{}.",
                if b.stale > 0 {
                    format!(
                        " ({} request{} here went into a closed connection)",
                        b.stale,
                        if b.stale == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                }
            );
        }
        out.push(s);
    }
    out
}
