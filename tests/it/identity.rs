//! Which segments are one connection, and which bare segments can be
//! kernel keepalives: shapes seen on captures other people made (issue
//! "trust on captures other people made"), crafted as the field showed
//! them.

use crate::craft::*;
use crate::crafted::dead_peer;
use crate::{Json, approx, json};
use tempfile::TempDir;

fn run(conn: &Conn) -> Json {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("c.pcap");
    conn.write_pcap(&path, PcapOpts::default());
    json(&path, &[])
}

/// Every frame twice, `gap` apart: a mirror port, or `-i any` on a bridge.
fn doubled(conn: &mut Conn, gap: f64) {
    let frames = std::mem::take(&mut conn.frames);
    for (t, f) in frames {
        conn.frames.push((t, f.clone()));
        conn.frames.push((t + gap, f));
    }
}

#[test]
fn mirror_port_copies_are_duplicates_counted_nowhere_else() {
    // A dead peer with three probes, every frame seen twice 1 µs apart:
    // three probes one second apart, not six 1 µs apart.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:5432", Link::Ethernet);
    c.handshake(1, 2)
        .exchange(Client, b"hello\n")
        .wait(2.0)
        .probe(Client, 0)
        .wait(1.0)
        .probe(Client, 0)
        .wait(1.0)
        .probe(Client, 0)
        .wait(1.0)
        .give_up(Client);
    doubled(&mut c, 0.000_001);
    let j = run(&c);
    let kinds = j.kinds();
    assert_eq!(kinds.len(), 18);
    for pair in kinds.chunks(2) {
        assert_eq!(pair[1], "duplicate", "{kinds:?}");
        assert_ne!(pair[0], "duplicate", "{kinds:?}");
    }
    assert!(!kinds.contains(&"retransmission"), "{kinds:?}");
    let f = j.flow();
    assert_eq!(f["verdict"], "dead-peer");
    assert_eq!(f["probes"], 3);
    assert_eq!(f["keepalive"]["count"], 3);
    approx(&f["keepalive"]["interval"], 1.0, 0.01);
    approx(&f["keepalive"]["idle"], 2.0, 0.01);
}

#[test]
fn a_segment_sent_again_is_not_a_copy() {
    // The same probe bytes a second later are a second probe (a stack with
    // a constant IP ID and no timestamps resends identical bytes; time tells).
    let j = run(&dead_peer(
        Link::Ethernet,
        "10.0.0.2:40000",
        "10.0.0.1:5432",
        1,
        2,
    ));
    assert!(!j.kinds().contains(&"duplicate"));
    assert_eq!(j.flow()["probes"], 2);
}

#[test]
fn the_same_connection_on_two_vlans_is_two_flows() {
    // Routed between VLAN 10 and VLAN 20: each segment seen on both, 40 µs
    // apart. One flow per VLAN, each a plain conversation; before, the
    // second copies' ACKs were keepalive probes 40 µs apart.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:27017", Link::Vlan);
    c.handshake(1000, 5000)
        .exchange(Client, b"ping\n")
        .exchange(Server, b"pong\n")
        .wait(5.0)
        .exchange(Client, b"ping\n")
        .seg(Client, FIN | ACK, &[])
        .seg(Server, FIN | ACK, &[])
        .seg(Client, ACK, &[]);
    let frames = std::mem::take(&mut c.frames);
    for (t, f) in frames {
        let mut other = f.clone();
        other[15] = 20; // the 802.1Q tag's VLAN ID: 10 → 20
        c.frames.push((t, f));
        c.frames.push((t + 0.000_04, other));
    }
    let j = run(&c);
    assert_eq!(j.flows.len(), 2, "{:?}", j.flows);
    for f in &j.flows {
        assert_eq!(f["verdict"], "no-keepalive", "{f}");
        assert_eq!(f["handshake"], "complete");
        assert_eq!(f["probes"], 0);
    }
    let kinds = j.kinds();
    for k in ["keepalive", "retransmission", "duplicate"] {
        assert!(!kinds.contains(&k), "{k} in {kinds:?}");
    }
}

#[test]
fn no_keepalive_sooner_than_a_second_after_what_its_sender_heard() {
    // A loopback ACK reordered after one byte of data (seq = next − 1,
    // 1 µs later), and bare seq − 1 ACKs 0.1 s after each exchange: Linux
    // never probes sooner than 1 s (TCP_KEEPIDLE and TCP_KEEPINTVL ≥ 1).
    let mut c = Conn::new("127.0.0.1:40000", "127.0.0.1:6379", Link::Null);
    c.handshake(1000, 5000);
    let ack_before_data = (c.next[0], c.next[1]);
    c.seg(Client, PSH | ACK, b"x");
    c.wait(0.000_001).raw(
        Client,
        ACK,
        ack_before_data.0,
        ack_before_data.1,
        512,
        &[],
        &[],
    );
    c.seg(Server, ACK, &[]);
    for _ in 0..3 {
        c.wait(2.0)
            .exchange(Client, b"GET\n")
            .exchange(Server, b"OK\n");
        c.wait(0.1).probe(Client, 0);
    }
    let j = run(&c);
    let kinds = j.kinds();
    assert!(!kinds.contains(&"keepalive"), "{kinds:?}");
    assert!(!kinds.contains(&"keepalive-ack"), "{kinds:?}");
    let f = j.flow();
    assert_eq!(f["verdict"], "no-keepalive");
    assert!(j.packets.iter().all(|p| p.get("reply_to").is_none()));
}

#[test]
fn when_both_ends_probe_each_ones_idle_is_its_own() {
    // Docker-style: both ends with a 15 s keepalive. The server's probe
    // comes right after it answered the client's: the client's probe did
    // not end the server's silence (Linux answers and discards it).
    let mut c = Conn::new("172.17.0.2:40000", "172.17.0.3:8080", Link::Ethernet);
    c.handshake(1000, 5000).exchange(Client, b"hello\n");
    for _ in 0..3 {
        c.wait(15.0).probe(Client, 0).seg(Server, ACK, &[]);
        c.wait(0.000_3).probe(Server, 0).seg(Client, ACK, &[]);
    }
    let j = run(&c);
    let probes: Vec<_> = j
        .packets
        .iter()
        .filter(|p| p["kind"] == "keepalive")
        .collect();
    assert_eq!(probes.len(), 6);
    for p in &probes {
        approx(&p["idle"], 15.0, 0.01);
    }
    let f = j.flow();
    assert_eq!(f["prober"], "both");
    assert_eq!(f["verdict"], "alive");
    approx(&f["keepalive"]["idle"], 15.0, 0.01);
}

#[test]
fn a_rst_in_syn_sent_then_the_same_syn_is_one_connection() {
    // The client's SYN draws a RST (a firewall, a listener not up yet);
    // 3 s later the kernel sends the same SYN again (same ISN), and the
    // connection is made. Its real end, 77 s later, belongs to it.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:8080", Link::Ethernet);
    c.raw(Client, SYN, 1000, 0, 65495, &[], &[]);
    c.raw(Server, RST | ACK, 0, 1001, 0, &[], &[]);
    c.wait(3.0)
        .handshake(1000, 5000)
        .exchange(Client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .exchange(Server, b"HTTP/1.1 204 No Content\r\n\r\n")
        .wait(77.0)
        .give_up(Client);
    let j = run(&c);
    let f = j.flow();
    assert_eq!(f["handshake"], "complete");
    let kinds = j.kinds();
    assert!(!kinds.contains(&"retransmission"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"rst"));
}

#[test]
fn late_fin_retransmissions_of_an_orphan_belong_to_its_connection() {
    // The server closed, the client closed too, and its FIN goes
    // unanswered: the orphaned socket resends it, backing off (1, 2, 4, …
    // 64 s) past the 60 s a finished connection lingers.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:8080", Link::Ethernet);
    c.handshake(1000, 5000)
        .exchange(Client, b"bye\n")
        .seg(Server, FIN | ACK, &[])
        .seg(Client, ACK, &[])
        .seg(Client, FIN | ACK, &[]);
    let fin = c.next[0] - 1;
    let ack = c.next[1];
    let mut backoff = 1.0;
    for _ in 0..8 {
        c.wait(backoff)
            .raw(Client, FIN | ACK, fin, ack, 512, &[], &[]);
        backoff *= 2.0;
    }
    let j = run(&c);
    j.flow();
    let kinds = j.kinds();
    assert_eq!(
        kinds.iter().filter(|k| **k == "retransmission").count(),
        8,
        "{kinds:?}"
    );
}

#[test]
fn a_probe_answered_while_the_probers_fin_crosses_it_is_answered() {
    // The client probes, then closes; the server's answer to the probe
    // (ack = probe seq + 1, the FIN not acknowledged yet) arrives after
    // the FIN left. Before: a plain ACK, and "alive" with 0 answered.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:5432", Link::Ethernet);
    c.handshake(1000, 5000)
        .exchange(Client, b"hello\n")
        .wait(30.0);
    c.probe(Client, 0);
    let answer = (c.next[1], c.next[0]);
    c.wait(0.000_1).seg(Client, FIN | ACK, &[]);
    c.raw(Server, ACK, answer.0, answer.1, 512, &[], &[]);
    c.seg(Server, FIN | ACK, &[]).seg(Client, ACK, &[]);
    let j = run(&c);
    let kinds = j.kinds();
    assert!(kinds.contains(&"keepalive-ack"), "{kinds:?}");
    let f = j.flow();
    assert_eq!(f["probes_answered"], 1);
    assert_eq!(f["probes_unanswered"], 0);
    assert_eq!(f["verdict"], "alive");
}

#[test]
fn data_after_an_unanswered_probe_is_no_sign_of_the_peers_life() {
    // A probe goes unanswered; the client then sends data (with its FIN)
    // and resends it: nothing ever comes back. Before: "alive", 0 answered.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:443", Link::Ethernet);
    c.handshake(1000, 5000)
        .exchange(Client, b"hello\n")
        .wait(30.0);
    c.probe(Client, 0).wait(60.0);
    let (seq, ack) = (c.next[0], c.next[1]);
    c.seg(Client, FIN | PSH | ACK, b"request");
    c.wait(1.3)
        .raw(Client, FIN | PSH | ACK, seq, ack, 512, b"request", &[]);
    let f = run(&c).flows.remove(0);
    assert_eq!(f["probes_answered"], 0);
    assert_ne!(f["verdict"], "alive", "{f}");

    // The same, but the server acknowledges the data: alive, and said so.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:443", Link::Ethernet);
    c.handshake(1000, 5000)
        .exchange(Client, b"hello\n")
        .wait(30.0);
    c.probe(Client, 0)
        .wait(20.0)
        .exchange(Client, b"request")
        .exchange(Server, b"response")
        .seg(Client, FIN | ACK, &[])
        .seg(Server, FIN | ACK, &[])
        .seg(Client, ACK, &[]);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("c.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let f = json(&path, &[]).flows.remove(0);
    assert_eq!(f["verdict"], "alive");
    // Line-buffered, the timeline says how each connection ended.
    let text = crate::text(&["-r", path.to_str().unwrap(), "-l"]);
    assert!(
        text.contains("the probe went unanswered, but the peer answered the data that followed"),
        "{text}"
    );
}

/// A TCP timestamps option (nop, nop, TS val, ecr).
fn ts(val: u32, ecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&val.to_be_bytes());
    o.extend_from_slice(&ecr.to_be_bytes());
    o
}

#[test]
fn acks_dropped_midlife_infers_from_the_unheard_probes_alone() {
    // Keepalive every 10 s, answers heard (the next probe's TS ecr moves to
    // them); then conntrack forgets the connection on the prober's host:
    // the answers to probes 3, 4 and 5 are on the wire but never reach it
    // (TS ecr stuck), probes come 2 s apart, and 2 s after probe 5 the
    // kernel resets. Interval 2 and count 3, from the unheard probes.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:5432", Link::Ethernet);
    c.handshake(1000, 5000).exchange(Client, b"hello\n");
    let (seq, ack) = (c.next[0] - 1, c.next[1]);
    let mut ecr = 100;
    let mut val = 1000;
    for (i, wait) in [10.0, 10.0, 10.0, 2.0, 2.0].into_iter().enumerate() {
        val += (wait * 1000.0) as u32;
        c.wait(wait)
            .raw(Client, ACK, seq, ack, 512, &[], &ts(val, ecr));
        let answer = 200 + i as u32;
        c.raw(Server, ACK, ack, seq + 1, 512, &[], &ts(answer, val));
        if i < 2 {
            ecr = answer; // heard
        }
    }
    c.wait(2.0)
        .raw(Client, RST | ACK, seq + 1, ack, 0, &[], &[]);
    let j = run(&c);
    let f = j.flow();
    assert_eq!(f["verdict"], "acks-dropped", "{f}");
    approx(&f["keepalive"]["interval"], 2.0, 0.01);
    assert_eq!(f["keepalive"]["count"], 3, "{f}");
    let last = j.packets.last().unwrap();
    assert_eq!(last["kind"], "rst");
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("c.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let text = crate::text(&["-r", path.to_str().unwrap()]);
    let rst = text.lines().find(|l| l.contains("Flags [R.]")).unwrap();
    assert!(
        rst.contains("3 probes in a row whose answers never reached the client"),
        "{rst}"
    );
}

#[test]
fn an_answer_the_capture_missed_shows_in_the_next_probes_ts_ecr() {
    // Keepalive every 3 s, each probe answered; the answer to probe 3 is
    // not in the capture, but probe 4 comes a full idle later and its TS
    // ecr echoes that answer's TS val (nowhere in the capture): it
    // arrived. Counted answered, no interval from the gap, said so.
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:5432", Link::Ethernet);
    c.handshake(1000, 5000).exchange(Client, b"hello\n");
    let (seq, ack) = (c.next[0] - 1, c.next[1]);
    let (mut val, mut ecr) = (1000, 100);
    for i in 0..6u32 {
        val += 3000;
        c.wait(3.0)
            .raw(Client, ACK, seq, ack, 512, &[], &ts(val, ecr));
        ecr = 200 + i;
        if i != 2 {
            c.raw(Server, ACK, ack, seq + 1, 512, &[], &ts(ecr, val));
        }
    }
    c.wait(1.0)
        .raw(
            Client,
            FIN | ACK,
            seq + 1,
            ack,
            512,
            &[],
            &ts(val + 1000, ecr),
        )
        .raw(
            Server,
            FIN | ACK,
            ack,
            seq + 2,
            512,
            &[],
            &ts(300, val + 1000),
        )
        .raw(
            Client,
            ACK,
            seq + 2,
            ack + 1,
            512,
            &[],
            &ts(val + 1001, 300),
        );
    let j = run(&c);
    let f = j.flow();
    assert_eq!(f["verdict"], "alive", "{f}");
    assert_eq!(
        (&f["probes"], &f["probes_answered"], &f["probes_unanswered"]),
        (&6.into(), &6.into(), &0.into()),
        "{f}"
    );
    assert_eq!(f["probes_answered_not_captured"], 1, "{f}");
    approx(&f["keepalive"]["idle"], 3.0, 0.01);
    assert!(f["keepalive"]["interval"].is_null(), "{f}");
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("c.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let p = path.to_str().unwrap();
    let text = crate::text(&["-r", p]);
    assert!(
        text.contains("the answer to #3 is not in the capture, but this probe's TS ecr shows the client got it"),
        "{text}"
    );
    let explained = crate::text(&["-r", p, "--explain", "--diagram"]);
    assert!(
        explained.contains("One answer is not in the capture"),
        "{explained}"
    );
    assert!(
        explained.contains("answer not in the capture"),
        "{explained}"
    );
    assert!(!explained.contains("│  unanswered"), "{explained}");
}

#[test]
fn the_diagram_does_not_call_answers_the_prober_never_heard_alive() {
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:5432", Link::Ethernet);
    c.handshake(1000, 5000).exchange(Client, b"hello\n");
    let (seq, ack) = (c.next[0] - 1, c.next[1]);
    let mut val = 1000;
    for (i, wait) in [10.0, 2.0, 2.0].into_iter().enumerate() {
        val += (wait * 1000.0) as u32;
        c.wait(wait)
            .raw(Client, ACK, seq, ack, 512, &[], &ts(val, 100));
        c.raw(
            Server,
            ACK,
            ack,
            seq + 1,
            512,
            &[],
            &ts(200 + i as u32, val),
        );
    }
    c.wait(2.0)
        .raw(Client, RST | ACK, seq + 1, ack, 0, &[], &[]);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("c.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let text = crate::text(&["-r", path.to_str().unwrap(), "--diagram"]);
    let diagram: Vec<&str> = text.lines().filter(|l| l.contains('│')).collect();
    let unheard = diagram
        .iter()
        .filter(|l| l.ends_with("never reached the client"))
        .count();
    assert_eq!(unheard, 3, "{text}");
    // Each drawn lost: the arrow stops at a ✗ short of the client.
    assert_eq!(
        diagram
            .iter()
            .filter(|l| l.ends_with("never reached the client") && l.contains("│       ✗─"))
            .count(),
        3,
        "{text}"
    );
    assert!(!diagram.iter().any(|l| l.contains("alive (")), "{text}");
}
