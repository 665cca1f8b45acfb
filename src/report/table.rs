//! The summary table (comfy-table), one row per flow.

use super::annotate::Secs;
use crate::analyses::keepalive::SystemDefaults;
use crate::core::time::Timestamp;
use crate::pipeline::event::Stats;
use crate::pipeline::summary::FlowSummary;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};
use std::io::{self, Write};

fn opt_secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| Secs(s).to_string())
}

fn opt_count(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |c| c.to_string())
}

/// How the connection ended, e.g. `FIN by client`, `RST by server`, `open`.
pub fn ending(f: &FlowSummary) -> String {
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

/// The app column: `http2 4 pings/1.00s`, `websocket 6/6 …, close 1006`,
/// `encrypted? 6×39/39 B/1.00s`, `http2 GOAWAY ENHANCE_YOUR_CALM`.
fn app_cell(f: &FlowSummary) -> String {
    let Some(a) = f.findings.app else {
        return "-".to_string();
    };
    let every = a
        .interval
        .map(|i| format!(" every {}", super::annotate::Secs(i)))
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

/// The socket column (`--sockets`): `client 4242 python3 on 20/75/9`.
fn socket_cell(f: &FlowSummary) -> String {
    let Some(j) = f.sockets.as_deref() else {
        return "-".to_string();
    };
    let mut parts = Vec::new();
    for (end, s) in [("client", &j.client), ("server", &j.server)] {
        let Some(s) = s else { continue };
        let who = s
            .owner
            .as_ref()
            .map_or("?".to_string(), |o| format!("{} {}", o.pid, o.comm));
        let ka = match s.keepalive {
            Some(true) => format!(
                "on {}/{}/{}{}",
                s.idle.value,
                s.interval.value,
                s.count.value,
                if s.exact { "" } else { "~" }
            ),
            Some(false) => "off".to_string(),
            None => "?".to_string(),
        };
        parts.push(format!("{end} {who} {ka}"));
    }
    parts.join("\n")
}

/// The table at its natural width (`width` `None`: a pipe, a file,
/// `--wide`), or to fit a terminal's `width`: the full layout when it fits,
/// else the compact one — the endpoints on two lines, the prober, its probe
/// counts and the inferred settings in one cell, the verdict over how the
/// connection ended — whose cells wrap, never inside an address.
pub fn write(
    out: &mut impl Write,
    flows: &[FlowSummary],
    stats: &Stats,
    width: Option<u16>,
) -> io::Result<()> {
    if !flows.is_empty() {
        let wide = full(flows).to_string();
        let fits =
            |w: u16| wide.lines().map(|l| l.chars().count()).max().unwrap_or(0) <= usize::from(w);
        match width {
            Some(w) if !fits(w) => writeln!(out, "{}", compact(flows, w))?,
            _ => writeln!(out, "{wide}")?,
        }
    }
    write!(
        out,
        "{}, {}, {} skipped, {}",
        super::plural(stats.frames, "frame"),
        super::plural(stats.tcp_segments, "TCP segment"),
        stats.skipped,
        super::plural(stats.flows, "flow")
    )?;
    if stats.time_outliers > 0 {
        write!(
            out,
            "; {} stamped more than a day from the rest (the clock did not follow them)",
            super::plural(stats.time_outliers, "frame")
        )?;
    }
    writeln!(out)
}

fn full(flows: &[FlowSummary]) -> Table {
    let with_http = flows.iter().any(|f| f.findings.http.is_some());
    let with_app = flows.iter().any(|f| f.findings.app.is_some());
    let with_sockets = flows.iter().any(|f| f.sockets.is_some());
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
    if with_app {
        header.push("app keepalive");
    }
    if with_sockets {
        header.push("socket (keepalive idle/intvl/cnt)");
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
        if with_app {
            row.push(app_cell(f));
        }
        if with_sockets {
            row.push(socket_cell(f));
        }
        t.add_row(row);
    }
    align_right(&mut t, &[0, 5, 6, 7, 8]);
    t
}

fn compact(flows: &[FlowSummary], width: u16) -> Table {
    let with_http = flows.iter().any(|f| f.findings.http.is_some());
    let with_app = flows.iter().any(|f| f.findings.app.is_some());
    let with_sockets = flows.iter().any(|f| f.sockets.is_some());
    let mut header = vec![
        "flow",
        "client\n→ server",
        "prober s/a/u/r\nidle/intvl ×count",
        "verdict\nended",
    ];
    if with_http {
        header.push("http");
    }
    if with_app {
        header.push("app");
    }
    if with_sockets {
        header.push("socket");
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(header);
    // Each cell's widest line, headers included (padding: one each side).
    let mut widest = [16u16, 17, 7];
    for f in flows {
        let k = &f.findings.keepalive;
        let counts = format!("{}/{}/{}/{}", k.probes, k.answered, k.unanswered, k.rst);
        let keepalive = match (k.prober, k.idle, k.interval, k.count) {
            (None, None, None, None) => counts,
            (prober, idle, interval, count) => format!(
                "{} {counts}\n{}/{} ×{}",
                prober.map_or("-", |p| p.as_str()),
                opt_secs(idle),
                opt_secs(interval),
                opt_count(count)
            ),
        };
        let cells = [
            format!("{}\n→ {}", f.client, f.server),
            keepalive,
            format!("{}\n{}", f.verdict.as_str(), ending(f)),
        ];
        for (w, cell) in widest.iter_mut().zip(&cells) {
            let longest = cell.lines().map(|l| l.chars().count()).max().unwrap_or(0);
            *w = (*w).max(longest as u16);
        }
        let mut row = vec![f.id.to_string()];
        row.extend(cells);
        if with_http {
            row.push(http_cell(f));
        }
        if with_app {
            row.push(app_cell(f));
        }
        if with_sockets {
            row.push(socket_cell(f));
        }
        t.add_row(row);
    }
    // Addresses, counts and verdicts are never split; the http and app cells wrap.
    for (i, w) in widest.into_iter().enumerate() {
        if let Some(c) = t.column_mut(i + 1) {
            c.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(w + 2)));
        }
    }
    align_right(&mut t, &[0]);
    t
}

fn align_right(t: &mut Table, cols: &[usize]) {
    for &col in cols {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
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
        for check in super::sockets::checks(f) {
            writeln!(out, "flow {}: {check}", f.id)?;
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
