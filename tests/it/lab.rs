//! `kacap lab`: each scenario live, in its own network namespace (root).

use crate::live::live_allowed;
use crate::{approx, kacap};
use serde_json::Value;

/// Runs `kacap lab SCENARIO --json` with 1 s timers and `count` probes.
fn lab(scenario: &str, count: u32) -> (Vec<Value>, Value) {
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
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let flows: Vec<&Value> = records.iter().filter(|r| r["type"] == "flow").collect();
    assert_eq!(
        flows.len(),
        1,
        "one connection in a private namespace: {flows:?}"
    );
    let flow = flows[0].clone();
    (records, flow)
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
fn lab_without_root_points_to_the_fixtures() {
    let Some(out) = crate::unprivileged(&["lab", "dead-peer"]) else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("needs root") && err.contains("kacap -r fixtures/dead-peer.pcap --explain"),
        "{err}"
    );
}
