//! `kacap watch`: connections' ends as the kernel's tracepoints tell them,
//! checked on real deaths (root, private namespaces, this machine's
//! kernel): a keepalive timeout, a peer reset and a retransmission timeout
//! made by `kacap lab`, and a local abort (SO_LINGER 0) made here.

use crate::live::live_allowed;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn lab(scenario: &str) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .args([
            "lab",
            scenario,
            "--idle",
            "1",
            "--interval",
            "1",
            "--count",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lab {scenario}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn watch_names_four_deaths_the_kernel_reports() {
    if !live_allowed("watch") {
        return;
    }
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .args(["watch", "--json", "port", "2333"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it watches.
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
    lab("dead-peer");
    lab("peer-reboot");
    lab("retransmit-timeout");
    // A local abort: SO_LINGER 0, then close, in a namespace of this thread.
    kacap::lab::enter_private_network().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:2333").unwrap();
    let client = std::net::TcpStream::connect("127.0.0.1:2333").unwrap();
    let (server, _) = listener.accept().unwrap();
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
    drop(client);
    std::thread::sleep(Duration::from_millis(500));
    drop(server);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success());
    let ends: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |cause: &str| {
        ends.iter()
            .find(|e| e["cause"] == cause)
            .unwrap_or_else(|| panic!("no {cause} in {ends:#?}"))
    };
    let k = find("keepalive-timeout");
    assert_eq!(
        (&k["reason"], &k["errno"]),
        (&"TCP_KEEPALIVE_TIMEOUT".into(), &110.into()),
        "{k}"
    );
    assert_eq!(k["remote"], "127.0.0.1:2333");
    assert!(k["age"].as_f64().unwrap() > 2.0, "{k}");
    assert_eq!(find("peer-reset")["errno"], 104);
    let r = find("retransmit-timeout");
    assert_eq!(r["errno"], 110, "{r}");
    assert!(r["retransmissions"].as_u64().unwrap() >= 2, "{r}");
    // (Other tests' labs may end connections on port 2333 meanwhile.)
    assert!(
        ends.iter()
            .any(|e| e["cause"] == "local-abort" && e["local"] == local.as_str()),
        "no local-abort from {local} in {ends:#?}"
    );
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
