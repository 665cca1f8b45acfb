//! The summary table (comfy-table), one row per flow.

use super::annotate::Secs;
use crate::event::Stats;
use crate::keepalive::SystemDefaults;
use crate::summary::FlowSummary;
use crate::time::Timestamp;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};
use std::io::{self, Write};

fn opt_secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| Secs(s).to_string())
}

fn opt_count(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |c| c.to_string())
}

/// How the connection ended, e.g. `FIN by client`, `RST by server`, `open`.
fn ending(f: &FlowSummary) -> String {
    match f.close.by() {
        Some(side) => format!("{} by {}", f.close.as_str().to_uppercase(), side.name()),
        None => "open".to_string(),
    }
}

/// The HTTP column: `3 req, keep-alive, 1.1`.
fn http_cell(f: &FlowSummary) -> String {
    match f.findings.http {
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

pub fn write(out: &mut impl Write, flows: &[FlowSummary], stats: &Stats) -> io::Result<()> {
    if !flows.is_empty() {
        let with_http = flows.iter().any(|f| f.findings.http.is_some());
        let mut header = vec![
            "flow",
            "client",
            "server",
            "handshake",
            "prober",
            "probes sent/ans/unans/rst",
            "idle",
            "intvl",
            "count",
            "ended",
            "verdict",
        ];
        if with_http {
            header.push("http");
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header);
        for f in flows {
            let k = &f.findings.keepalive;
            let mut row = vec![
                f.id.to_string(),
                f.client.to_string(),
                f.server.to_string(),
                f.handshake.as_str().to_string(),
                k.prober.map_or("-", |p| p.as_str()).to_string(),
                format!("{}/{}/{}/{}", k.probes, k.answered, k.unanswered, k.rst),
                opt_secs(k.idle),
                opt_secs(k.interval),
                opt_count(k.count),
                ending(f),
                f.verdict.as_str().to_string(),
            ];
            if with_http {
                row.push(http_cell(f));
            }
            t.add_row(row);
        }
        for col in [0, 5, 6, 7, 8] {
            if let Some(c) = t.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        writeln!(out, "{t}")?;
    }
    writeln!(
        out,
        "{}, {}, {} skipped, {}",
        super::plural(stats.frames, "frame"),
        super::plural(stats.tcp_segments, "TCP segment"),
        stats.skipped,
        super::plural(stats.flows, "flow")
    )
}

/// After a live capture: this host's keepalive defaults next to what the
/// flows did, and when each open flow's next probe is due.
pub fn write_live_notes(
    out: &mut impl Write,
    flows: &[FlowSummary],
    defaults: Option<SystemDefaults>,
    now: Timestamp,
) -> io::Result<()> {
    if let Some(d) = defaults {
        writeln!(
            out,
            "system defaults (/proc/sys/net/ipv4): tcp_keepalive_time {}s, tcp_keepalive_intvl {}s, tcp_keepalive_probes {}",
            d.time, d.intvl, d.probes
        )?;
        for f in flows {
            let k = &f.findings.keepalive;
            let [idle, interval, count] = d.differing(k.idle, k.interval, k.count);
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
            writeln!(
                out,
                "flow {}: {} differ{} from them: its {} sets TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT itself",
                f.id,
                parts.join(", "),
                if parts.len() == 1 { "s" } else { "" },
                k.prober.map_or("socket", |p| p.as_str()),
            )?;
        }
    }
    for f in flows {
        if let Some(due) = f.findings.keepalive.next_probe {
            let wait = due.since(now);
            if wait >= 0.0 {
                writeln!(
                    out,
                    "flow {} still open: next probe expected in ~{}",
                    f.id,
                    Secs(wait)
                )?;
            } else {
                writeln!(
                    out,
                    "flow {} still open: a probe was due {} ago and none was seen",
                    f.id,
                    Secs(-wait)
                )?;
            }
        }
    }
    Ok(())
}
