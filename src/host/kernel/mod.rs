//! The kernel's own account of how connections end (`kacap watch`): its
//! tracepoints read through `perf_event_open`, their layouts from tracefs,
//! no packet capture. `format` parses a tracepoint's layout, `perf` reads
//! the per-CPU rings, `ends` turns the events into one end per connection
//! with its cause.

pub mod ends;
pub mod format;
pub mod perf;

use ends::{Ends, TRACEPOINTS};
use format::Format;
use std::path::{Path, PathBuf};

/// Where tracefs is, mounting it (root) when it is not: the directory and
/// whether kacap mounted it.
pub fn tracefs() -> Result<(PathBuf, bool), String> {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(dir).join("events/tcp").is_dir() {
            return Ok((PathBuf::from(dir), false));
        }
    }
    let dir = Path::new("/sys/kernel/tracing");
    let target = c"/sys/kernel/tracing";
    // SAFETY: valid NUL-terminated strings; mount(2) only reads them.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 && dir.join("events/tcp").is_dir() {
        return Ok((dir.to_path_buf(), true));
    }
    Err(format!(
        "tracefs is not mounted and could not be mounted at /sys/kernel/tracing ({}): run as root, \
         or mount it (mount -t tracefs nodev /sys/kernel/tracing)",
        std::io::Error::last_os_error()
    ))
}

/// The tracepoints opened and their layouts.
pub struct Watch {
    pub rings: perf::Rings,
    pub ends: Ends,
    /// kacap mounted tracefs itself.
    pub mounted: bool,
}

impl Watch {
    /// Opens the tracepoints of [`TRACEPOINTS`] on every CPU.
    pub fn open() -> Result<Watch, String> {
        let (dir, mounted) = tracefs()?;
        let mut formats = Vec::new();
        for tp in TRACEPOINTS {
            let path = dir.join("events").join(tp).join("format");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "cannot read {}: {e} (this kernel lacks the tracepoint {tp}?)",
                    path.display()
                )
            })?;
            formats.push(
                Format::parse(&text).ok_or_else(|| format!("{}: no ID in it", path.display()))?,
            );
        }
        let ids: Vec<(u64, Option<&str>)> = formats
            .iter()
            .zip(ends::FILTERS)
            .map(|(f, filter)| (f.id, filter))
            .collect();
        let rings = perf::Rings::open(&ids).map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::EACCES)
                || e.raw_os_error() == Some(libc::EPERM)
            {
                " (needs root, or CAP_PERFMON with CAP_SYS_ADMIN for tracepoints)"
            } else {
                ""
            };
            format!("cannot open the kernel's tracepoints (perf_event_open): {e}{why}")
        })?;
        Ok(Watch {
            rings,
            ends: Ends::new(formats),
            mounted,
        })
    }
}

/// Ends seen by a watch running beside a live capture (`--kernel`), by
/// (local, remote): what the capture's reports look up.
pub type Seen = std::sync::Arc<
    std::sync::Mutex<
        std::collections::HashMap<(std::net::SocketAddr, std::net::SocketAddr), ends::End>,
    >,
>;

/// Ends kept at most for the capture to look up (the oldest go first).
const SEEN_MAX: usize = 1 << 16;

impl Watch {
    /// Reads the tracepoints on a thread of its own, keeping each
    /// connection's end in the map returned, until nobody else holds it.
    pub fn spawn(mut self) -> Seen {
        let seen: Seen = Default::default();
        let shared = seen.clone();
        std::thread::spawn(move || {
            let mut order = std::collections::VecDeque::new();
            loop {
                let done = std::sync::Arc::strong_count(&shared) == 1;
                let ends = &mut self.ends;
                self.rings.read(100, |ts, raw| ends.sample(ts, raw));
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                let settled = self.ends.settled(now);
                if !settled.is_empty()
                    && let Ok(mut map) = shared.lock()
                {
                    for end in settled {
                        let key = (end.local, end.remote);
                        order.push_back(key);
                        map.insert(key, end);
                        while map.len() > SEEN_MAX {
                            match order.pop_front() {
                                Some(old) => {
                                    map.remove(&old);
                                }
                                None => break,
                            }
                        }
                    }
                }
                if done {
                    break;
                }
            }
        });
        seen
    }
}
