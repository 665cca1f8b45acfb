//! Middlebox idle timeouts, on the fixtures from fixtures/make-middlebox.sh
//! (conntrack NAT with a 5 s timeout; pauses of 2 s, 3 s, then 7 s).

use crate::{approx, fixture, json, text};
use serde_json::Value;

fn idle(f: &Value) -> &Value {
    &f["idle_timeout"]
}

#[test]
fn silent_drop_kills_after_the_7s_pause() {
    let j = json(&fixture("idle-drop.pcap"), &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "idle-timeout");
    approx(&idle(f)["survived"], 3.0, 0.05);
    approx(&idle(f)["killed_after"], 7.0, 0.05);
    assert_eq!(idle(f)["cause"], "silent-drop");
    assert!(j.packets.iter().all(|p| p.get("injected").is_none()));
}

#[test]
fn injected_rst_is_told_from_the_peer() {
    let j = json(&fixture("idle-rst.pcap"), &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "idle-timeout");
    approx(&idle(f)["survived"], 3.0, 0.05);
    approx(&idle(f)["killed_after"], 7.0, 0.05);
    assert_eq!(idle(f)["cause"], "injected-rst");
    let rst = j.packets.iter().find(|p| p["kind"] == "rst").unwrap();
    assert_eq!(rst["injected"], true);
    // A peer that lost the connection answers with a RST of its own: not injected.
    let reboot = json(&fixture("peer-reboot.pcap"), &[]);
    let rst = reboot.packets.iter().find(|p| p["kind"] == "rst").unwrap();
    assert!(rst.get("injected").is_none(), "{rst}");
    assert_eq!(reboot.flow()["verdict"], "peer-reset");
    assert_eq!(idle(reboot.flow())["cause"], Value::Null);
}

#[test]
fn keepalive_below_the_timeout_bridges_the_pause() {
    let j = json(&fixture("idle-keepalive.pcap"), &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "alive");
    assert_eq!(idle(f)["killed_after"], Value::Null);
    assert_eq!(idle(f)["cause"], Value::Null);
    approx(&f["keepalive"]["idle"], 2.0, 0.1);
}

#[test]
fn other_fixtures_keep_their_verdicts() {
    // Unanswered probes stay a dead peer: nothing tells a vanished peer
    // from a silent middlebox there.
    assert_eq!(
        json(&fixture("dead-peer.pcap"), &[]).flow()["verdict"],
        "dead-peer"
    );
    let healthy = json(&fixture("healthy.pcap"), &[]);
    approx(&idle(healthy.flow())["survived"], 2.0, 0.1);
}

#[test]
fn advice_bounds_the_timeout_and_cites_the_keepalive_flow() {
    let out = text(&[
        "-r",
        fixture("idle-mixed.pcap").to_str().unwrap(),
        "--summary",
    ]);
    let advice = &out[out.find("A middlebox").expect("advice")..];
    insta::assert_snapshot!(advice);
    assert!(advice.contains("between 3.00s and 7.00s"), "{advice}");
    assert!(advice.contains("proof the fix works: flow 2"), "{advice}");
    let explain = text(&[
        "-r",
        fixture("idle-drop.pcap").to_str().unwrap(),
        "--summary",
        "--explain",
    ]);
    assert!(
        explain.contains("The connection died in a middlebox, not at the peer"),
        "{explain}"
    );
    assert!(
        explain.contains("A middlebox toward 198.51.100.2:2333"),
        "{explain}"
    );
}
