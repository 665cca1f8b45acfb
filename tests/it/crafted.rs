//! Crafted captures for what loopback cannot show.

use crate::craft::*;
use crate::{approx, json};
use serde_json::Value;
use std::path::PathBuf;
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, conn: &Conn, opts: PcapOpts) -> PathBuf {
    let path = dir.path().join(name);
    conn.write_pcap(&path, opts);
    path
}

/// A dead-peer conversation: handshake, data both ways, two unanswered
/// probes one second apart after two seconds idle, then the client's RST.
pub fn dead_peer(link: Link, client: &str, server: &str, c_isn: u32, s_isn: u32) -> Conn {
    let mut c = Conn::new(client, server, link);
    c.handshake(c_isn, s_isn)
        .exchange(Client, b"hello\n")
        .exchange(Server, b"hi\n")
        .wait(2.0)
        .probe(Client, 0)
        .wait(1.0)
        .probe(Client, 0)
        .wait(1.0)
        .give_up(Client);
    c
}

/// A capture that starts during the idle period of a dead peer: two
/// unanswered probes one second apart, then the client's RST.
pub fn idle_start_dead() -> Conn {
    let mut c = Conn::new("10.0.0.2:51000", "10.0.0.1:6379", Link::Ethernet);
    c.next = [0x8000_0000, 0x1234_5678];
    c.probe(Client, 0)
        .wait(1.0)
        .probe(Client, 0)
        .wait(1.0)
        .give_up(Client);
    c
}

const DEAD_PEER_KINDS: [&str; 10] = [
    "syn",
    "syn-ack",
    "handshake-ack",
    "data",
    "ack",
    "data",
    "ack",
    "keepalive",
    "keepalive",
    "rst",
];

fn assert_dead_peer(j: &crate::Json) {
    assert_eq!(j.kinds(), DEAD_PEER_KINDS);
    let f = j.flow();
    assert_eq!(f["verdict"], "dead-peer");
    approx(&f["keepalive"]["idle"], 2.0, 0.01);
    approx(&f["keepalive"]["interval"], 1.0, 0.01);
    assert_eq!(f["keepalive"]["count"], 2);
}

#[test]
fn every_link_type_decodes_the_same_conversation() {
    let dir = TempDir::new().unwrap();
    for link in [
        Link::Ethernet,
        Link::Vlan,
        Link::Null,
        Link::Loop,
        Link::Raw,
        Link::IpOnly,
        Link::Sll,
        Link::Sll2,
    ] {
        for (client, server) in [
            ("10.0.0.2:40000", "10.0.0.1:5432"),
            ("[2001:db8::2]:40000", "[2001:db8::1]:5432"),
        ] {
            let conn = dead_peer(link, client, server, 1000, 5000);
            let path = write(&dir, &format!("{link:?}.pcap"), &conn, PcapOpts::default());
            let j = json(&path, &[]);
            assert_dead_peer(&j);
            assert_eq!(j.flow()["server"], server, "{link:?}");
            assert_eq!(j.summary["skipped"], 0, "{link:?}");
        }
    }
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let dir = TempDir::new().unwrap();
    let mut conn = Conn::new("[2001:db8::2]:40000", "[2001:db8::1]:5432", Link::Ethernet);
    conn.v6_ext = true;
    conn.handshake(7, 9)
        .exchange(Client, b"x")
        .wait(2.0)
        .probe(Client, 0)
        .seg(Server, ACK, &[]);
    let j = json(&write(&dir, "v6ext.pcap", &conn, PcapOpts::default()), &[]);
    assert_eq!(j.kinds()[5..], ["keepalive", "keepalive-ack"]);
    assert_eq!(j.packets[0]["src"], "[2001:db8::2]:40000");
}

#[test]
fn isn_close_to_wrap_keeps_sequence_arithmetic_right() {
    let dir = TempDir::new().unwrap();
    // Client data crosses 2^32; the server's ISN is the last number before it.
    let conn = dead_peer(
        Link::Ethernet,
        "10.0.0.2:40000",
        "10.0.0.1:5432",
        u32::MAX - 3,
        u32::MAX,
    );
    let j = json(&write(&dir, "wrap.pcap", &conn, PcapOpts::default()), &[]);
    assert_dead_peer(&j);
    assert_eq!(j.packets[3]["seq"], 1);
    assert_eq!(j.packets[4]["ack"], 7);
    assert_eq!(j.packets[5]["seq"], 1);
}

#[test]
fn one_byte_probes_are_keepalives_but_a_resent_last_byte_is_not() {
    let dir = TempDir::new().unwrap();
    let mut conn = Conn::new("10.0.0.2:49152", "10.0.0.1:3389", Link::Ethernet);
    conn.handshake(100, 200)
        .exchange(Client, b"req")
        .wait(2.0)
        .probe(Client, 1)
        .seg(Server, ACK, &[])
        .wait(2.0)
        .probe(Client, 1)
        .seg(Server, ACK, &[])
        .wait(0.5)
        // One byte of data the server does not acknowledge, sent again.
        .seg(Client, PSH | ACK, b"z");
    let [n, ack] = conn.next;
    conn.wait(0.3)
        .raw(Client, PSH | ACK, n - 1, ack, 512, b"z", &[])
        .seg(Server, ACK, &[]);
    let j = json(
        &write(&dir, "one-byte.pcap", &conn, PcapOpts::default()),
        &[],
    );
    assert_eq!(
        j.kinds()[5..],
        [
            "keepalive",
            "keepalive-ack",
            "keepalive",
            "keepalive-ack",
            "data",
            "retransmission",
            "ack"
        ]
    );
    assert_eq!(j.packets[5]["len"], 1);
    let f = j.flow();
    assert_eq!(f["verdict"], "alive");
    assert_eq!(f["probes_answered"], 2);
    approx(&f["keepalive"]["idle"], 2.0, 0.01);
}

#[test]
fn zero_window_probes_are_not_keepalives() {
    let dir = TempDir::new().unwrap();
    let mut conn = Conn::new("10.0.0.2:49152", "10.0.0.1:8080", Link::Ethernet);
    conn.handshake(100, 200).exchange(Client, b"GET");
    // The server's buffer is full: it advertises window 0.
    conn.win[1] = 0;
    conn.seg(Server, ACK, &[]);
    // RFC 1122 probe: one byte at exactly the next sequence number; it does
    // not advance the sequence space.
    let [n, ack] = conn.next;
    conn.wait(0.2)
        .raw(Client, ACK, n, ack, 512, b"x", &[])
        .seg(Server, ACK, &[])
        .wait(0.4)
        .raw(Client, ACK, n, ack, 512, b"x", &[]);
    conn.win[1] = 512;
    conn.seg(Server, ACK, &[]).seg(Client, PSH | ACK, b"xyz");
    let j = json(&write(&dir, "zwp.pcap", &conn, PcapOpts::default()), &[]);
    assert_eq!(
        j.kinds()[5..],
        [
            "zero-window",
            "zero-window-probe",
            "zero-window-probe-ack",
            "zero-window-probe",
            "zero-window-probe-ack",
            "data"
        ]
    );
    let f = j.flow();
    assert_eq!(f["probes"], 0);
    assert_eq!(f["verdict"], "no-keepalive");
    // The stall in words: flow control, not keepalive.
    let out = crate::text(&[
        "-r",
        dir.path().join("zwp.pcap").to_str().unwrap(),
        "--explain",
    ]);
    assert!(
        out.contains("zero window from server: its receive buffer is full"),
        "{out}"
    );
    assert!(out.contains("This is flow control, not keepalive"), "{out}");
}

#[test]
fn capture_starting_during_idle_still_finds_the_first_probe() {
    let dir = TempDir::new().unwrap();
    // Alive: probe, ACK, probe, ACK; no handshake in the capture.
    let mut conn = Conn::new("10.0.0.2:51000", "10.0.0.1:6379", Link::Ethernet);
    conn.next = [0x8000_0000, 0x1234_5678];
    conn.probe(Client, 0)
        .seg(Server, ACK, &[])
        .wait(2.0)
        .probe(Client, 0)
        .seg(Server, ACK, &[]);
    let j = json(
        &write(&dir, "idle-alive.pcap", &conn, PcapOpts::default()),
        &[],
    );
    assert_eq!(
        j.kinds(),
        ["keepalive", "keepalive-ack", "keepalive", "keepalive-ack"]
    );
    let f = j.flow();
    assert_eq!(f["handshake"], "missing");
    assert_eq!(f["client"], "10.0.0.2:51000");
    assert_eq!(f["verdict"], "alive");
    approx(&f["keepalive"]["idle"], 2.0, 0.01);

    // Dead: probe, probe, RST; nothing from the server at all.
    let conn = idle_start_dead();
    let j = json(
        &write(&dir, "idle-dead.pcap", &conn, PcapOpts::default()),
        &[],
    );
    assert_eq!(j.kinds(), ["keepalive", "keepalive", "rst"]);
    let f = j.flow();
    assert_eq!(f["verdict"], "dead-peer");
    assert_eq!(f["keepalive"]["count"], 2);
    // The first probe seen may not be the first sent: 2 is a lower bound,
    // and nothing says "count 2" or "2 unanswered probes" as fact.
    assert_eq!(f["keepalive"]["count_at_least"], true);
    let text = crate::text(&["-r", dir.path().join("idle-dead.pcap").to_str().unwrap()]);
    assert!(
        text.contains("at least 2 unanswered probes in a row"),
        "{text}"
    );
    assert!(text.contains("≥2"), "{text}");
    let explained = crate::text(&[
        "-r",
        dir.path().join("idle-dead.pcap").to_str().unwrap(),
        "--explain",
    ]);
    assert!(explained.contains("TCP_KEEPCNT ≥ 2"), "{explained}");
    assert!(!explained.contains("TCP_KEEPCNT = 2"), "{explained}");
    approx(&f["keepalive"]["interval"], 1.0, 0.01);
    // The idle time before the first probe is not in the capture.
    assert_eq!(f["keepalive"]["idle"], Value::Null);
}

#[test]
fn a_plain_ack_at_capture_start_is_not_taken_for_a_probe() {
    let dir = TempDir::new().unwrap();
    let mut conn = Conn::new("10.0.0.2:51000", "10.0.0.1:6379", Link::Ethernet);
    conn.next = [500, 900];
    conn.seg(Client, ACK, &[]).exchange(Server, b"+OK\r\n");
    let j = json(&write(&dir, "mid.pcap", &conn, PcapOpts::default()), &[]);
    assert_eq!(j.kinds(), ["ack", "data", "ack"]);
    assert_eq!(j.flow()["verdict"], "no-keepalive");
}

#[test]
fn ethernet_padding_does_not_make_a_probe_carry_data() {
    let dir = TempDir::new().unwrap();
    let conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2).padded();
    assert!(conn.frames.iter().all(|(_, f)| f.len() >= 60));
    let j = json(&write(&dir, "padded.pcap", &conn, PcapOpts::default()), &[]);
    assert_dead_peer(&j);
    assert_eq!(j.packets[7]["len"], 0);
}

#[test]
fn small_snaplen_still_yields_seq_ack_flags_and_window() {
    let dir = TempDir::new().unwrap();
    let conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    let opts = PcapOpts {
        snaplen: Some(54),
        ..PcapOpts::default()
    };
    let j = json(&write(&dir, "snap54.pcap", &conn, opts), &[]);
    assert_dead_peer(&j);
    // Lengths come from the IP header, not the 54 captured bytes.
    assert_eq!(j.packets[3]["len"], 6);
    assert_eq!(j.packets[0]["win"], 65495);
}

#[test]
fn pcapng_nanosecond_and_big_endian_files() {
    let dir = TempDir::new().unwrap();
    let conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    for nano in [false, true] {
        let path = dir.path().join(format!("ng-{nano}.pcapng"));
        write_pcapng(&path, 1, &conn.frames, nano);
        assert_dead_peer(&json(&path, &[]));
    }
    for (nano, big_endian) in [(true, false), (false, true), (true, true)] {
        let opts = PcapOpts {
            nano,
            big_endian,
            snaplen: None,
        };
        let j = json(&write(&dir, "x.pcap", &conn, opts), &["--nano"]);
        assert_dead_peer(&j);
        let ts = j.packets[0]["ts"].as_f64().unwrap();
        approx(&j.packets[0]["ts"], 1_700_000_000.0, 1e-6);
        assert!(ts > 0.0);
    }
}

#[test]
fn non_tcp_frames_are_counted_and_skipped() {
    let dir = TempDir::new().unwrap();
    let mut conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    let src = "10.0.0.2".parse().unwrap();
    let dst = "10.0.0.1".parse().unwrap();
    let udp = ip_packet_proto(src, dst, 17, &[0, 53, 0, 53, 0, 8, 0, 0], false);
    let t = conn.t;
    conn.frames
        .push((t, frame(Link::Ethernet, false, &udp, false, false)));
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    conn.frames.push((t + 0.1, arp));
    let j = json(&write(&dir, "mixed.pcap", &conn, PcapOpts::default()), &[]);
    assert_dead_peer(&j);
    assert_eq!(j.summary["frames"], 12);
    assert_eq!(j.summary["tcp_segments"], 10);
    assert_eq!(j.summary["skipped"], 2);
}

#[test]
fn a_new_syn_after_close_starts_a_new_flow() {
    let dir = TempDir::new().unwrap();
    let mut conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    conn.wait(1.0)
        .handshake(777_777, 888_888)
        .seg(Client, FIN | ACK, &[]);
    let j = json(&write(&dir, "reuse.pcap", &conn, PcapOpts::default()), &[]);
    assert_eq!(j.flows.len(), 2);
    assert_eq!(j.flows[0]["verdict"], "dead-peer");
    assert_eq!(j.flows[1]["verdict"], "no-keepalive");
    assert_eq!(j.flows[1]["handshake"], "complete");
    assert_eq!(j.packets[10]["flow"], 2);
    assert_eq!(j.summary["flows"], 2);
}

#[test]
fn every_kind_appears_in_the_fixtures() {
    use std::collections::BTreeSet;
    let dir = TempDir::new().unwrap();
    let mut seen = BTreeSet::new();
    for name in [
        "healthy.pcap",
        "dead-peer.pcap",
        "peer-reboot.pcap",
        "http.pcap",
    ] {
        for k in json(&crate::fixture(name), &[]).kinds() {
            seen.insert(k.to_string());
        }
    }
    let mut conn = Conn::new("10.0.0.2:49152", "10.0.0.1:8080", Link::Ethernet);
    conn.handshake(100, 200).exchange(Client, b"GET");
    conn.win[1] = 0;
    conn.seg(Server, ACK, &[]);
    let [n, ack] = conn.next;
    conn.raw(Client, ACK, n, ack, 512, b"x", &[])
        .seg(Server, ACK, &[]);
    // The server's application reads again: the window reopens.
    conn.win[1] = 512;
    conn.seg(Server, ACK, &[]);
    for k in json(&write(&dir, "zwp.pcap", &conn, PcapOpts::default()), &[]).kinds() {
        seen.insert(k.to_string());
    }
    let all = [
        "syn",
        "syn-ack",
        "handshake-ack",
        "data",
        "ack",
        "keepalive",
        "keepalive-ack",
        "zero-window-probe",
        "zero-window-probe-ack",
        "zero-window",
        "window-update",
        "retransmission",
        "fin",
        "rst",
    ];
    for k in all {
        assert!(seen.contains(k), "no fixture shows {k}: {seen:?}");
    }
    assert_eq!(seen.len(), all.len(), "unexpected kinds: {seen:?}");
}

#[test]
fn server_side_keepalive_is_attributed_to_the_server() {
    let dir = TempDir::new().unwrap();
    let mut conn = Conn::new("10.0.0.2:40000", "10.0.0.1:5432", Link::Ethernet);
    conn.handshake(1, 2)
        .exchange(Client, b"q")
        .wait(3.0)
        .probe(Server, 0)
        .seg(Client, ACK, &[])
        .wait(3.0)
        .probe(Server, 0)
        .seg(Client, ACK, &[]);
    let j = json(&write(&dir, "server.pcap", &conn, PcapOpts::default()), &[]);
    assert_eq!(
        j.kinds()[5..],
        ["keepalive", "keepalive-ack", "keepalive", "keepalive-ack"]
    );
    assert_eq!(j.packets[5]["from"], "server");
    let f = j.flow();
    assert_eq!(f["prober"], "server");
    assert_eq!(f["verdict"], "alive");
    approx(&f["keepalive"]["idle"], 3.0, 0.01);
}

/// One retransmission, stamped 43 years before the data it repeats, then
/// the sender's RST (seen in a third-party capture): no sender backed off,
/// so no `retransmit-timeout`, and no negative duration anywhere.
#[test]
fn one_retransmission_with_a_stamp_decades_off_claims_no_timeout() {
    use kacap::craft::{ACK, Conn, Dir::*, Link, PSH, PcapOpts, RST};
    let dir = tempfile::TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:5000", Link::Ethernet);
    c.handshake(10, 20).seg(Client, PSH | ACK, b"hello");
    c.wait(-1_381_533_735.0)
        .raw(Client, PSH | ACK, 11, 21, 512, b"hello", &[]);
    c.wait(0.001).raw(Client, RST | ACK, 16, 21, 0, &[], &[]);
    let path = dir.path().join("decades.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let j = json(&path, &[]);
    let f = j.flow();
    assert_ne!(f["verdict"], "retransmit-timeout", "{f}");
    let gave_up = &f["retransmit"]["gave_up_after"];
    assert!(
        gave_up.is_null() || gave_up.as_f64().unwrap() >= 0.0,
        "a negative duration: {f}"
    );
}
