//! `kacap sockets` output: a table that fits the terminal and one line per
//! connection on whether probes will come, or JSON Lines (`docs/json.md`);
//! and `--sockets`: the sink that joins the socket table to a live capture,
//! and the checks of what the packets showed against it.

use crate::core::text::escape;
use crate::host::sockets::join::Joiner;
use crate::host::sockets::{Joined, Setting, Socket, Source, Sysctls, Table, verdicts};
use crate::pipeline::event::PacketEvent;
use crate::pipeline::summary::FlowSummary;
use comfy_table::{CellAlignment, ContentArrangement, Table as Grid, presets::UTF8_FULL_CONDENSED};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;

/// Most "why" lines printed under the table.
const MAX_LINES: usize = 50;

fn setting(s: Setting, exact: bool) -> String {
    let mark = if exact { "" } else { "~" };
    match s.source {
        Source::Socket => format!("{mark}{} socket", s.value),
        Source::Sysctl => format!("{mark}{} sysctl", s.value),
    }
}

fn secs(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}s"),
        Some(v) => format!("{v:.1}s"),
        None => "-".to_string(),
    }
}

fn sysctl_line(s: &Sysctls) -> String {
    format!(
        "tcp_keepalive_time {}, tcp_keepalive_intvl {}, tcp_keepalive_probes {}{}",
        s.time,
        s.intvl,
        s.probes,
        s.retries2
            .map(|r| format!(", tcp_retries2 {r}"))
            .unwrap_or_default()
    )
}

pub fn text(out: &mut impl Write, t: &Table, filter: &str, width: Option<u16>) -> io::Result<()> {
    writeln!(
        out,
        "network namespace {}: {}",
        t.netns.as_deref().unwrap_or("(unknown)"),
        sysctl_line(&t.sysctls)
    )?;
    if let Some(h) = &t.host_sysctls {
        writeln!(out, "the host's namespace differs: {}", sysctl_line(h))?;
    }
    if t.sockets.is_empty() {
        if filter.is_empty() {
            writeln!(out, "no TCP socket in this namespace")?;
        } else {
            writeln!(out, "no TCP socket matches '{filter}' in this namespace")?;
        }
        return Ok(());
    }
    let full = grid(t, false, None).to_string();
    let fits =
        |w: u16| full.lines().map(|l| l.chars().count()).max().unwrap_or(0) <= usize::from(w);
    match width {
        Some(w) if !fits(w) => writeln!(out, "{}", grid(t, true, Some(w)))?,
        _ => writeln!(out, "{full}")?,
    }
    let lines = verdicts(t);
    for line in lines.iter().take(MAX_LINES) {
        writeln!(out, "{}", super::wrap_prose(line, width).trim_end())?;
    }
    if lines.len() > MAX_LINES {
        writeln!(
            out,
            "… and {} more connections (--json lists every socket)",
            lines.len() - MAX_LINES
        )?;
    }
    if let Some(why) = t
        .sockets
        .iter()
        .find(|s| !s.exact && s.owner.is_some())
        .and_then(|s| s.why.as_deref())
    {
        writeln!(
            out,
            "~ inferred, not read on the socket: {why}. SO_KEEPALIVE is then known only while a keepalive timer runs; the settings shown are the namespace's sysctls."
        )?;
    }
    Ok(())
}

/// What the keepalive cells say about one socket.
struct Cells {
    on: &'static str,
    idle: String,
    intvl: String,
    cnt: String,
    timer: String,
}

fn cells(s: &Socket) -> Cells {
    let d = &s.diag;
    let on = match s.keepalive {
        Some(true) if s.exact => "on",
        Some(true) => "~on",
        Some(false) => "off",
        None => "?",
    };
    let (idle, intvl, cnt) = if s.keepalive == Some(false) {
        ("-".into(), "-".into(), "-".into())
    } else {
        (
            setting(s.idle, s.exact),
            setting(s.interval, s.exact),
            setting(s.count, s.exact),
        )
    };
    let mut timer = match d.timer.kind {
        Some(k) => format!("{} {}", k.as_str(), secs(Some(d.timer.expires))),
        None => "-".into(),
    };
    if d.timer.kind == Some(crate::host::sockets::TimerKind::Keepalive) && d.timer.probes > 0 {
        timer.push_str(&format!(", {} out", d.timer.probes));
    }
    Cells {
        on,
        idle,
        intvl,
        cnt,
        timer,
    }
}

/// The full table (one column per field), or the compact one for a narrow
/// terminal: endpoints on two lines, state over process, the keepalive
/// settings in one cell; addresses are never split.
fn grid(t: &Table, compact: bool, width: Option<u16>) -> Grid {
    let mut g = Grid::new();
    g.load_preset(UTF8_FULL_CONDENSED);
    if compact {
        g.set_header(vec![
            "local\n→ remote",
            "state\nprocess",
            "keepalive\nidle/intvl/cnt",
            "timer\nlastsnd/rcv",
        ])
        .set_content_arrangement(ContentArrangement::Dynamic);
        if let Some(w) = width {
            g.set_width(w);
        }
    } else {
        g.set_header(vec![
            "local",
            "remote",
            "state",
            "process",
            "keepalive",
            "idle",
            "intvl",
            "cnt",
            "user to",
            "timer",
            "lastsnd",
            "lastrcv",
        ])
        .set_content_arrangement(ContentArrangement::Disabled);
    }
    let mut widest = 0u16;
    for s in &t.sockets {
        let d = &s.diag;
        let c = cells(s);
        let process = s
            .owner
            .as_ref()
            .map_or("-".into(), |o| format!("{} {}", o.pid, o.comm));
        let user = s.user_timeout.map(|u| format!("{u}s"));
        if compact {
            let ends = format!("{}\n→ {}", d.local, d.remote);
            widest = widest.max(ends.lines().map(|l| l.chars().count()).max().unwrap_or(0) as u16);
            let mut ka = c.on.to_string();
            if s.keepalive != Some(false) {
                ka.push_str(&format!("\n{} / {} / {}", c.idle, c.intvl, c.cnt));
            }
            if let Some(u) = &user {
                ka.push_str(&format!("\nuser timeout {u}"));
            }
            g.add_row(vec![
                ends,
                format!("{}\n{process}", d.state.as_str()),
                ka,
                format!("{}\n{} / {}", c.timer, secs(d.lastsnd), secs(d.lastrcv)),
            ]);
        } else {
            g.add_row(vec![
                d.local.to_string(),
                d.remote.to_string(),
                d.state.as_str().to_string(),
                process,
                c.on.to_string(),
                c.idle,
                c.intvl,
                c.cnt,
                user.unwrap_or_else(|| "-".into()),
                c.timer,
                secs(d.lastsnd),
                secs(d.lastrcv),
            ]);
        }
    }
    if compact {
        if let Some(col) = g.column_mut(0) {
            col.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
                comfy_table::Width::Fixed(widest + 2),
            ));
        }
    } else {
        for col in [5, 6, 7, 10, 11] {
            if let Some(c) = g.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    g
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{}", (v * 1e3).round() / 1e3),
        _ => "null".into(),
    }
}

fn sysctl_json(s: &Sysctls) -> String {
    format!(
        "{{\"tcp_keepalive_time\":{},\"tcp_keepalive_intvl\":{},\"tcp_keepalive_probes\":{},\"tcp_retries2\":{}}}",
        s.time,
        s.intvl,
        s.probes,
        s.retries2.map_or("null".into(), |r| r.to_string())
    )
}

fn socket_json(s: &Socket) -> String {
    let d = &s.diag;
    format!(
        "{{\"type\":\"socket\",\"local\":\"{}\",\"remote\":\"{}\",\"state\":\"{}\",{},\"why\":{},\"timer\":{{\"kind\":{},\"expires\":{},\"probes\":{}}},\"lastsnd\":{},\"lastrcv\":{},\"uid\":{},\"inode\":{}}}",
        d.local,
        d.remote,
        d.state.as_str(),
        super::json::socket_config_members(s),
        s.why
            .as_deref()
            .map_or("null".into(), |w| format!("\"{}\"", escape(w))),
        d.timer
            .kind
            .map_or("null".into(), |k| format!("\"{}\"", k.as_str())),
        num(d.timer.kind.map(|_| d.timer.expires)),
        d.timer.probes,
        num(d.lastsnd),
        num(d.lastrcv),
        d.uid,
        d.inode
    )
}

pub fn json(out: &mut impl Write, t: &Table) -> io::Result<()> {
    writeln!(
        out,
        "{{\"type\":\"netns\",\"netns\":{},\"sysctl\":{},\"host_sysctl\":{}}}",
        t.netns
            .as_deref()
            .map_or("null".into(), |n| format!("\"{}\"", escape(n))),
        sysctl_json(&t.sysctls),
        t.host_sysctls.as_ref().map_or("null".into(), sysctl_json)
    )?;
    for s in &t.sockets {
        writeln!(out, "{}", socket_json(s))?;
    }
    Ok(())
}

/// The socket table joined to the capture (`--sockets`): the first packet
/// of each connection carries its sockets, and so does its flow summary.
pub struct SocketJoin {
    joiner: Joiner,
    flows: HashMap<u32, Option<Box<Joined>>>,
}

impl SocketJoin {
    pub fn new(joiner: Joiner) -> Self {
        SocketJoin {
            joiner,
            flows: HashMap::new(),
        }
    }

    /// `f` with its sockets: as they are now when still on this host (a
    /// socket's options may have changed since the first packet), else as
    /// they were then.
    fn with_sockets(&mut self, f: &FlowSummary) -> FlowSummary {
        let mut f = f.clone();
        let then = self.flows.get(&f.id).cloned().flatten();
        if then.is_some() {
            f.sockets = self
                .joiner
                .lookup(f.client, f.server, true)
                .map(Box::new)
                .or(then);
        }
        f
    }

    /// The sockets of a packet's connection, on its first packet.
    pub fn packet(&mut self, ev: &PacketEvent) -> Option<&Joined> {
        if self.flows.contains_key(&ev.flow_id) {
            return None;
        }
        let (client, server) = match ev.from {
            crate::core::tcp::Side::Client => (
                SocketAddr::new(ev.seg.src, ev.seg.sport),
                SocketAddr::new(ev.seg.dst, ev.seg.dport),
            ),
            crate::core::tcp::Side::Server => (
                SocketAddr::new(ev.seg.dst, ev.seg.dport),
                SocketAddr::new(ev.seg.src, ev.seg.sport),
            ),
        };
        let joined = self.joiner.lookup(client, server, false).map(Box::new);
        self.flows.insert(ev.flow_id, joined);
        self.flows.get(&ev.flow_id).and_then(|j| j.as_deref())
    }

    /// A reported connection, with its sockets.
    pub fn flow(&mut self, f: &FlowSummary) -> FlowSummary {
        let joined = self.with_sockets(f);
        self.flows.remove(&f.id);
        joined
    }

    /// The connections still open, with their sockets.
    pub fn snapshot(&mut self, open: &[FlowSummary]) -> Vec<FlowSummary> {
        open.iter().map(|f| self.with_sockets(f)).collect()
    }
}
