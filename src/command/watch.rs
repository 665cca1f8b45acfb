//! `kacap watch`: each TCP connection's end as the kernel tells it, a
//! line (or a JSON object) per end, until Ctrl-C.

use crate::command::capture::quiet_pipe;
use crate::command::plan::WatchPlan;
use crate::error::Error;
use crate::host::kernel::Watch;
use crate::host::kernel::ends::{Cause, End};
use crate::host::signal;
use std::io::Write;
use std::sync::atomic::Ordering;

/// Nanoseconds since the epoch, now.
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Carries out `kacap watch`.
pub fn run(plan: &WatchPlan, mut out: impl Write, err: &mut impl Write) -> Result<(), Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::Host(
            "kacap watch reads the kernel's tracepoints: run it as root (sudo kacap watch)".into(),
        ));
    }
    // The namespace first: its socket table is the one joined, and the
    // metrics endpoint listens in it.
    if let Some(ns) = &plan.netns {
        crate::host::sockets::netns::enter(&ns.spec, &ns.path).map_err(Error::Host)?;
    }
    // Bound first: a port in use fails before anything is watched.
    let metrics = match plan.metrics {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr).map_err(|e| {
                Error::Host(format!(
                    "--metrics {addr}: cannot listen there: {e} (choose a free ADDR:PORT)"
                ))
            })?;
            Some(listener)
        }
        None => None,
    };
    let mut watch = Watch::open().map_err(Error::Host)?;
    let metrics = metrics.map(|listener| {
        let m = std::sync::Arc::new(std::sync::Mutex::new(
            crate::report::metrics::Metrics::for_watch(),
        ));
        crate::report::metrics::serve(listener, m.clone());
        m
    });
    signal::install();
    if watch.mounted {
        let _ = writeln!(err, "kacap: mounted tracefs at /sys/kernel/tracing");
    }
    if !watch.ends.has_reasons() {
        let _ = writeln!(
            err,
            "kacap: this kernel's tcp_send_reset carries no reason (before Linux 6.10): causes \
             come from the error reported and the retransmissions"
        );
    }
    let _ = writeln!(err, "kacap: watching TCP connections end (Ctrl-C to stop)");
    let mut shown = 0u64;
    let mut line = String::new();
    let mut pending: Vec<Conn> = Vec::new();
    let mut joined = std::time::Instant::now();
    loop {
        let stop = signal::STOP.load(Ordering::Relaxed);
        let ends = &mut watch.ends;
        watch.rings.read(100, |ts, raw| ends.sample(ts, raw));
        pending.extend(
            watch
                .ends
                .take_new()
                .into_iter()
                .filter(|(l, r)| plan.port.is_none_or(|p| l.port() == p || r.port() == p)),
        );
        if !pending.is_empty() && joined.elapsed() >= JOIN_EVERY {
            join(&mut watch.ends, &std::mem::take(&mut pending));
            joined = std::time::Instant::now();
        }
        let settled = watch.ends.settled(if stop { u64::MAX } else { now_ns() });
        for end in settled {
            // `--netns`: the tracepoints are the host's; only what the
            // namespace's socket table showed is its own.
            if plan.netns.is_some() && !end.here {
                continue;
            }
            if let Some(m) = &metrics
                && plan
                    .port
                    .is_none_or(|p| end.local.port() == p || end.remote.port() == p)
                && let Ok(mut m) = m.lock()
            {
                m.end(&end);
            }
            if !plan.verbose && end.cause == Cause::Closed {
                continue;
            }
            if plan
                .port
                .is_some_and(|p| end.local.port() != p && end.remote.port() != p)
            {
                continue;
            }
            line.clear();
            if plan.json {
                json(&mut line, &end);
            } else {
                text(&mut line, &end);
            }
            shown += 1;
            let written = out.write_all(line.as_bytes()).and_then(|()| out.flush());
            if let Err(e) = written {
                return quiet_pipe(Err(Error::Output(e)));
            }
        }
        if stop {
            break;
        }
    }
    let _ = writeln!(
        err,
        "kacap: {} shown; {} event{} lost (rings full)",
        crate::core::text::plural(shown, "end"),
        watch.rings.lost,
        if watch.rings.lost == 1 { "" } else { "s" }
    );
    Ok(())
}

type Conn = (std::net::SocketAddr, std::net::SocketAddr);

/// New connections are looked up in the socket table at most this often
/// (a dump and a walk of /proc for their owners).
const JOIN_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The owners and keepalive settings of connections just established, from
/// the socket table (`kacap sockets`'s), kept until their end.
fn join(ends: &mut crate::host::kernel::ends::Ends, conns: &[Conn]) {
    use crate::host::kernel::ends::Owned;
    use crate::host::sockets::{self, RealHost};
    let wanted: std::collections::HashSet<&Conn> = conns.iter().collect();
    let Ok((_, found)) = sockets::collect(&RealHost, &|d| wanted.contains(&(d.local, d.remote)))
    else {
        return;
    };
    for s in found {
        let source = if s.exact {
            s.idle.source.as_str()
        } else {
            "inferred"
        };
        let owned = s.owner.as_ref().map(|owner| Owned {
            pid: owner.pid,
            comm: owner.comm.clone(),
            keepalive: (s.keepalive == Some(true)).then_some((
                s.idle.value,
                s.interval.value,
                s.count.value,
                source,
            )),
            user_timeout: s.user_timeout,
        });
        ends.own((s.diag.local, s.diag.remote), owned);
    }
}

/// What the errno means to the application, on its next call.
fn errno_name(e: i32) -> String {
    match e {
        110 => "ETIMEDOUT".into(),
        104 => "ECONNRESET".into(),
        32 => "EPIPE".into(),
        111 => "ECONNREFUSED".into(),
        n => format!("errno {n}"),
    }
}

fn text(l: &mut String, e: &End) {
    use chrono::TimeZone;
    use std::fmt::Write as _;
    let t = chrono::Local
        .timestamp_opt((e.ts / 1_000_000_000) as i64, (e.ts % 1_000_000_000) as u32)
        .earliest()
        .map_or_else(String::new, |t| t.format("%H:%M:%S%.6f").to_string());
    let _ = write!(l, "{t} {:<18} {} > {}", e.cause.as_str(), e.local, e.remote);
    let mut said = Vec::new();
    match e.cause {
        Cause::KeepaliveTimeout => said.push("keepalive probes unanswered, RST sent".to_string()),
        Cause::RetransmitTimeout => said.push(format!(
            "{} unacknowledged, gave up (retransmission limit or TCP_USER_TIMEOUT)",
            crate::core::text::plural(u64::from(e.retransmissions), "retransmission")
        )),
        Cause::UserTimeout => said.push(format!(
            "{} unacknowledged past TCP_USER_TIMEOUT ({}), gave up",
            crate::core::text::plural(u64::from(e.retransmissions), "retransmission"),
            e.owned
                .as_ref()
                .and_then(|o| o.user_timeout)
                .map_or_else(String::new, |t| crate::core::text::Secs(t).to_string())
        )),
        Cause::ZeroWindowTimeout => {
            said.push(format!(
                "the peer's window stayed shut and its window probes went unanswered, gave up{}",
                e.owned.as_ref().and_then(|o| o.user_timeout).map_or_else(
                    String::new,
                    |t| format!(" (TCP_USER_TIMEOUT {})", crate::core::text::Secs(t))
                )
            ))
        }
        Cause::PeerReset => said.push("the peer reset it".to_string()),
        Cause::LocalAbort => said.push("this host reset it".to_string()),
        Cause::Refused => said.push("the connection attempt was refused".to_string()),
        Cause::Closed => said.push("closed".to_string()),
    }
    if let Some(r) = e.reason {
        said.push(format!("reason {r}"));
    }
    if let Some(n) = e.errno {
        said.push(format!("the application gets {}", errno_name(n)));
    }
    if let Some(age) = e.age {
        said.push(format!("after {}", crate::core::text::Secs(age)));
    }
    if let Some(o) = &e.owned {
        said.push(match o.keepalive {
            Some((idle, intvl, cnt, source)) => format!(
                "{}[{}], keepalive {idle}/{intvl}/{cnt} ({source})",
                crate::core::text::escape(&o.comm),
                o.pid
            ),
            None => format!(
                "{}[{}], no SO_KEEPALIVE",
                crate::core::text::escape(&o.comm),
                o.pid
            ),
        });
    }
    let _ = writeln!(l, "  {}", said.join("; "));
}

fn json(l: &mut String, e: &End) {
    use std::fmt::Write as _;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
    let o = e.owned.as_ref();
    let keepalive = o.and_then(|o| o.keepalive).map(|(idle, interval, count, source)| {
        format!("{{\"idle\":{idle},\"interval\":{interval},\"count\":{count},\"source\":\"{source}\"}}")
    });
    let comm = o.map(|o| format!("\"{}\"", crate::core::text::escape(&o.comm)));
    let _ = writeln!(
        l,
        "{{\"type\":\"end\",\"ts\":{}.{:09},\"cause\":\"{}\",\"reason\":{},\"errno\":{},\"local\":\"{}\",\"remote\":\"{}\",\"retransmissions\":{},\"age\":{},\"pid\":{},\"comm\":{},\"keepalive\":{},\"user_timeout\":{}}}",
        e.ts / 1_000_000_000,
        e.ts % 1_000_000_000,
        e.cause.as_str(),
        opt(e.reason.map(|r| format!("\"{r}\""))),
        opt(e.errno.map(|n| n.to_string())),
        e.local,
        e.remote,
        e.retransmissions,
        opt(e.age.map(|a| format!("{a:.6}"))),
        opt(o.map(|o| o.pid.to_string())),
        opt(comm),
        opt(keepalive),
        opt(o.and_then(|o| o.user_timeout).map(|t| t.to_string())),
    );
}
