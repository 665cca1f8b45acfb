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
    let mut watch = Watch::open().map_err(Error::Host)?;
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
    loop {
        let stop = signal::STOP.load(Ordering::Relaxed);
        let ends = &mut watch.ends;
        watch.rings.read(100, |ts, raw| ends.sample(ts, raw));
        let settled = watch.ends.settled(if stop { u64::MAX } else { now_ns() });
        for end in settled {
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
    let _ = writeln!(l, "  {}", said.join("; "));
}

fn json(l: &mut String, e: &End) {
    use std::fmt::Write as _;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
    let _ = writeln!(
        l,
        "{{\"type\":\"end\",\"ts\":{}.{:09},\"cause\":\"{}\",\"reason\":{},\"errno\":{},\"local\":\"{}\",\"remote\":\"{}\",\"retransmissions\":{},\"age\":{},\"pid\":null,\"comm\":null,\"keepalive\":null}}",
        e.ts / 1_000_000_000,
        e.ts % 1_000_000_000,
        e.cause.as_str(),
        opt(e.reason.map(|r| format!("\"{r}\""))),
        opt(e.errno.map(|n| n.to_string())),
        e.local,
        e.remote,
        e.retransmissions,
        opt(e.age.map(|a| format!("{a:.6}"))),
    );
}
