//! The sequence diagrams as one SVG document (`--diagram-svg`, and each
//! connection's in the HTML report).

use super::FlowSteps;
use super::diagram::{gap, label, remark};
use crate::analyses::registry::{FlowStep, Marks};
use crate::core::tcp::{Kind, Side};
use crate::core::time::Timestamp;
use crate::pipeline::summary::FlowSummary;
use std::fmt::Write as _;

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
    let all: Vec<FlowStep> = head.iter().chain(tail.iter()).copied().collect();
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
    s: &FlowStep,
    all: &[FlowStep],
    prev: Option<Timestamp>,
    ry: f64,
) -> usize {
    let lost = Marks::lost(s, all);
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
