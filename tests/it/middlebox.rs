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

/// Sets the IPv4 TTL of an Ethernet frame (and its header checksum).
fn set_ttl(frame: &mut [u8], ttl: u8) {
    frame[14 + 8] = ttl;
    frame[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = kacap::craft::checksum(&[&frame[14..34]]);
    frame[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
}

/// The field's shape of an AWS NAT Gateway (350 s, then a RST on the next
/// packet) between a client and its database, seen at the client: a pool
/// connection that paused 300 s and 340 s and lived, one that paused 360 s
/// and whose next query the NAT answered with a RST, one with Linux's
/// default keepalive (7200 s) whose first probe the NAT answered the same
/// way, and a cache on the LAN (no NAT) busy every 30 s meanwhile. The
/// server's segments come 14 hops away (TTL 50), the NAT's RSTs one (63).
#[test]
fn a_bound_round_350_s_names_the_aws_defaults() {
    use kacap::craft::{Conn, Dir::*, Link, PcapOpts, RST};
    let db = "203.0.113.10:5432";
    let far = |c: &mut Conn, from: usize| {
        for (_, f) in &mut c.frames[from..] {
            if f[14 + 12..14 + 16] == [203, 0, 113, 10] {
                set_ttl(f, 50);
            }
        }
    };
    let injected = |c: &mut Conn| {
        let n = c.next[0];
        c.raw(Server, RST, n, 0, 0, &[], &[]);
        let last = c.frames.len() - 1;
        set_ttl(&mut c.frames[last].1, 63);
    };
    let mut pool = Conn::new("10.0.1.5:40001", db, Link::Ethernet);
    pool.handshake(1000, 2000)
        .exchange(Client, b"SELECT 1")
        .exchange(Server, b"1 row")
        .wait(300.0)
        .exchange(Client, b"SELECT 2")
        .exchange(Server, b"1 row")
        .wait(340.0)
        .exchange(Client, b"SELECT 3")
        .exchange(Server, b"1 row");
    far(&mut pool, 0);
    let mut lost = Conn::new("10.0.1.5:40002", db, Link::Ethernet);
    lost.wait(5.0)
        .handshake(3000, 4000)
        .exchange(Client, b"SELECT 1")
        .exchange(Server, b"1 row")
        .wait(360.0)
        .seg(Client, kacap::craft::PSH | kacap::craft::ACK, b"SELECT 2");
    far(&mut lost, 0);
    injected(&mut lost);
    let mut kept = Conn::new("10.0.1.5:40003", db, Link::Ethernet);
    kept.wait(10.0)
        .handshake(5000, 6000)
        .exchange(Client, b"LISTEN jobs")
        .exchange(Server, b"ok")
        .wait(7200.0)
        .probe(Client, 0);
    far(&mut kept, 0);
    injected(&mut kept);
    let mut cache = Conn::new("10.0.1.5:40100", "10.0.1.9:6379", Link::Ethernet);
    cache.handshake(7000, 8000);
    for _ in 0..250 {
        cache
            .wait(30.0)
            .exchange(Client, b"GET k")
            .exchange(Server, b"$1 v");
    }
    let mut all = Conn::new("10.0.1.5:1", db, Link::Ethernet);
    all.frames = kacap::craft::merge(vec![pool.frames, lost.frames, kept.frames, cache.frames]);
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("nat-350.pcap");
    all.write_pcap(&path, PcapOpts::default());
    let j = json(&path, &[]);
    let verdicts: Vec<&Value> = j.flows.iter().map(|f| &f["verdict"]).collect();
    assert_eq!(
        verdicts,
        [
            "idle-timeout",
            "idle-timeout",
            "no-keepalive",
            "no-keepalive"
        ]
        .map(Value::from)
        .iter()
        .collect::<Vec<_>>(),
        "{:#?}",
        j.flows
    );
    let out = text(&["-r", path.to_str().unwrap(), "--summary"]);
    assert!(
        out.contains("its idle timeout is between 340s and 360s"),
        "{out}"
    );
    assert!(
        out.contains("well-known defaults in that range: AWS NAT Gateway's, Network Load Balancer's and Network Firewall's 350s (a configured value can be anything"),
        "{out}"
    );
    // The HTML report's per-server bands name them too.
    let html = dir.path().join("r.html");
    text(&[
        "-r",
        path.to_str().unwrap(),
        "--summary",
        "--html",
        html.to_str().unwrap(),
    ]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("AWS NAT Gateway"),
        "no suspects in the report"
    );
    let explain = text(&["-r", path.to_str().unwrap(), "--explain"]);
    // The keepalive connection: what to set, and to what.
    assert!(
        explain.contains("Keepalive was on, but too late: set TCP_KEEPIDLE below the middlebox's timeout. This connection alone shows only that the timeout is under 2 h"),
        "{explain}"
    );
}
