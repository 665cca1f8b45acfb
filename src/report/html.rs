//! `--html FILE`: one self-contained report (inline CSS, JS and SVG; no
//! network, works from `file://`) — counts by verdict, a sortable and
//! filterable table of connections, every connection as a lane on one time
//! axis (zoom and pan) with a mark per segment, and per connection its
//! `--explain` text and sequence diagram one click away.
//!
//! Bounded: the [`MAX_TAUGHT`](super::text::MAX_TAUGHT) most telling
//! connections are drawn, each with at most its first and last 200
//! segments (`teach::FlowSteps`); the counts cover every connection and
//! the report says how many were left out. The page is built by
//! `html/report.js` from data embedded as JSON; its rules are in
//! `docs/usage.md`.

use super::Kept;
use super::annotate::Secs;
use super::tcpdump::Style;
use super::teach::{self, FlowSteps, Recorder, Step};
use crate::analyses::keepalive::{LINUX_DEFAULTS, Note, SystemDefaults, WINDOWS_DEFAULTS};
use crate::core::tcp::Kind;
use crate::pipeline::event::{PacketEvent, Revisions, Sink, Stats};
use crate::pipeline::summary::{FlowSummary, Verdict};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};

const CSS: &str = include_str!("html/report.css");
const JS: &str = include_str!("html/report.js");

pub struct HtmlSink {
    file: File,
    name: String,
    /// Live: this host's keepalive sysctls, compared with what was seen.
    host: Option<SystemDefaults>,
    recorder: Recorder,
    taught: Kept<(FlowSummary, FlowSteps)>,
    counts: BTreeMap<&'static str, u64>,
}

impl HtmlSink {
    /// `file`: opened before the capture started (and before privileges
    /// were dropped); `name`: its path, for messages.
    /// `style`: how a mark's tcpdump line is printed (the run's `-t`,
    /// `-S`, `-v`…; never a dump).
    pub fn new(file: File, name: String, style: Style, host: Option<SystemDefaults>) -> HtmlSink {
        HtmlSink {
            file,
            name,
            host,
            recorder: Recorder::with_lines(Style {
                dump: super::tcpdump::Dump::None,
                ..style
            }),
            taught: Kept::new(super::text::MAX_TAUGHT),
            counts: BTreeMap::new(),
        }
    }
}

impl Sink for HtmlSink {
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        let shown = !self.taught.closed_to(ev.flow_id);
        self.recorder.offer(ev, shown);
        Ok(())
    }

    fn revise(&mut self, r: &Revisions) -> io::Result<()> {
        self.recorder.revise(r);
        Ok(())
    }

    fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        *self.counts.entry(f.verdict.as_str()).or_default() += 1;
        let steps = self.recorder.take(f.id);
        self.taught
            .push_with(f.verdict, f.id, || (f.clone(), steps));
        Ok(())
    }

    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        self.write(&[], stats)
    }

    /// SIGUSR1, `--stats-every`: the report as it stands, connections still
    /// open included (the file is rewritten; the end writes it once more).
    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        self.write(open, stats)
    }
}

impl HtmlSink {
    fn write(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        use std::io::Seek;
        let none = FlowSteps::default();
        let mut flows: Vec<(&FlowSummary, &FlowSteps)> =
            self.taught.iter().map(|(f, s)| (f, s)).collect();
        // Open connections that may still be kept (the others' steps are
        // not recorded: `Recorder::offer`).
        flows.extend(
            open.iter()
                .filter(|f| !self.taught.closed_to(f.id))
                .take(super::text::MAX_TAUGHT)
                .map(|f| (f, self.recorder.peek(f.id).unwrap_or(&none))),
        );
        flows.sort_by_key(|(f, _)| f.id);
        let mut counts = self.counts.clone();
        for f in open {
            *counts.entry(f.verdict.as_str()).or_default() += 1;
        }
        let page = page(
            &flows,
            &counts,
            stats,
            self.taught.omitted().as_deref(),
            self.host,
        );
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .and_then(|()| self.file.write_all(page.as_bytes()))
            .and_then(|()| self.file.flush())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.name)))
    }
}

/// Per server, the middlebox idle timeout its connections bound: the
/// longest silence one survived and the shortest that killed one.
type Bounds = BTreeMap<std::net::SocketAddr, (Option<f64>, Option<f64>, u32)>;

fn bounds(flows: &[FlowSummary]) -> Bounds {
    let mut by: Bounds = BTreeMap::new();
    for f in flows {
        let idle = &f.findings.idle;
        let e = by.entry(f.server).or_default();
        if let Some(s) = idle.survived {
            e.0 = Some(e.0.map_or(s, |m: f64| m.max(s)));
        }
        if let Some((k, _)) = idle.killed {
            e.1 = Some(e.1.map_or(k, |m: f64| m.min(k)));
            e.2 += 1;
        }
    }
    by
}

fn middlebox_bands(by: &Bounds) -> Vec<String> {
    by.iter()
        .map(|(s, b)| (*s, *b))
        .filter_map(|(server, (lo, hi, killed))| {
            let hi = hi?;
            let secs = |v: f64| super::annotate::Secs(v).to_string();
            Some(match lo {
                Some(lo) => format!(
                    "{server}: connections idle longer than {}–{} died ({killed} killed by a middlebox after an idle gap): keep them busier than every {}",
                    secs(lo),
                    secs(hi),
                    secs(lo)
                ),
                None => format!(
                    "{server}: {killed} connection(s) killed by a middlebox after {} idle",
                    secs(hi)
                ),
            })
        })
        .collect()
}

/// The keepalive settings the connections showed, per server and prober,
/// next to the defaults: Linux's (or Windows' for one-byte probes) and,
/// live, this host's sysctls.
fn settings_notes(
    flows: &[(&FlowSummary, &FlowSteps)],
    host: Option<SystemDefaults>,
) -> Vec<String> {
    /// Server, prober, Windows-style probes.
    type Key = (std::net::SocketAddr, &'static str, bool);
    let mut groups: BTreeMap<Key, Seen> = BTreeMap::new();
    for (f, fs) in flows {
        let k = &f.findings.keepalive;
        let Some(prober) = k.prober else { continue };
        if k.idle.is_none() && k.interval.is_none() && k.count.is_none() {
            continue;
        }
        let windows = fs
            .head
            .iter()
            .chain(fs.tail.iter())
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
        e.count.add(k.count.map(f64::from));
        let or = |a: &mut [bool; 3], b: [bool; 3]| {
            for (x, y) in a.iter_mut().zip(b) {
                *x |= y;
            }
        };
        or(&mut e.differ, d.differing(k.idle, k.interval, k.count));
        if let Some(h) = host {
            or(&mut e.differ_host, h.differing(k.idle, k.interval, k.count));
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
        let mut text = format!(
            "{} connection{} to {server}: the {prober} probes {} — {}",
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

/// A JSON string, safe inside `<script>` (no `</`).
fn js_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    o.push_str(&super::json::escape(s).replace("</", "<\\/"));
    o.push('"');
    o
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{}", (v * 1e6).round() / 1e6),
        _ => "null".into(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What a mark is, for its shape (probe fates told apart by shape, not
/// only color).
fn mark_kind(s: &Step, answered: &HashSet<u64>, reset: &HashSet<u64>) -> &'static str {
    if s.injected {
        return "injected";
    }
    if s.app.is_some() {
        return "app";
    }
    match (s.kind, s.note) {
        (Kind::Keepalive, _) if reset.contains(&s.n) => "probe-rst",
        (Kind::Keepalive, _) if answered.contains(&s.n) => "probe-ok",
        (Kind::Keepalive, _) => "probe-lost",
        (Kind::KeepaliveAck, _) => "probe-ack",
        (Kind::Syn | Kind::SynAck | Kind::HandshakeAck, _) => "handshake",
        (Kind::Data, _) => "data",
        (Kind::Retransmission, _) => "retransmit",
        (Kind::Fin, _) => "fin",
        (Kind::Rst, _) => "rst",
        (
            Kind::ZeroWindow
            | Kind::ZeroWindowProbe
            | Kind::ZeroWindowProbeAck
            | Kind::WindowUpdate,
            _,
        ) => "window",
        (Kind::Ack, _) => "ack",
    }
}

/// One connection as the page's data; `band`: its server's middlebox idle
/// timeout bounds (lower, upper), to shade the gaps that reach them.
fn flow_json(
    o: &mut String,
    f: &FlowSummary,
    fs: &FlowSteps,
    t0: crate::core::time::Timestamp,
    band: Option<(f64, f64)>,
) {
    let (head, tail) = fs.ordered();
    let all: Vec<Step> = head.iter().chain(tail.iter()).copied().collect();
    let mut answered = HashSet::new();
    let mut reset = HashSet::new();
    for s in &all {
        match s.note {
            Note::ProbeAnswered { reply_to, .. } => {
                answered.insert(reply_to);
            }
            Note::PeerReset { reply_to, .. } => {
                reset.insert(reply_to);
            }
            _ => {}
        }
    }
    let k = &f.findings.keepalive;
    let explain = teach::explain(f, &all);
    let diagram = teach::svg_of([(f, fs)]);
    let _ = write!(
        o,
        "{{\"id\":{},\"client\":{},\"server\":{},\"verdict\":{},\"rank\":{},\"prober\":{},\"probes\":[{},{},{},{}],\"idle\":{},\"interval\":{},\"count\":{},\"ended\":{},\"elided\":{},\"elidedAfter\":{},\"band\":{},\"explain\":{},\"diagram\":{},\"marks\":[",
        f.id,
        js_str(&f.client.to_string()),
        js_str(&f.server.to_string()),
        js_str(f.verdict.as_str()),
        super::rank(f.verdict),
        js_str(k.prober.map_or("-", |p| p.as_str())),
        k.probes,
        k.answered,
        k.unanswered,
        k.rst,
        num(k.idle),
        num(k.interval),
        k.count.map_or("null".into(), |c| c.to_string()),
        js_str(&super::table::ending(f)),
        fs.elided,
        head.len(),
        band.map_or("null".into(), |(lo, hi)| format!(
            "[{},{}]",
            num(Some(lo)),
            num(Some(hi))
        )),
        js_str(&explain),
        js_str(&diagram),
    );
    for (i, s) in all.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "[{},{},{},{},{},{},{}]",
            num(Some(s.ts.since(t0))),
            js_str(mark_kind(s, &answered, &reset)),
            js_str(s.from.name()),
            s.n,
            js_str(&teach::label(s)),
            js_str(fs.line(s)),
            u8::from(s.revised),
        );
    }
    o.push_str("]}");
}

fn page(
    flows: &[(&FlowSummary, &FlowSteps)],
    counts: &BTreeMap<&'static str, u64>,
    stats: &Stats,
    omitted: Option<&str>,
    host: Option<SystemDefaults>,
) -> String {
    let t0 = flows
        .iter()
        .map(|(f, _)| f.first_ts)
        .min()
        .unwrap_or(crate::core::time::Timestamp::new(0, 0));
    let t1 = flows.iter().map(|(f, _)| f.last_ts).max().unwrap_or(t0);
    let summaries: Vec<FlowSummary> = flows.iter().map(|(f, _)| (*f).clone()).collect();
    let by_server = bounds(&summaries);
    let mut data = String::from("{\"flows\":[");
    for (i, (f, fs)) in flows.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        let band = by_server
            .get(&f.server)
            .and_then(|&(lo, hi, _)| Some((lo.unwrap_or(0.0), hi?)));
        flow_json(&mut data, f, fs, t0, band);
    }
    let start = chrono::DateTime::from_timestamp(t0.sec, t0.nsec)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string())
        .unwrap_or_default();
    let _ = write!(
        data,
        "],\"lineHead\":{},\"span\":{},\"start\":{},\"frames\":{},\"segments\":{},\"flowsTotal\":{},\"omitted\":{},\"counts\":{{",
        teach::LINE_HEAD,
        num(Some(t1.since(t0).max(0.0))),
        js_str(&start),
        stats.frames,
        stats.tcp_segments,
        stats.flows,
        omitted.map_or("null".into(), js_str),
    );
    for (i, (v, n)) in counts.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        let _ = write!(data, "{}:{n}", js_str(v));
    }
    data.push_str("},\"notes\":[");
    let mut notes = middlebox_bands(&by_server);
    notes.extend(super::app::server_timeouts(&summaries));
    notes.extend(settings_notes(flows, host));
    for (i, n) in notes.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push_str(&js_str(n));
    }
    data.push_str("]}");
    let verdict_options: String = [
        Verdict::DeadPeer,
        Verdict::PeerReset,
        Verdict::IdleTimeout,
        Verdict::RetransmitTimeout,
        Verdict::AcksDropped,
        Verdict::StaleConnection,
        Verdict::TooManyPings,
        Verdict::AppPingTimeout,
        Verdict::Undecided,
        Verdict::Alive,
        Verdict::AppKeepalive,
        Verdict::NoKeepalive,
    ]
    .iter()
    .filter(|v| counts.contains_key(v.as_str()))
    .map(|v| format!("<option>{}</option>", esc(v.as_str())))
    .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="kacap {version}">
<title>kacap report</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>kacap report</h1>
<p id="span"></p>
<ul id="counts" aria-label="connections by verdict"></ul>
<ul id="notes"></ul>
</header>
<main>
<section id="timeline" aria-label="connections on one time axis">
<div class="controls">
<button type="button" id="zoom-in" title="zoom in (+)">+</button>
<button type="button" id="zoom-out" title="zoom out (-)">−</button>
<button type="button" id="zoom-fit" title="whole capture (0)">fit</button>
<span id="view"></span>
<span class="legend" aria-hidden="true">
<span><svg width="12" height="12"><circle cx="6" cy="6" r="4.5" class="m probe-ok"/></svg> probe answered</span>
<span><svg width="12" height="12"><circle cx="6" cy="6" r="4.5" class="m probe-lost"/></svg> probe unanswered</span>
<span><svg width="12" height="12"><path d="M2 2L10 10M10 2L2 10" class="m probe-rst"/></svg> probe answered by RST</span>
<span><svg width="12" height="12"><rect x="2" y="2" width="8" height="8" class="m rst"/></svg> RST</span>
<span><svg width="12" height="12"><path d="M6 1L11 6L6 11L1 6Z" class="m injected"/></svg> injected RST</span>
<span><svg width="12" height="12"><path d="M1 11L6 1L11 11Z" class="m fin"/></svg> FIN</span>
<span><svg width="12" height="12"><path d="M6 1V11M1 6H11" class="m app"/></svg> application ping</span>
<span><svg width="12" height="12"><path d="M6 2V10" class="m data"/></svg> data</span>
<span><svg width="16" height="12"><rect width="16" height="12" class="gap-risk"/></svg><svg width="16" height="12"><rect width="16" height="12" class="gap-dead"/></svg> idle within / past the server's middlebox timeout bounds</span>
</span>
</div>
<div id="mark" aria-live="polite"></div>
<div id="lanes-box"><svg id="lanes" role="img" aria-label="one lane per connection"></svg></div>
</section>
<section aria-label="connections">
<div class="controls">
<label>verdict <select id="verdict"><option value="">all</option>{verdict_options}</select></label>
<label>filter <input id="filter" type="search" placeholder="server, client, prober…"></label>
</div>
<table id="flows">
<thead><tr><th data-key="id">flow</th><th data-key="client">client</th><th data-key="server">server</th><th data-key="verdict">verdict</th><th data-key="prober">prober</th><th data-key="probes">probes sent/ans/unans/rst</th><th data-key="idle">idle</th><th data-key="interval">intvl</th><th data-key="count">count</th><th data-key="ended">ended</th></tr></thead>
<tbody></tbody>
</table>
</section>
<section id="detail" aria-label="the chosen connection" hidden>
<h2 id="detail-title"></h2>
<pre id="explain"></pre>
<div id="diagram"></div>
</section>
</main>
<footer><p id="footer"></p></footer>
<script id="data" type="application/json">{data}</script>
<script>{JS}</script>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}
