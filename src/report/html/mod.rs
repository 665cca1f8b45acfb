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
use super::tcpdump::Style;
use super::teach::{self, FlowSteps, Recorder};
use crate::analyses::registry::{Findings, FlowStep, Marks};
use crate::analyses::verdict::{TABLE, Tone};
use crate::core::tcp::Kind;
use crate::host::sysctls::Sysctls;
use crate::pipeline::event::{PacketEvent, Revisions, Sink, Stats};
use crate::pipeline::summary::{FlowSummary, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

pub struct HtmlSink {
    file: File,
    name: String,
    /// Live: this host's keepalive sysctls, compared with what was seen.
    host: Option<Sysctls>,
    recorder: Recorder,
    taught: Kept<(FlowSummary, FlowSteps)>,
    counts: BTreeMap<&'static str, u64>,
}

impl HtmlSink {
    /// `file`: opened before the capture started (and before privileges
    /// were dropped); `name`: its path, for messages.
    /// `style`: how a mark's tcpdump line is printed (the run's `-t`,
    /// `-S`, `-v`…; never a dump).
    pub fn new(file: File, name: String, style: Style, host: Option<Sysctls>) -> HtmlSink {
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

/// A JSON string, safe inside `<script>`: no `<`, `>`, `&`, U+2028 or
/// U+2029 at all (`\u003c`…), so payload text can neither end the data
/// block (`</script>`) nor open an HTML comment (`<!--`) that swallows the
/// page's script.
fn js_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in crate::core::text::escape(s).chars() {
        match c {
            '<' => o.push_str("\\u003c"),
            '>' => o.push_str("\\u003e"),
            '&' => o.push_str("\\u0026"),
            '\u{2028}' => o.push_str("\\u2028"),
            '\u{2029}' => o.push_str("\\u2029"),
            c => o.push(c),
        }
    }
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
/// only color): an injected RST, an analysis's shape, else its kind's.
fn mark_kind(s: &FlowStep, all: &[FlowStep]) -> &'static str {
    if s.injected {
        return "injected";
    }
    if let Some(shape) = Marks::shape(s, all) {
        return shape;
    }
    match s.kind {
        Kind::Keepalive => "probe-lost",
        Kind::KeepaliveAck => "probe-ack",
        Kind::Syn | Kind::SynAck | Kind::HandshakeAck => "handshake",
        Kind::Data => "data",
        Kind::Retransmission => "retransmit",
        Kind::Fin => "fin",
        Kind::Rst => "rst",
        Kind::ZeroWindow
        | Kind::ZeroWindowProbe
        | Kind::ZeroWindowProbeAck
        | Kind::WindowUpdate => "window",
        Kind::Ack | Kind::Duplicate => "ack",
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
    let all: Vec<FlowStep> = head.iter().chain(tail.iter()).copied().collect();
    let explain = teach::explain(f, &all);
    let diagram = teach::svg_of([(f, fs)]);
    let _ = write!(
        o,
        "{{\"id\":{},\"client\":{},\"server\":{},\"verdict\":{},\"rank\":{}",
        f.id,
        js_str(&f.client.to_string()),
        js_str(&f.server.to_string()),
        js_str(f.verdict.as_str()),
        f.verdict.rank(),
    );
    Findings::html(f, o);
    let _ = write!(
        o,
        ",\"ended\":{},\"elided\":{},\"elidedAfter\":{},\"band\":{},\"explain\":{},\"diagram\":{},\"marks\":[",
        js_str(&f.ending()),
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
            js_str(mark_kind(s, &all)),
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
    host: Option<Sysctls>,
) -> String {
    let t0 = flows
        .iter()
        .map(|(f, _)| f.first_ts)
        .min()
        .unwrap_or(crate::core::time::Timestamp::new(0, 0));
    let t1 = flows.iter().map(|(f, _)| f.last_ts).max().unwrap_or(t0);
    let summaries: Vec<&FlowSummary> = flows.iter().map(|(f, _)| *f).collect();
    let mut data = String::from("{\"flows\":[");
    for (i, (f, fs)) in flows.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        let band = Findings::band(&summaries, f);
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
    let steps: Vec<Vec<FlowStep>> = flows.iter().map(|(_, fs)| fs.all()).collect();
    let with_steps: Vec<(&FlowSummary, &[FlowStep])> = flows
        .iter()
        .zip(&steps)
        .map(|((f, _), s)| (*f, s.as_slice()))
        .collect();
    let notes = Findings::overview(&with_steps, host);
    for (i, n) in notes.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push_str(&js_str(n));
    }
    data.push_str("]}");
    let verdict_options: String = Verdict::ALL
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
<style>{CSS}{tones}</style>
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
        tones = tones(),
    )
}

/// The verdict cells' colours, from the verdict table's tones.
fn tones() -> String {
    let cells = |tone: Tone| -> String {
        TABLE
            .iter()
            .filter(|r| r.tone == tone)
            .map(|r| format!("td.v-{}", r.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} {{ color: var(--bad); font-weight: bold; }}\n{} {{ color: var(--ok); }}\n",
        cells(Tone::Bad),
        cells(Tone::Good)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn payload_text_cannot_break_the_data_block() {
        for text in [
            "GET /<!--<script>",
            "</script><script>alert(1)</script>",
            "a<b",
        ] {
            let js = super::js_str(text);
            assert!(!js.contains('<'), "{js}");
            let back: String = serde_json::from_str(&js).unwrap();
            assert_eq!(back, text);
        }
    }
}
