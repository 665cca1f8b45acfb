//! `--metrics ADDR:PORT`: a Prometheus exposition endpoint (`GET
//! /metrics`, text format 0.0.4) for kacap running as a monitor.
//!
//! The analysis thread updates [`Metrics`] through [`MetricsSink`] (a sink
//! wrapped around the output's, so every output works with it); a small
//! HTTP server thread ([`serve`]) renders it on each scrape. Label sets are
//! bounded: verdicts and probe results are fixed lists, and per-server
//! series exist for at most [`MAX_SERVERS`] servers (the first seen; the
//! rest are counted under `server="other"`), so memory stays flat over
//! days whatever the traffic.

use crate::analyses::describe::metric_head;
use crate::analyses::registry::{ServerTallies, Tallies};
use crate::pipeline::event::{PacketEvent, Stats};
use crate::pipeline::summary::{FlowSummary, Verdict};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Servers with series of their own.
pub const MAX_SERVERS: usize = 50;

/// What one server's connections showed.
#[derive(Clone, Copy, Debug, Default)]
struct Server {
    flows: u64,
    /// Each analysis's per-server part.
    tallies: ServerTallies,
}

/// The numbers, as the exposition shows them.
#[derive(Debug, Default)]
pub struct Metrics {
    flows_seen: u64,
    flows_by_verdict: [u64; Verdict::ALL.len()],
    /// Each analysis's part.
    tallies: Tallies,
    segments: u64,
    bytes: u64,
    frames: u64,
    servers: HashMap<SocketAddr, Server>,
    other: Server,
    /// `kacap watch`: connection ends by cause, and by the dying socket's
    /// keepalive settings (at most [`MAX_SETTINGS`] label sets).
    ends: Option<Ends>,
}

/// `kacap watch`'s counters.
#[derive(Debug, Default)]
struct Ends {
    by_cause: std::collections::BTreeMap<&'static str, u64>,
    by_settings: std::collections::BTreeMap<(&'static str, u32, u32, u32, &'static str), u64>,
}

/// Distinct keepalive settings counted per cause at most.
const MAX_SETTINGS: usize = 64;

impl Metrics {
    fn packet(&mut self, ev: &PacketEvent) {
        self.segments += 1;
        self.bytes += u64::from(ev.wire_len);
    }

    fn flow(&mut self, f: &FlowSummary) {
        self.flows_by_verdict[f.verdict as usize] += 1;
        let tracked = self.servers.len() < MAX_SERVERS || self.servers.contains_key(&f.server);
        let s = if tracked {
            self.servers.entry(f.server).or_default()
        } else {
            &mut self.other
        };
        s.flows += 1;
        self.tallies.tally(&mut s.tallies, f);
    }

    /// `kacap watch`'s counters only (no capture's).
    pub fn for_watch() -> Metrics {
        Metrics {
            ends: Some(Ends::default()),
            ..Metrics::default()
        }
    }

    /// A connection's end, as the kernel told it (`kacap watch`).
    pub fn end(&mut self, e: &crate::host::kernel::ends::End) {
        let ends = self.ends.get_or_insert_with(Ends::default);
        *ends.by_cause.entry(e.cause.as_str()).or_default() += 1;
        if let Some((idle, intvl, cnt, source)) = e.owned.as_ref().and_then(|o| o.keepalive) {
            let key = (e.cause.as_str(), idle, intvl, cnt, source);
            if ends.by_settings.len() < MAX_SETTINGS || ends.by_settings.contains_key(&key) {
                *ends.by_settings.entry(key).or_default() += 1;
            }
        }
    }

    /// `kacap watch`'s exposition.
    fn render_ends(&self, ends: &Ends) -> String {
        use crate::host::kernel::ends::Cause;
        let mut o = String::new();
        metric_head(
            &mut o,
            "kacap_connection_ends_total",
            "counter",
            "TCP connections of this host that ended, by the kernel's cause (kacap watch).",
        );
        for cause in [
            Cause::KeepaliveTimeout,
            Cause::RetransmitTimeout,
            Cause::UserTimeout,
            Cause::ZeroWindowTimeout,
            Cause::PeerReset,
            Cause::LocalAbort,
            Cause::Refused,
            Cause::Closed,
        ] {
            let n = ends.by_cause.get(cause.as_str()).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "kacap_connection_ends_total{{cause=\"{}\"}} {n}",
                cause.as_str()
            );
        }
        metric_head(
            &mut o,
            "kacap_connection_end_keepalive_total",
            "counter",
            "Connections that ended with SO_KEEPALIVE on, by cause and their TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT (seconds, probes) and where those came from.",
        );
        for ((cause, idle, intvl, cnt, source), n) in &ends.by_settings {
            let _ = writeln!(
                o,
                "kacap_connection_end_keepalive_total{{cause=\"{cause}\",idle=\"{idle}\",interval=\"{intvl}\",count=\"{cnt}\",source=\"{source}\"}} {n}"
            );
        }
        o
    }

    /// The exposition (text format 0.0.4).
    pub fn render(&self) -> String {
        if let Some(ends) = &self.ends {
            return self.render_ends(ends);
        }
        let mut o = String::new();
        let head = metric_head;
        head(
            &mut o,
            "kacap_flows_total",
            "counter",
            "TCP connections reported, by verdict.",
        );
        for (v, n) in Verdict::ALL.iter().zip(self.flows_by_verdict) {
            let _ = writeln!(o, "kacap_flows_total{{verdict=\"{}\"}} {n}", v.as_str());
        }
        let reported: u64 = self.flows_by_verdict.iter().sum();
        head(
            &mut o,
            "kacap_flows_open",
            "gauge",
            "TCP connections seen and not reported yet (in memory).",
        );
        let _ = writeln!(
            o,
            "kacap_flows_open {}",
            self.flows_seen.saturating_sub(reported)
        );
        self.tallies.render(&mut o);
        head(
            &mut o,
            "kacap_tcp_segments_total",
            "counter",
            "TCP segments analyzed.",
        );
        let _ = writeln!(o, "kacap_tcp_segments_total {}", self.segments);
        head(
            &mut o,
            "kacap_bytes_total",
            "counter",
            "Bytes on the wire of the TCP segments analyzed.",
        );
        let _ = writeln!(o, "kacap_bytes_total {}", self.bytes);
        head(
            &mut o,
            "kacap_frames_total",
            "counter",
            "Frames read (updated at each snapshot and at the end).",
        );
        let _ = writeln!(o, "kacap_frames_total {}", self.frames);
        let mut servers: Vec<(String, &Server)> = self
            .servers
            .iter()
            .map(|(a, s)| (a.to_string(), s))
            .collect();
        servers.sort_by(|a, b| a.0.cmp(&b.0));
        if self.other.flows > 0 {
            servers.push(("other".to_string(), &self.other));
        }
        head(
            &mut o,
            "kacap_server_flows_total",
            "counter",
            "Reported connections per server (the first 50 servers; the rest as server=\"other\").",
        );
        for (name, s) in &servers {
            let _ = writeln!(
                o,
                "kacap_server_flows_total{{server=\"{name}\"}} {}",
                s.flows
            );
        }
        let servers: Vec<(&str, &ServerTallies)> = servers
            .iter()
            .map(|(name, s)| (name.as_str(), &s.tallies))
            .collect();
        Tallies::render_servers(&servers, &mut o);
        o
    }
}

/// The metrics kept as the run goes (`Outputs`): what the endpoint serves.
pub struct MetricsSink {
    metrics: Arc<Mutex<Metrics>>,
    /// Flows already counted as seen.
    seen: rustc_hash::FxHashSet<u32>,
}

impl MetricsSink {
    pub fn new(metrics: Arc<Mutex<Metrics>>) -> Self {
        MetricsSink {
            metrics,
            seen: Default::default(),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Metrics)) {
        if let Ok(mut m) = self.metrics.lock() {
            f(&mut m);
        }
    }

    pub fn packet(&mut self, ev: &PacketEvent) {
        let new = self.seen.insert(ev.flow_id);
        self.with(|m| {
            m.packet(ev);
            if new {
                m.flows_seen += 1;
            }
        });
    }

    pub fn flow(&mut self, f: &FlowSummary) {
        self.seen.remove(&f.id);
        self.with(|m| m.flow(f));
    }

    /// The frames read so far (at each snapshot and at the end).
    pub fn frames(&mut self, stats: &Stats) {
        self.with(|m| m.frames = stats.frames);
    }
}

/// Connections served at once; more get `503` at once.
const MAX_CLIENTS: usize = 16;
/// The most a request's head (request line and headers) may take; more
/// gets `431`.
const MAX_HEAD: usize = 8 * 1024;
/// The time a client has to send its whole head (not per read: a client
/// that drips a byte every few seconds is cut off at this), and to take
/// the answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `listener` until the process ends: each
/// connection on a thread of its own (at most [`MAX_CLIENTS`]), so a slow
/// or idle client delays no scrape; the capture never waits on any of it
/// (it only takes the lock to update the numbers).
pub fn serve(listener: TcpListener, metrics: Arc<Mutex<Metrics>>) {
    std::thread::spawn(move || {
        let busy = Arc::new(AtomicUsize::new(0));
        for mut conn in listener.incoming().flatten() {
            if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                busy.fetch_sub(1, Ordering::SeqCst);
                let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = reply(
                    &mut conn,
                    "503 Service Unavailable",
                    "text/plain",
                    "busy\n",
                    true,
                );
                continue;
            }
            let (metrics, done) = (Arc::clone(&metrics), Arc::clone(&busy));
            let spawned = std::thread::Builder::new()
                .name("kacap-metrics".into())
                .stack_size(128 * 1024)
                .spawn(move || {
                    let _ = answer(conn, &metrics);
                    done.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                busy.fetch_sub(1, Ordering::SeqCst);
            }
        }
    });
}

/// Why a request's head was not read.
enum Refused {
    /// Closed before anything came: nothing to answer.
    Gone,
    /// An answer to give (status line text).
    Status(&'static str),
}

/// Reads a request's head, up to its blank line, within [`DEADLINE`] and
/// [`MAX_HEAD`] bytes.
fn read_head(conn: &mut TcpStream) -> Result<Vec<u8>, Refused> {
    let start = Instant::now();
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let end =
            |h: &[u8]| h.windows(4).any(|w| w == b"\r\n\r\n") || h.windows(2).any(|w| w == b"\n\n");
        if end(&head) {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(Refused::Status("431 Request Header Fields Too Large"));
        }
        let left = DEADLINE.saturating_sub(start.elapsed());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return Err(Refused::Status("408 Request Timeout"));
        }
        match conn.read(&mut chunk) {
            Ok(0) if head.is_empty() => return Err(Refused::Gone),
            // Closed after a head without its blank line: answer it.
            Ok(0) => return Ok(head),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Refused::Status("408 Request Timeout")),
        }
    }
}

/// One request: the request line and headers, then the answer; the
/// connection is closed after it.
fn answer(mut conn: TcpStream, metrics: &Mutex<Metrics>) -> io::Result<()> {
    conn.set_write_timeout(Some(DEADLINE))?;
    let head = match read_head(&mut conn) {
        Ok(head) => head,
        Err(Refused::Gone) => return Ok(()),
        Err(Refused::Status(status)) => {
            reply(&mut conn, status, "text/plain", "GET /metrics\n", true)?;
            // A lingering close: what the client is still sending is read
            // and dropped for a moment (1 MiB, 1 s at most), so closing with
            // it unread does not reset the connection before the client has
            // read the answer.
            conn.shutdown(std::net::Shutdown::Write)?;
            conn.set_read_timeout(Some(Duration::from_secs(1)))?;
            let mut sink = [0u8; 4096];
            let start = Instant::now();
            let mut left = 1usize << 20;
            while left > 0 && start.elapsed() < Duration::from_secs(1) {
                match conn.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
            return Ok(());
        }
    };
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(request) = std::str::from_utf8(line) else {
        return reply(
            &mut conn,
            "400 Bad Request",
            "text/plain",
            "GET /metrics\n",
            true,
        );
    };
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.lock().map(|m| m.render()).unwrap_or_default(),
        ),
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "kacap: metrics at /metrics\n".to_string(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: /metrics\n".into(),
        ),
        _ if method.is_empty() || path.is_empty() => {
            ("400 Bad Request", "text/plain", "GET /metrics\n".into())
        }
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n".into(),
        ),
    };
    reply(&mut conn, status, kind, &body, method != "HEAD")
}

/// Writes one answer (`Connection: close`).
fn reply(
    conn: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &str,
    with_body: bool,
) -> io::Result<()> {
    // One write: `write!` on the socket itself sent each piece of the
    // head as a segment of its own.
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if with_body {
        answer.push_str(body);
    }
    conn.write_all(answer.as_bytes())?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_exposition_has_help_type_and_every_verdict() {
        let m = Metrics::default();
        let text = m.render();
        assert!(text.contains("# TYPE kacap_flows_total counter"));
        assert!(text.contains("kacap_flows_total{verdict=\"dead-peer\"} 0"));
        assert!(text.contains("kacap_dead_peer_detection_seconds_bucket{le=\"+Inf\"} 0"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn the_server_answers_a_scrape_and_nothing_else() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve(listener, Arc::new(Mutex::new(Metrics::default())));
        let get = |req: &str| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4"));
        assert!(ok.contains("kacap_flows_open 0"));
        assert!(get("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    }

    /// The red team's shapes: idle sockets and a client dripping a byte
    /// every second delay no scrape; a head that never ends is cut at
    /// `MAX_HEAD` (431) with memory bounded; a request line that is not
    /// UTF-8 gets 400, not a silent close.
    #[test]
    fn abuse_delays_no_scrape_and_every_request_gets_an_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve(listener, Arc::new(Mutex::new(Metrics::default())));
        let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let drip = std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            for b in b"GET /metrics HTTP/1.1\r\n" {
                if c.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1000));
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        let send = |req: &[u8]| {
            let mut c = TcpStream::connect(addr).unwrap();
            let _ = c.write_all(req);
            let mut out = Vec::new();
            let _ = c.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        };
        let t = Instant::now();
        let ok = send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let huge = vec![b'A'; 1 << 20];
        assert!(send(&huge).starts_with("HTTP/1.1 431"));
        assert!(send(b"GET /\xff\xfe HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400"));
        assert!(send(b"\r\n\r\n").starts_with("HTTP/1.1 400"));
        drop(idle);
        drip.join().unwrap();
    }
}
