//! The summary table (comfy-table), one row per flow: the core's columns
//! (the connection, its handshake, how it ended, its verdict), each
//! analysis's among them (`Describe::CORE`) or after them when a connection
//! has something to say there, and the joined sockets.

use crate::analyses::describe::Column;
use crate::analyses::registry::Findings;
use crate::pipeline::event::Stats;
use crate::pipeline::summary::FlowSummary;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};
use std::io::{self, Write};

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
        crate::core::text::plural(stats.frames, "frame"),
        crate::core::text::plural(stats.tcp_segments, "TCP segment"),
        stats.skipped,
        crate::core::text::plural(stats.flows, "flow")
    )?;
    if stats.fragments > 0 {
        let f = &stats.frag;
        write!(
            out,
            "; {} of TCP datagrams: {} reassembled",
            crate::core::text::plural(stats.fragments, "IP fragment"),
            crate::core::text::plural(f.reassembled, "datagram"),
        )?;
        let dropped: Vec<String> = crate::core::frag::Dropped::ALL
            .iter()
            .zip(f.dropped)
            .filter(|(_, n)| *n > 0)
            .map(|(why, n)| format!("{n} {}", why.as_str().replace('_', " ")))
            .collect();
        if !dropped.is_empty() {
            write!(out, ", fragments dropped: {}", dropped.join(", "))?;
        }
        if f.tiny > 0 {
            write!(out, ", {} with a tiny first fragment", f.tiny)?;
        }
    }
    if stats.time_outliers > 0 {
        write!(
            out,
            "; {} stamped more than a day from the rest (the clock did not follow them)",
            crate::core::text::plural(stats.time_outliers, "frame")
        )?;
    }
    writeln!(out)
}

fn full(flows: &[FlowSummary]) -> Table {
    let shown = Findings::shown_in(flows);
    let with_sockets = flows.iter().any(|f| f.sockets.is_some());
    let core = Findings::columns(&shown, true);
    let more = Findings::columns(&shown, false);
    let mut header: Vec<&str> = vec!["flow", "client", "server", "handshake"];
    header.extend(core.iter().map(|c| c.header));
    header.extend(["ended", "verdict"]);
    header.extend(more.iter().map(|c| c.header));
    if with_sockets {
        header.push("socket (keepalive idle/intvl/cnt)");
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    for f in flows {
        let mut row = vec![
            f.id.to_string(),
            f.client.to_string(),
            f.server.to_string(),
            f.handshake.as_str().to_string(),
        ];
        row.extend(Findings::cells(f, &shown, true));
        row.extend([f.ending(), f.verdict.as_str().to_string()]);
        row.extend(Findings::cells(f, &shown, false));
        if with_sockets {
            row.push(socket_cell(f));
        }
        t.add_row(row);
    }
    let right = |columns: &[Column], from: usize| -> Vec<usize> {
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.right)
            .map(|(i, _)| from + i)
            .collect()
    };
    let mut right_aligned = vec![0];
    right_aligned.extend(right(&core, 4));
    right_aligned.extend(right(&more, 6 + core.len()));
    align_right(&mut t, &right_aligned);
    t
}

fn compact(flows: &[FlowSummary], width: u16) -> Table {
    let shown = Findings::shown_in(flows);
    let with_sockets = flows.iter().any(|f| f.sockets.is_some());
    let core = Findings::compact_columns(&shown, true);
    let mut header = vec!["flow", "client\n→ server"];
    header.extend(&core);
    header.push("verdict\nended");
    header.extend(Findings::compact_columns(&shown, false));
    if with_sockets {
        header.push("socket");
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(header);
    // The cells never split (addresses, the core analyses', the verdict):
    // each one's widest line, headers included (padding: one each side).
    let mut widest: Vec<u16> = vec![16];
    widest.extend(
        core.iter()
            .map(|h| h.lines().map(|l| l.chars().count()).max().unwrap_or(0) as u16),
    );
    widest.push(7);
    for f in flows {
        let mut cells = vec![format!("{}\n→ {}", f.client, f.server)];
        cells.extend(Findings::compact_cells(f, &shown, true));
        cells.push(format!("{}\n{}", f.verdict.as_str(), f.ending()));
        for (w, cell) in widest.iter_mut().zip(&cells) {
            let longest = cell.lines().map(|l| l.chars().count()).max().unwrap_or(0);
            *w = (*w).max(longest as u16);
        }
        let mut row = vec![f.id.to_string()];
        row.extend(cells);
        row.extend(Findings::compact_cells(f, &shown, false));
        if with_sockets {
            row.push(socket_cell(f));
        }
        t.add_row(row);
    }
    // Addresses, counts and verdicts are never split; the others wrap.
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
