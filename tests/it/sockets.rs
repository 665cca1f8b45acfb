//! `kacap sockets` and `--netns` on real sockets (root, as CI runs): a
//! Python program in a private network namespace of its own, with its own
//! keepalive sysctls, holds sockets with SO_KEEPALIVE off, on with the
//! namespace's sysctls, on with per-socket values, and with a
//! TCP_USER_TIMEOUT; kacap enters its namespace by PID.

use crate::kacap;
use crate::live::live_allowed;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

const HOLDER: &str = r#"
import os, socket, subprocess, sys
subprocess.check_call(["ip", "link", "set", "lo", "up"])
# This namespace's own sysctls (the host keeps its own).
for name, value in [("tcp_keepalive_time", 600), ("tcp_keepalive_intvl", 30), ("tcp_keepalive_probes", 4)]:
    open(f"/proc/sys/net/ipv4/{name}", "w").write(str(value))
TCP_USER_TIMEOUT = 18
srv = socket.create_server(("127.0.0.1", 2333))
def client(opts):
    c = socket.create_connection(("127.0.0.1", 2333))
    for level, name, value in opts:
        c.setsockopt(level, name, value)
    a, _ = srv.accept()
    return c, a
T = socket.IPPROTO_TCP
keep = []
keep += client([])                                                     # 1: keepalive off
keep += client([(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)])           # 2: on, sysctls
keep += client([(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),            # 3: on, own values
                (T, socket.TCP_KEEPIDLE, 20), (T, socket.TCP_KEEPINTVL, 5), (T, socket.TCP_KEEPCNT, 3)])
keep += client([(T, TCP_USER_TIMEOUT, 10000)])                          # 4: a user timeout
ports = [keep[i].getsockname()[1] for i in (0, 2, 4, 6)]
print("ready", os.getpid(), *ports, flush=True)
sys.stdin.read()
"#;

/// The holder, in a private network namespace; its PID and client ports.
struct Holder {
    child: Child,
    pid: u32,
    ports: Vec<u16>,
}

impl Holder {
    fn start() -> Holder {
        let mut child = Command::new("unshare")
            .args(["--net", "--", "python3", "-c", HOLDER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare + python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"ready"), "the holder said {line:?}");
        Holder {
            pid: words[1].parse().unwrap(),
            ports: words[2..].iter().map(|p| p.parse().unwrap()).collect(),
            child,
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn records(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn client(records: &[Value], port: u16) -> &Value {
    records
        .iter()
        .find(|r| r["local"] == format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("no socket 127.0.0.1:{port} in {records:?}"))
}

#[test]
fn exact_values_their_sources_and_the_owner_in_another_namespace() {
    if !live_allowed("sockets") {
        return;
    }
    let h = Holder::start();
    let pid = h.pid.to_string();
    let out = kacap()
        .args(["--netns", &pid, "sockets", "port", "2333", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = records(&out.stdout);
    assert_eq!(r[0]["type"], "netns");
    assert_eq!(r[0]["sysctl"]["tcp_keepalive_time"], 600);
    assert_eq!(r[0]["sysctl"]["tcp_keepalive_probes"], 4);
    // The host's differ (the test runs in the host's namespace).
    assert!(r[0]["host_sysctl"].is_object(), "{}", r[0]);
    // 1 listener + 4 clients + 4 accepted.
    assert_eq!(r.len(), 1 + 9, "{r:?}");
    for s in &r[1..] {
        assert_eq!(s["pid"], h.pid, "{s}");
        assert_eq!(s["comm"], "python3");
        assert_eq!(s["exact"], true, "{s}");
    }
    let off = client(&r, h.ports[0]);
    assert_eq!(off["keepalive"], false, "{off}");
    let sysctl = client(&r, h.ports[1]);
    assert_eq!(sysctl["keepalive"], true);
    assert_eq!(
        (
            sysctl["idle"].as_u64(),
            sysctl["interval"].as_u64(),
            sysctl["count"].as_u64()
        ),
        (Some(600), Some(30), Some(4))
    );
    assert_eq!(
        sysctl["source"],
        serde_json::json!({"idle":"sysctl","interval":"sysctl","count":"sysctl"})
    );
    assert_eq!(sysctl["timer"]["kind"], "keepalive");
    let own = client(&r, h.ports[2]);
    assert_eq!(
        (
            own["idle"].as_u64(),
            own["interval"].as_u64(),
            own["count"].as_u64()
        ),
        (Some(20), Some(5), Some(3))
    );
    assert_eq!(
        own["source"],
        serde_json::json!({"idle":"socket","interval":"socket","count":"socket"})
    );
    let ut = client(&r, h.ports[3]);
    assert_eq!(ut["user_timeout"], 10.0);
    assert_eq!(ut["keepalive"], false);

    // In words: one line says why no probe will ever come.
    let text = kacap()
        .args(["--netns", &pid, "sockets", "port", "2333"])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success());
    // Six connections with keepalive off (four accepted, two clients): one line.
    assert!(
        t.contains(&format!("pid {pid} python3, 6 connections (")),
        "{t}"
    );
    assert!(
        t.contains("no keepalive probe will ever come: SO_KEEPALIVE is off on these sockets"),
        "{t}"
    );
    // One connection: one line about it.
    let one = kacap()
        .args([
            "--netns",
            &pid,
            "sockets",
            "src",
            "port",
            &h.ports[0].to_string(),
        ])
        .output()
        .unwrap();
    let one = String::from_utf8_lossy(&one.stdout);
    assert!(
        one.contains(&format!("127.0.0.1:{} → 127.0.0.1:2333 (pid {pid} python3): no keepalive probe will ever come: SO_KEEPALIVE is off on this socket", h.ports[0])),
        "{one}"
    );
    assert!(
        t.contains("the host's tcp_keepalive_time is 7200 but this namespace's is 600")
            || !t.contains("the host's namespace differs: tcp_keepalive_time 7200"),
        "{t}"
    );
    assert!(
        t.contains("after 20 s idle (TCP_KEEPIDLE, set on the socket)"),
        "{t}"
    );
}

#[test]
fn without_privileges_values_are_inferred_and_said_so() {
    if !live_allowed("sockets") {
        return;
    }
    let h = Holder::start();
    let ns = format!("--net=/proc/{}/ns/net", h.pid);
    // kacap as nobody inside the holder's namespace: the socket table is
    // readable, the owner's descriptors are not.
    let out = Command::new("nsenter")
        .args([
            &ns,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(assert_cmd::cargo::cargo_bin("kacap"))
        .args(["sockets", "port", "2333", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = records(&out.stdout);
    let sysctl = client(&r, h.ports[1]);
    assert_eq!(sysctl["exact"], false, "{sysctl}");
    assert_eq!(
        sysctl["keepalive"], true,
        "its keepalive timer runs: {sysctl}"
    );
    assert!(sysctl["why"].as_str().unwrap().contains("root"), "{sysctl}");
    let off = client(&r, h.ports[0]);
    assert!(
        off["keepalive"].is_null(),
        "unknown without the options: {off}"
    );
    // --netns itself needs root: one line, exit 2.
    let denied = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("kacap"))
        .args(["--netns", &h.pid.to_string(), "sockets"])
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), Some(2));
    let err = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("needs root"), "{err}");
}

#[test]
fn netns_errors_are_one_line_before_anything_happens() {
    let out = kacap()
        .args(["--netns", "no-such-ns-kacap", "sockets"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no named network namespace no-such-ns-kacap"),
        "{err}"
    );
    let out = kacap()
        .args(["--netns", "1", "-r", "fixtures/healthy.pcap"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = kacap().args(["sockets", "port", "http"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a port"));
}

const PROBER: &str = r#"
import os, socket, subprocess, sys
subprocess.check_call(["ip", "link", "set", "lo", "up"])
srv = socket.create_server(("127.0.0.1", 2333))
c = socket.create_connection(("127.0.0.1", 2333))
c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
a, _ = srv.accept()
print("ready", os.getpid(), flush=True)
sys.stdin.read()
"#;

#[test]
fn netns_pid_captures_inside_a_containers_namespace_with_its_sockets_joined() {
    if !live_allowed("sockets") {
        return;
    }
    let mut child = Command::new("unshare")
        .args(["--net", "--", "python3", "-c", PROBER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    // The host's `lo` has none of this traffic: only the namespace's does.
    let kacap = Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .args([
            "--netns",
            &pid.to_string(),
            "-i",
            "lo",
            "--sockets",
            "--json",
            "port",
            "2333",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let _ = child.kill();
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(kacap.id() as i32, libc::SIGINT) };
    let out = kacap.wait_with_output().unwrap();
    assert!(out.status.success());
    let r = records(&out.stdout);
    let probes = r.iter().filter(|v| v["kind"] == "keepalive").count();
    assert!(probes >= 2, "{r:?}");
    let flow = r.iter().find(|v| v["type"] == "flow").unwrap();
    assert_eq!(flow["socket"]["pid"], pid, "{flow}");
    assert_eq!(flow["socket"]["idle"], 1);
    assert_eq!(flow["socket"]["source"]["idle"], "socket");
}
