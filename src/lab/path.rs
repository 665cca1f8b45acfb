//! `kacap lab idle-timeout`'s path: client — router — server, each in a
//! network namespace of its own (as `fixtures/make-middlebox.sh` builds
//! it). The client's is the lab process's own (its main thread, where the
//! capture opens on `c0`); the router's and the server's belong to a
//! thread each (`unshare(CLONE_NEWNET)` is per thread), so they vanish with
//! the process however it ends — the host keeps nothing. The router NATs
//! with conntrack, whose established-connection timeout is the lab's idle
//! timeout, and drops what conntrack no longer knows (INVALID, with
//! `nf_conntrack_tcp_loose=0`): a middlebox that forgets idle connections.
//! The commands (`ip`, `iptables`, `sysctl` through /proc) run as children
//! of the thread whose namespace they configure: a child inherits it.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The server, as the client reaches it.
pub const SERVER: &str = "198.51.100.2:2333";
/// The capture's interface, in the client's namespace.
pub const CLIENT_IFACE: &str = "c0";

/// The router's and the server's threads, and how to end them.
pub struct Path {
    stop: mpsc::Sender<()>,
    server_stop: mpsc::Sender<()>,
    router: JoinHandle<()>,
    server: JoinHandle<()>,
}

impl Path {
    /// Ends the router and the server (their namespaces go with them).
    pub fn close(self) {
        drop(self.stop);
        drop(self.server_stop);
        let _ = self.router.join();
        let _ = self.server.join();
    }
}

/// Runs `cmd args` here (this thread's namespace); its failure in words.
fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e} (kacap lab idle-timeout needs iproute2 and iptables)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Writes a sysctl of this thread's namespace (through a child of it:
/// /proc/sys/net is the reader's namespace's).
fn sysctl(name: &str, value: &str) -> Result<(), String> {
    run("sysctl", &["-qw", &format!("{name}={value}")])
}

/// A thread in a network namespace of its own: `setup` runs there once
/// the namespace exists (given this thread's id, for `ip link … netns`),
/// then `body` until the path is closed.
fn in_namespace(
    name: &'static str,
    setup: impl FnOnce() -> Result<(), String> + Send + 'static,
    ready: mpsc::Sender<Result<i32, String>>,
    go: mpsc::Receiver<()>,
    body: impl FnOnce(mpsc::Receiver<()>) + Send + 'static,
    stop: mpsc::Receiver<()>,
) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(format!("lab-{name}"))
        .spawn(move || {
            // SAFETY: plain syscalls for this thread alone.
            let tid = unsafe {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    let _ = ready.send(Err(format!(
                        "cannot create the {name}'s network namespace: {}",
                        io::Error::last_os_error()
                    )));
                    return;
                }
                libc::gettid()
            };
            if let Err(e) = run("ip", &["link", "set", "lo", "up"]) {
                let _ = ready.send(Err(e));
                return;
            }
            let _ = ready.send(Ok(tid));
            // The veth toward it exists once told.
            if go.recv().is_err() {
                return;
            }
            let configured = setup();
            let failed = configured.is_err();
            let _ = ready.send(configured.map(|()| tid));
            if !failed {
                body(stop);
            }
        })
        .map_err(|e| format!("cannot start the {name}'s thread: {e}"))
}

/// Builds the path with a middlebox that forgets a connection idle for
/// `timeout` seconds, and starts the server (it answers each line with
/// `pong`).
pub fn build(timeout: u32) -> Result<Path, String> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (server_stop_tx, server_stop_rx) = mpsc::channel::<()>();
    // The server: its veth comes from the router.
    let (s_ready_tx, s_ready) = mpsc::channel();
    let (s_go, s_go_rx) = mpsc::channel();
    let (listening_tx, listening) = mpsc::channel::<()>();
    let server = in_namespace(
        "server",
        || {
            run("ip", &["addr", "add", "198.51.100.2/24", "dev", "s0"])?;
            run("ip", &["link", "set", "s0", "up"])?;
            run("ip", &["route", "add", "default", "via", "198.51.100.1"])
        },
        s_ready_tx,
        s_go_rx,
        move |stop| serve(stop, listening_tx),
        server_stop_rx,
    )?;
    let server_tid = s_ready
        .recv()
        .map_err(|_| "the server's thread ended".to_string())??;
    // The router: its veth toward the client comes from here.
    let (r_ready_tx, r_ready) = mpsc::channel();
    let (r_go, r_go_rx) = mpsc::channel();
    let t = timeout.to_string();
    let router = in_namespace(
        "router",
        move || {
            run(
                "ip",
                &[
                    "link",
                    "add",
                    "r1",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "s0",
                    "netns",
                    &server_tid.to_string(),
                ],
            )?;
            run("ip", &["addr", "add", "192.0.2.1/24", "dev", "r0"])?;
            run("ip", &["link", "set", "r0", "up"])?;
            run("ip", &["addr", "add", "198.51.100.1/24", "dev", "r1"])?;
            run("ip", &["link", "set", "r1", "up"])?;
            sysctl("net.ipv4.ip_forward", "1")?;
            run(
                "iptables",
                &[
                    "-t",
                    "nat",
                    "-A",
                    "POSTROUTING",
                    "-o",
                    "r1",
                    "-j",
                    "MASQUERADE",
                ],
            )?;
            // A rule that uses conntrack loads it for the namespace; then
            // its timeout can be set.
            run(
                "iptables",
                &[
                    "-A",
                    "FORWARD",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "INVALID",
                    "-j",
                    "DROP",
                ],
            )?;
            sysctl("net.netfilter.nf_conntrack_tcp_timeout_established", &t)?;
            sysctl("net.netfilter.nf_conntrack_tcp_loose", "0")
        },
        r_ready_tx,
        r_go_rx,
        |stop| {
            let _ = stop.recv();
        },
        stop_rx,
    )?;
    let router_tid = r_ready
        .recv()
        .map_err(|_| "the router's thread ended".to_string())??;
    // The client: this thread's namespace.
    run(
        "ip",
        &[
            "link",
            "add",
            CLIENT_IFACE,
            "type",
            "veth",
            "peer",
            "name",
            "r0",
            "netns",
            &router_tid.to_string(),
        ],
    )?;
    let _ = r_go.send(());
    r_ready
        .recv()
        .map_err(|_| "the router's thread ended".to_string())??;
    let _ = s_go.send(());
    s_ready
        .recv()
        .map_err(|_| "the server's thread ended".to_string())??;
    run("ip", &["addr", "add", "192.0.2.2/24", "dev", CLIENT_IFACE])?;
    run("ip", &["link", "set", CLIENT_IFACE, "up"])?;
    run("ip", &["route", "add", "default", "via", "192.0.2.1"])?;
    // No segmentation offloads: the capture shows the segments as sent.
    let _ = run(
        "ethtool",
        &["-K", CLIENT_IFACE, "tso", "off", "gso", "off", "gro", "off"],
    );
    // The server listens once its thread runs `serve`.
    listening
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| format!("the server could not listen on {SERVER}"))?;
    Ok(Path {
        stop: stop_tx,
        server_stop: server_stop_tx,
        router,
        server,
    })
}

/// The server: answers each line with `pong` on each connection, until the
/// path closes.
fn serve(stop: mpsc::Receiver<()>, listening: mpsc::Sender<()>) {
    let Ok(listener) = TcpListener::bind(SERVER) else {
        return;
    };
    let _ = listening.send(());
    let _ = listener.set_nonblocking(true);
    loop {
        match listener.accept() {
            Ok((mut conn, _)) => {
                let _ = conn.set_nonblocking(false);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 256];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 || conn.write_all(b"pong\n").is_err() {
                            break;
                        }
                    }
                });
            }
            Err(_) => {
                if !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
