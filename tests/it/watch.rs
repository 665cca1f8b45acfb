//! `kacap watch`: connections' ends as the kernel's tracepoints tell them,
//! checked on real deaths (root, private namespaces, this machine's
//! kernel): a keepalive timeout, a peer reset and a retransmission timeout
//! made by `kacap lab`; a keepalive death, a TCP_USER_TIMEOUT death, a
//! zero-window timeout and a local abort (SO_LINGER 0) with its peer's
//! reset made here.

use crate::live::live_allowed;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `kacap lab SCENARIO` with timers 1/1/2 and `extra`, run to its end.
fn lab_run(scenario: &str, extra: &[&str]) -> std::process::Output {
    Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .args([
            "lab",
            scenario,
            "--idle",
            "1",
            "--interval",
            "1",
            "--count",
            "2",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn lab(scenario: &str) {
    let out = lab_run(scenario, &["--json"]);
    assert!(
        out.status.success(),
        "lab {scenario}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kacap ARGS` (a watch), once it says it is watching.
fn start_watch(args: &[&str]) -> std::process::Child {
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("watching") {
        let mut l = String::new();
        if err.read_line(&mut l).unwrap() == 0 {
            let _ = watch.wait();
            panic!("kacap watch ended: {said}");
        }
        said.push_str(&l);
    }
    watch
}

/// A connection to `listener` with keepalive 1/1/2 on the client, given
/// 400 ms to be joined with the socket table, then its server silenced:
/// its kernel gives up about 3 s later. (client, server)
fn keepalive_death(listener: &std::net::TcpListener) -> (std::net::TcpStream, std::net::TcpStream) {
    use kacap::lab::traffic::{Timers, enable_keepalive, silence, wait_acked};
    use std::io::Write;
    let mut dying = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let t = Timers {
        idle: 1,
        interval: 1,
        count: 2,
    };
    enable_keepalive(&dying, t).unwrap();
    dying.write_all(b"hi").unwrap();
    wait_acked(&dying);
    // Joined meanwhile (a batch every 250 ms; slower on a loaded machine).
    std::thread::sleep(Duration::from_millis(1000));
    silence(&server).unwrap();
    (dying, server)
}

/// A connection to `listener` whose server never reads: the client, with
/// TCP_USER_TIMEOUT 2 s, writes until the server's window shuts, then the server is silenced so the client's
/// window probes go unanswered. (client, server)
fn zero_window_death(
    listener: &std::net::TcpListener,
) -> (std::net::TcpStream, std::net::TcpStream) {
    use kacap::lab::traffic::silence;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let set = |fd: i32, level: i32, name: i32, v: libc::c_int| {
        // SAFETY: a valid option of the right size on our socket.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        }
    };
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    set(
        client.as_raw_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        2000,
    );
    client.set_nonblocking(true).unwrap();
    let chunk = [b'x'; 4096];
    let mut written = 0usize;
    // Until the send buffer is full too: the window has shut by then.
    while written < 64 << 20 {
        match client.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("writing: {e}"),
        }
    }
    std::thread::sleep(Duration::from_millis(400)); // joined; window 0 acknowledged
    silence(&server).unwrap();
    (client, server)
}

#[test]
fn watch_names_four_deaths_the_kernel_reports() {
    use kacap::lab::traffic::{silence, wait_acked};
    use std::io::Write;
    if !live_allowed("watch") {
        return;
    }
    let _turn = crate::take_turns();
    // This thread, the watch and the sockets made here share a network
    // namespace of their own (the socket table is per namespace); the
    // labs make theirs (the tracepoints are the host's).
    kacap::lab::enter_private_network().unwrap();
    let metrics = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().to_string()
    };
    let watch = start_watch(&["watch", "--json", "--metrics", &metrics, "port", "2333"]);
    // A keepalive death here, 1/1/2, its owner this test process.
    let listener = std::net::TcpListener::bind("127.0.0.1:2333").unwrap();
    let (dying, server) = keepalive_death(&listener);
    let dying_at = dying.local_addr().unwrap().to_string();
    // A TCP_USER_TIMEOUT death here: 2 s, data outstanding, peer silenced.
    let mut timing = std::net::TcpStream::connect("127.0.0.1:2333").unwrap();
    let (timed, _) = listener.accept().unwrap();
    let ms: libc::c_int = 2000;
    // SAFETY: a valid option of the right size on our socket.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&timing),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&ms as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    timing.write_all(b"hi").unwrap();
    wait_acked(&timing);
    std::thread::sleep(Duration::from_millis(400)); // joined meanwhile
    silence(&timed).unwrap();
    timing.write_all(b"more").unwrap();
    let timing_at = timing.local_addr().unwrap().to_string();
    // A zero-window death here: the server never reads, its window shuts,
    // then it is silenced; the client's window probes go unanswered until
    // its TCP_USER_TIMEOUT (2 s).
    let (shut, shut_server) = zero_window_death(&listener);
    let shut_at = shut.local_addr().unwrap().to_string();
    lab("dead-peer");
    lab("peer-reboot");
    lab("retransmit-timeout");
    // A local abort: SO_LINGER 0, then close.
    let client = std::net::TcpStream::connect("127.0.0.1:2333").unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid option of the right size on our socket.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&client),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    let local = client.local_addr().unwrap().to_string();
    let accepted_at = accepted.local_addr().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(400)); // both joined meanwhile
    drop(client);
    std::thread::sleep(Duration::from_millis(500));
    drop((accepted, server, dying, timing, timed, shut, shut_server));
    // The ends, counted for Prometheus (settled 200 ms after each close).
    std::thread::sleep(Duration::from_millis(400));
    let exposition = {
        use std::io::Read;
        let mut c = std::net::TcpStream::connect(&metrics).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).unwrap();
        body
    };
    // A real Prometheus scrapes it too (CI installs it).
    let must = std::env::var("KACAP_LIVE_TESTS").is_ok_and(|v| v == "1");
    match crate::live::prometheus_reads(
        &metrics,
        "kacap_connection_ends_total%7Bcause%3D%22keepalive-timeout%22%7D",
        r#""result":[{"#,
    ) {
        Some(found) => assert!(found, "Prometheus did not scrape the ends in 30 s"),
        None => assert!(!must, "prometheus not found (apt-get install prometheus)"),
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success());
    let count = |series: &str| -> u64 {
        exposition
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {exposition}"))
    };
    for cause in [
        "keepalive-timeout",
        "peer-reset",
        "retransmit-timeout",
        "local-abort",
    ] {
        assert!(
            count(&format!("kacap_connection_ends_total{{cause=\"{cause}\"}}")) >= 1,
            "{exposition}"
        );
    }
    assert!(
        count(
            "kacap_connection_end_keepalive_total{cause=\"keepalive-timeout\",idle=\"1\",interval=\"1\",count=\"2\",source=\"socket\"}"
        ) >= 1,
        "{exposition}"
    );
    let ends: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // (Other tests' labs may end connections on port 2333 meanwhile.)
    let find = |cause: &str, local: Option<&str>| {
        ends.iter()
            .find(|e| e["cause"] == cause && local.is_none_or(|l| e["local"] == l))
            .unwrap_or_else(|| panic!("no {cause} from {local:?} in {ends:#?}"))
    };
    // The keepalive death made here (the labs' are theirs, and other
    // tests' may be seen too): cause, reason, errno, age, and its owner
    // and settings from the socket table.
    let mine = find("keepalive-timeout", Some(&dying_at));
    assert_eq!(
        (&mine["reason"], &mine["errno"], &mine["remote"]),
        (
            &"TCP_KEEPALIVE_TIMEOUT".into(),
            &110.into(),
            &"127.0.0.1:2333".into()
        ),
        "{mine}"
    );
    assert!(mine["age"].as_f64().unwrap() > 2.0, "{mine}");
    assert_eq!(mine["pid"], std::process::id(), "{mine}");
    assert_eq!(
        mine["keepalive"],
        serde_json::json!({"idle":1,"interval":1,"count":2,"source":"socket"}),
        "{mine}"
    );
    // The server's end of the SO_LINGER 0 abort: reset by its peer, owned
    // here.
    let reset = ends
        .iter()
        .find(|e| e["cause"] == "peer-reset" && e["local"] == accepted_at && e["remote"] == local)
        .unwrap_or_else(|| panic!("no peer-reset of {accepted_at} in {ends:#?}"));
    assert_eq!(
        (&reset["errno"], &reset["pid"], &reset["keepalive"]),
        (&104.into(), &std::process::id().into(), &Value::Null),
        "{reset}"
    );
    assert_eq!(find("peer-reset", None)["errno"], 104);
    let z = find("zero-window-timeout", Some(&shut_at));
    assert_eq!(
        (&z["errno"], &z["reason"], &z["pid"]),
        (&110.into(), &Value::Null, &std::process::id().into()),
        "{z}"
    );
    assert_eq!(z["user_timeout"], 2.0, "{z}");
    let r = find("retransmit-timeout", None);
    assert_eq!(r["errno"], 110, "{r}");
    assert!(r["retransmissions"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(
        find("local-abort", Some(&local))["pid"],
        std::process::id(),
        "the abort's owner"
    );
    let u = find("user-timeout", Some(&timing_at));
    assert_eq!(u["errno"], 110, "{u}");
    assert!(u["retransmissions"].as_u64().unwrap() >= 2, "{u}");
    assert_eq!(u["user_timeout"], 2.0, "{u}");
}

#[test]
fn watch_without_root_says_so_in_one_line() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let out = Command::new(assert_cmd::cargo::cargo_bin("kacap"))
            .arg("watch")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("run it as root") && err.lines().count() == 1,
            "{err}"
        );
        return;
    }
    // As root: drop to nobody for the child.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("kacap"))
        .arg("watch")
        .output();
    let Ok(out) = out else {
        eprintln!("skipped: no setpriv");
        return;
    };
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("run it as root") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn watch_takes_port_n_and_says_what_else_it_does_not() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .args(["watch", "host", "10.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("it takes 'port N'") && err.lines().count() == 1,
        "{err}"
    );
}

/// `--kernel` beside `kacap lab`: the kernel's account of each lab death
/// joined to the packet verdict, and they agree.
#[test]
fn kernel_beside_the_lab_agrees_with_the_packets() {
    if !live_allowed("kernel") {
        return;
    }
    for (scenario, cause) in [
        ("dead-peer", "keepalive-timeout"),
        ("peer-reboot", "peer-reset"),
    ] {
        let out = lab_run(scenario, &["--kernel", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let flow: Value = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| r["type"] == "flow")
            .unwrap();
        assert_eq!(flow["kernel"]["client"]["cause"], cause, "{flow}");
        assert_eq!(flow["kernel"]["agrees"], true, "{flow}");
    }
    let out = lab_run("dead-peer", &["--kernel"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ended: dead-peer")
            && text.contains(
                "— kernel agrees: keepalive timeout, RST sent (TCP_KEEPALIVE_TIMEOUT), errno 110"
            )
            && text.contains("The kernel's account: 1 agreed with the verdict, 0 contradicted it"),
        "{text}"
    );
}

#[test]
fn kernel_takes_a_live_capture_not_a_file() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .args([
            "-r",
            crate::fixture("dead-peer.pcap").to_str().unwrap(),
            "--kernel",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--kernel") && err.lines().count() == 1,
        "{err}"
    );
}

/// `--netns`: the tracepoints are the host's, so only the connections the
/// namespace's socket table showed are reported: a keepalive death of this
/// test's namespace is, a lab's (its own namespace) is not.
#[test]
fn watch_netns_keeps_that_namespaces_connections_only() {
    if !live_allowed("watch_netns") {
        return;
    }
    // Real timers, and the join within them: not beside a browser test.
    let _turn = crate::take_turns();
    kacap::lab::enter_private_network().unwrap();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let ns = format!("/proc/{}/task/{tid}/ns/net", std::process::id());
    let watch = start_watch(&["--netns", &ns, "watch", "--json", "port", "2333"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:2333").unwrap();
    let (dying, server) = keepalive_death(&listener);
    let mine = dying.local_addr().unwrap().to_string();
    // Elsewhere meanwhile: a lab's peer reset on port 2333 of its own
    // namespace (the tracepoints see it; the watch must not report it).
    assert!(lab_run("peer-reboot", &["--json"]).status.success());
    std::thread::sleep(Duration::from_secs(2));
    drop((server, dying));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let out = watch.wait_with_output().unwrap();
    let ends: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        ends.iter()
            .any(|e| e["cause"] == "keepalive-timeout" && e["local"] == mine.as_str()),
        "{ends:#?}"
    );
    assert!(
        ends.iter()
            .all(|e| e["local"] == mine.as_str() || e["remote"] == mine.as_str()),
        "an end from another namespace: {ends:#?}"
    );
}
