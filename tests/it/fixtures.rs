//! The real captures from fixtures/make-fixtures.py (kernel traffic on
//! loopback, TCP_KEEPIDLE 2, TCP_KEEPINTVL 1, TCP_KEEPCNT 2).

use crate::{approx, fixture, json, text};
use serde_json::Value;

#[test]
fn healthy_probes_are_answered_and_the_peer_is_alive() {
    let j = json(&fixture("healthy.pcap"), &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "alive");
    assert_eq!(f["handshake"], "complete");
    assert_eq!(f["prober"], "client");
    assert_eq!(f["probes"], 2);
    assert_eq!(f["probes_answered"], 2);
    assert_eq!(f["probes_unanswered"], 0);
    assert_eq!(f["probes_rst"], 0);
    approx(&f["keepalive"]["idle"], 2.0, 0.1);
    assert_eq!(f["keepalive"]["interval"], Value::Null);
    assert_eq!(f["keepalive"]["count"], Value::Null);
    assert_eq!(f["close"], "fin");
    assert_eq!(f["closed_by"], "client");
    assert_eq!(
        j.kinds(),
        [
            "syn",
            "syn-ack",
            "handshake-ack",
            "data",
            "ack",
            "data",
            "ack",
            "keepalive",
            "keepalive-ack",
            "keepalive",
            "keepalive-ack",
            "fin",
            "ack",
            "fin",
            "ack"
        ]
    );
    // Each ACK names the probe it answers; both probes are #1 of their episode.
    for (i, p) in j.packets.iter().enumerate() {
        if p["kind"] == "keepalive" {
            assert_eq!(p["probe"], 1);
            approx(&p["idle"], 2.0, 0.1);
            assert_eq!(j.packets[i + 1]["reply_to"], p["n"]);
        }
    }
}

#[test]
fn dead_peer_probes_go_unanswered_then_the_client_resets() {
    let j = json(&fixture("dead-peer.pcap"), &[]);
    // The orphaned server's FIN retransmissions and the RSTs they draw
    // belong to the same connection: one flow.
    let f = j.flow();
    assert_eq!(f["verdict"], "dead-peer");
    assert_eq!(f["probes"], 2);
    assert_eq!(f["probes_unanswered"], 2);
    assert_eq!(f["probes_answered"], 0);
    approx(&f["keepalive"]["idle"], 2.0, 0.1);
    approx(&f["keepalive"]["interval"], 1.0, 0.1);
    assert_eq!(f["keepalive"]["count"], 2);
    assert_eq!(f["close"], "rst");
    assert_eq!(f["closed_by"], "client");
    let kinds = j.kinds();
    assert_eq!(
        kinds[..10],
        [
            "syn",
            "syn-ack",
            "handshake-ack",
            "data",
            "ack",
            "data",
            "ack",
            "keepalive",
            "keepalive",
            "rst"
        ]
    );
    assert_eq!(j.packets[7]["probe"], 1);
    assert_eq!(j.packets[8]["probe"], 2);
    approx(&j.packets[8]["idle"], 1.0, 0.1);
    assert_eq!(kinds[10], "fin");
    assert!(
        kinds[11..]
            .iter()
            .all(|k| *k == "rst" || *k == "retransmission")
    );
    assert!(kinds[11..].contains(&"retransmission"));
}

#[test]
fn peer_reboot_probe_is_answered_by_rst() {
    let j = json(&fixture("peer-reboot.pcap"), &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "peer-reset");
    assert_eq!(f["probes"], 1);
    assert_eq!(f["probes_rst"], 1);
    assert_eq!(f["probes_unanswered"], 0);
    assert_eq!(f["close"], "rst");
    assert_eq!(f["closed_by"], "server");
    approx(&f["keepalive"]["idle"], 2.0, 0.1);
    let last = j.packets.last().unwrap();
    let probe = &j.packets[j.packets.len() - 2];
    assert_eq!(probe["kind"], "keepalive");
    assert_eq!(last["kind"], "rst");
    assert_eq!(last["flags"], "R");
    assert_eq!(last["reply_to"], probe["n"]);
    assert_eq!(last["ack"], Value::Null);
}

#[test]
fn json_packet_records_follow_the_contract() {
    let j = json(&fixture("healthy.pcap"), &[]);
    let syn = &j.packets[0];
    for key in [
        "type", "n", "ts", "flow", "from", "src", "dst", "flags", "seq", "ack", "win", "len",
        "kind",
    ] {
        assert!(syn.get(key).is_some(), "packet record lacks {key}: {syn}");
    }
    assert_eq!(syn["n"], 1);
    assert_eq!(syn["flow"], 1);
    assert_eq!(syn["from"], "client");
    assert_eq!(syn["dst"], "127.0.0.1:2333");
    assert_eq!(syn["flags"], "S");
    assert_eq!(syn["seq"], 0);
    assert_eq!(syn["ack"], Value::Null);
    assert!(syn["ts"].as_f64().unwrap() > 1.7e9);
    let data = &j.packets[3];
    assert_eq!(
        (
            data["flags"].as_str(),
            data["seq"].as_u64(),
            data["ack"].as_u64(),
            data["len"].as_u64()
        ),
        (Some("P."), Some(1), Some(1), Some(6))
    );
    let f = j.flow();
    for key in [
        "type",
        "flow",
        "client",
        "server",
        "first_ts",
        "last_ts",
        "packets",
        "handshake",
        "prober",
        "probes",
        "probes_answered",
        "probes_unanswered",
        "probes_rst",
        "keepalive",
        "close",
        "closed_by",
        "verdict",
    ] {
        assert!(f.get(key).is_some(), "flow record lacks {key}: {f}");
    }
    assert_eq!(f["server"], "127.0.0.1:2333");
    assert_eq!(f["packets"], 15);
    assert_eq!(j.summary["frames"], 15);
    assert_eq!(j.summary["tcp_segments"], 15);
    assert_eq!(j.summary["skipped"], 0);
    assert_eq!(j.summary["flows"], 1);
}

#[test]
fn summary_mode_prints_only_flow_and_summary_records() {
    let j = json(&fixture("dead-peer.pcap"), &["--summary"]);
    assert!(j.packets.is_empty());
    assert_eq!(j.flows.len(), 1);
    let t = text(&[
        "-r",
        fixture("dead-peer.pcap").to_str().unwrap(),
        "--summary",
    ]);
    assert!(!t.contains("Flags ["));
    assert!(t.contains("dead-peer"));
}

#[test]
fn filter_expression_is_applied_by_libpcap() {
    let path = fixture("healthy.pcap");
    let j = json(&path, &["tcp", "port", "9999"]);
    assert!(j.packets.is_empty());
    assert_eq!(j.summary["frames"], 0);
    let j = json(&path, &["tcp", "and", "src", "port", "2333"]);
    assert!(j.packets.iter().all(|p| p["from"] == "server"));
    assert!(!j.packets.is_empty());
}

#[test]
fn text_timeline_healthy() {
    insta::assert_snapshot!(text(&["-r", fixture("healthy.pcap").to_str().unwrap()]));
}

#[test]
fn text_timeline_dead_peer() {
    insta::assert_snapshot!(text(&["-r", fixture("dead-peer.pcap").to_str().unwrap()]));
}

#[test]
fn text_timeline_peer_reboot() {
    insta::assert_snapshot!(text(&["-r", fixture("peer-reboot.pcap").to_str().unwrap()]));
}

#[test]
fn json_dead_peer() {
    let out = text(&["-r", fixture("dead-peer.pcap").to_str().unwrap(), "--json"]);
    insta::assert_snapshot!(out);
}

#[test]
fn absolute_sequence_numbers_with_capital_s() {
    let t = text(&["-r", fixture("healthy.pcap").to_str().unwrap(), "-S"]);
    let data = t.lines().nth(3).unwrap();
    assert!(!data.contains("seq 1:7"), "{data}");
    assert!(data.contains("length 6"));
}

#[test]
fn timestamp_flags_follow_tcpdump() {
    let path = fixture("healthy.pcap");
    let p = path.to_str().unwrap();
    let first = |flag: &str| text(&["-r", p, flag]).lines().next().unwrap().to_string();
    assert!(first("-t").starts_with("IP 127.0.0.1."));
    assert!(
        first("-tt")
            .split(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 1.7e9
    );
    assert!(first("-ttt").starts_with(" 00:00:00.000000 IP "));
    assert!(first("-ttttt").starts_with(" 00:00:00.000000 IP "));
    let date = first("-tttt");
    assert!(
        date.as_bytes()[4] == b'-' && date.as_bytes()[10] == b' ',
        "{date}"
    );
    let nano = first("--nano");
    assert_eq!(
        nano.split(' ').next().unwrap().len(),
        "HH:MM:SS.nnnnnnnnn".len()
    );
}
