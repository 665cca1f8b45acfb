//! `kacap lab`: each scenario live, in its own network namespace (root).

use crate::live::live_allowed;
use crate::{approx, kacap};
use serde_json::Value;

/// Runs `kacap lab SCENARIO --json` with 1 s timers and `count` probes;
/// returns its records and its one connection's flow record.
fn lab(scenario: &str, count: u32) -> (Vec<Value>, Value) {
    let records = lab_records(scenario, count);
    let flows: Vec<&Value> = records.iter().filter(|r| r["type"] == "flow").collect();
    assert_eq!(
        flows.len(),
        1,
        "one connection in a private namespace: {flows:?}"
    );
    let flow = flows[0].clone();
    (records, flow)
}

/// The records of `kacap lab SCENARIO --json` with 1 s timers.
fn lab_records(scenario: &str, count: u32) -> Vec<Value> {
    let out = kacap()
        .args([
            "lab",
            scenario,
            "--json",
            "--idle",
            "1",
            "--interval",
            "1",
            "--count",
        ])
        .arg(count.to_string())
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kacap lab {scenario} failed: {err}");
    assert!(err.starts_with(&format!("kacap lab {scenario}: ")), "{err}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn lab_healthy() {
    if !live_allowed("lab_healthy") {
        return;
    }
    let (_, f) = lab("healthy", 2);
    assert_eq!(f["verdict"], "alive");
    assert_eq!(f["prober"], "client");
    assert_eq!(f["probes_answered"], 2);
    approx(&f["keepalive"]["idle"], 1.0, 0.25);
    assert_eq!(f["server"], "127.0.0.1:2333");
}

#[test]
fn lab_dead_peer_infers_the_configured_timers() {
    if !live_allowed("lab_dead_peer") {
        return;
    }
    let (_, f) = lab("dead-peer", 3);
    assert_eq!(f["verdict"], "dead-peer");
    approx(&f["keepalive"]["idle"], 1.0, 0.25);
    approx(&f["keepalive"]["interval"], 1.0, 0.25);
    assert_eq!(f["keepalive"]["count"], 3);
}

#[test]
fn lab_peer_reboot() {
    if !live_allowed("lab_peer_reboot") {
        return;
    }
    let (records, f) = lab("peer-reboot", 2);
    assert_eq!(f["verdict"], "peer-reset");
    assert_eq!(f["probes_rst"], 1);
    approx(&f["keepalive"]["idle"], 1.0, 0.25);
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "rst" && r["from"] == "server")
    );
}

#[test]
fn lab_server_side() {
    if !live_allowed("lab_server_side") {
        return;
    }
    let (_, f) = lab("server-side", 2);
    assert_eq!(f["verdict"], "alive");
    assert_eq!(f["prober"], "server");
    approx(&f["keepalive"]["idle"], 1.0, 0.25);
}

#[test]
fn lab_text_output_explains_and_draws() {
    if !live_allowed("lab_text") {
        return;
    }
    let out = kacap()
        .args(["lab", "peer-reboot", "--idle", "1", "--color", "never"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("keepalive probe #1 from client after 1."),
        "{text}"
    );
    assert!(text.contains("Probe #1 was answered by RST"), "{text}");
    assert!(text.contains("flow 1 sequence diagram"), "{text}");
}

#[test]
fn lab_without_root_points_to_the_bundled_replay() {
    let Some(out) = crate::unprivileged(&["lab", "dead-peer"]) else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("needs root") && err.contains("kacap lab dead-peer --replay"),
        "{err}"
    );
    // The hint works as given, without root, from any directory.
    let Some(out) = crate::unprivileged(&["lab", "dead-peer", "--replay", "--summary"]) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("┆ dead-peer"));
}

#[test]
fn every_scenario_replays_to_its_verdict_from_anywhere() {
    for (name, verdict) in [
        ("healthy", "alive"),
        ("dead-peer", "dead-peer"),
        ("peer-reboot", "peer-reset"),
        ("server-side", "alive"),
        ("acks-dropped", "acks-dropped"),
        ("retransmit-timeout", "retransmit-timeout"),
        ("stale-pool", "stale-connection"),
        ("idle-timeout", "idle-timeout"),
    ] {
        let out = crate::kacap()
            .current_dir("/")
            .args(["lab", name, "--replay", "--json", "--summary"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(&format!("\"verdict\":\"{verdict}\"")),
            "{name}: {text}"
        );
    }
    let out = crate::kacap()
        .current_dir("/")
        .args(["lab", "dead-peer", "--replay"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("flow 1 sequence diagram"),
        "the replay explains: {text}"
    );
}

#[test]
fn lab_acks_dropped_and_retransmit_timeout() {
    if !live_allowed("lab_acks_dropped") {
        return;
    }
    let (_, f) = lab("acks-dropped", 2);
    assert_eq!(f["verdict"], "acks-dropped");
    assert_eq!(f["probes_answered"], 2);
    approx(&f["keepalive"]["interval"], 1.0, 0.25);
    assert_eq!(f["keepalive"]["count"], 2);
    // The capture goes on through the silence after the last
    // retransmission: its end is when it stops, and no connection of the
    // lab's own plumbing shows up.
    let flows: Vec<Value> = lab_records("retransmit-timeout", 2)
        .into_iter()
        .filter(|r| r["type"] == "flow")
        .collect();
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!(flows[0]["verdict"], "retransmit-timeout", "{flows:?}");
    assert!(flows[0]["retransmit"]["count"].as_u64().unwrap() >= 2);
    assert_eq!(flows[0]["idle_timeout"]["killed_after"], Value::Null);
}

/// The live field case: kacap starts on a connection that is already idle
/// (no handshake, probes 11 s apart, the peer silenced). Every packet record
/// comes out within 2 s of its capture; the first probe, shown before
/// anything could tell what it was, is revised into a probe.
#[test]
fn live_on_an_already_idle_connection_shows_each_packet_in_time_and_revises_it() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};
    if !live_allowed("live_on_an_already_idle_connection") {
        return;
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kacap"))
        .args([
            "lab",
            "dead-peer",
            "--json",
            "--idle",
            "5",
            "--interval",
            "3",
            "--count",
            "2",
            "--capture-after",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut records = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let r: Value = serde_json::from_str(&line).unwrap();
        if r["type"] == "packet" {
            let late = now - r["ts"].as_f64().unwrap();
            assert!(
                late < 2.0,
                "packet {} came out {late:.2} s after its capture",
                r["n"]
            );
        }
        records.push(r);
        assert!(started.elapsed().as_secs() < 80, "kacap lab did not end");
    }
    assert!(child.wait().unwrap().success());
    let of = |t: &str| -> Vec<&Value> { records.iter().filter(|r| r["type"] == t).collect() };
    let packets = of("packet");
    // The two probes, shown at once as what they looked like then (ACKs);
    // the RST's sequence number shows they were probes: both revised.
    assert_eq!(packets[0]["kind"], "ack", "{packets:?}");
    assert_eq!(packets[1]["kind"], "ack", "{packets:?}");
    assert_eq!(packets[2]["kind"], "rst");
    let revised = of("revise");
    assert_eq!(revised.len(), 2, "{records:?}");
    for (i, r) in revised.iter().enumerate() {
        assert_eq!(r["n"], packets[i]["n"]);
        assert_eq!(r["kind"], "keepalive");
        assert_eq!(r["probe"], i as u64 + 1);
    }
    assert_eq!(revised[0]["idle"], Value::Null);
    approx(&revised[1]["idle"], 3.0, 0.3);
    // The revisions come before the RST that showed them.
    let at = |t: &Value| records.iter().position(|r| r == t).unwrap();
    assert!(at(revised[1]) < at(packets[2]));
    let flow = of("flow")[0];
    assert_eq!(flow["verdict"], "dead-peer");
    approx(&flow["keepalive"]["interval"], 3.0, 0.3);
    assert_eq!(flow["keepalive"]["count"], 2);
}

/// The HTTP keep-alive pool race, live: the pooled connection's request is
/// answered by RST after the server's keep-alive close, the retry goes on a
/// new connection; `-w` keeps it, and the file replays to the same
/// verdicts. The lab leaves nothing behind: its namespace went with it.
#[test]
fn lab_stale_pool_live_and_its_file() {
    if !live_allowed("lab_stale_pool") {
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("y.pcap");
    let before = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let verdicts = |flows: Vec<Value>| -> Vec<String> {
        flows
            .iter()
            .map(|r| r["verdict"].as_str().unwrap().to_string())
            .collect()
    };
    let live = verdicts(lab_written("stale-pool", 1, &file));
    assert_eq!(live, ["stale-connection", "no-keepalive"], "{live:?}");
    assert_eq!(verdicts(replayed(&file)), live);
    // Nothing of the lab's on this host's port 2333 (0x091D) afterwards.
    let after = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let ours = |t: &str| t.lines().filter(|l| l.contains(":091D ")).count();
    assert_eq!(ours(&after), ours(&before), "{after}");
}

/// A middlebox idle timeout, live: client, router (NAT, conntrack timeout
/// 2 s) and server in namespaces of their own; the pause of 1 s lives, the
/// pause of 4 s kills; `-w` keeps it and replays to the same verdict; the
/// host's links, named namespaces and firewall rules are as before.
#[test]
fn lab_idle_timeout_live_and_its_file() {
    if !live_allowed("lab_idle_timeout") {
        return;
    }
    let host = || {
        let run = |cmd: &str, args: &[&str]| {
            std::process::Command::new(cmd)
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        (
            run("ip", &["-o", "link"]),
            run("ip", &["netns", "list"]),
            run("iptables", &["-S"]),
            run("iptables", &["-t", "nat", "-S"]),
        )
    };
    let before = host();
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("x.pcap");
    let live = lab_written("idle-timeout", 2, &file);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["verdict"], "idle-timeout", "{live:?}");
    approx(&live[0]["idle_timeout"]["survived"], 1.0, 0.1);
    approx(&live[0]["idle_timeout"]["killed_after"], 4.0, 0.1);
    assert_eq!(live[0]["idle_timeout"]["cause"], "silent-drop");
    assert_eq!(replayed(&file)[0]["verdict"], "idle-timeout");
    assert_eq!(host(), before, "the lab left something on the host");
}

/// The flow records of `kacap lab SCENARIO --json --idle IDLE -w FILE`.
fn lab_written(scenario: &str, idle: u32, file: &std::path::Path) -> Vec<Value> {
    let out = kacap()
        .args(["lab", scenario, "--json", "--idle", &idle.to_string(), "-w"])
        .arg(file)
        .timeout(std::time::Duration::from_secs(40))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    flow_records(&out.stdout)
}

/// The flow records of `kacap -r FILE --json --summary`.
fn replayed(file: &std::path::Path) -> Vec<Value> {
    let out = kacap()
        .arg("-r")
        .arg(file)
        .args(["--json", "--summary"])
        .output()
        .unwrap();
    flow_records(&out.stdout)
}

fn flow_records(json_lines: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(json_lines)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "flow")
        .collect()
}
