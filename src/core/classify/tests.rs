//! One test per rule and per rule-order conflict, smoltcp-style: a `const`
//! segment and an established flow, each test changing only what its rule
//! looks at (`..SEGMENT`).

use super::*;
use crate::core::decode::{LinkInfo, LinkType};
use crate::core::seq::SeqNumber;
use crate::core::tcp::{CloseKind, DirState, Outstanding, Sent};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// The client's next sequence number, and the server's.
const C_NEXT: u32 = 1000;
const S_NEXT: u32 = 5000;

/// A bare ACK from the client at its next sequence number.
const SEGMENT: Segment<'static> = Segment {
    src: CLIENT,
    dst: SERVER,
    sport: 40000,
    dport: 5432,
    seq: SeqNumber(C_NEXT),
    ack: SeqNumber(S_NEXT),
    flags: flags::ACK,
    win: 512,
    urp: 0,
    header_len: 20,
    len: 0,
    options: &[],
    options_truncated: false,
    payload: &[],
    ttl: 64,
    ip_id: 0,
    checksum: 0,
    link: LinkInfo {
        kind: LinkType::Raw,
        ifindex: 0,
        pkttype: None,
        vlan: 0,
    },
};

/// A bare ACK from the server at its next sequence number.
const FROM_SERVER: Segment<'static> = Segment {
    src: SERVER,
    dst: CLIENT,
    sport: 5432,
    dport: 40000,
    seq: SeqNumber(S_NEXT),
    ack: SeqNumber(C_NEXT),
    ..SEGMENT
};

const ONE_BYTE: &[u8] = b"x";
const DATA: &[u8] = b"hello";

/// An established connection, all data acknowledged both ways, windows open.
fn established() -> Flow {
    let mut f = Flow::new(
        1,
        SocketAddr::new(CLIENT, 40000),
        SocketAddr::new(SERVER, 5432),
        Timestamp::new(1_700_000_000, 0),
    );
    (f.syn, f.syn_ack, f.established) = (true, true, true);
    f.dir = [
        DirState {
            base: Some(SeqNumber(0)),
            next: Some(SeqNumber(C_NEXT)),
            acked: Some(SeqNumber(S_NEXT)),
            win: Some(512),
            ..DirState::default()
        },
        DirState {
            base: Some(SeqNumber(4000)),
            next: Some(SeqNumber(S_NEXT)),
            acked: Some(SeqNumber(C_NEXT)),
            win: Some(512),
            ..DirState::default()
        },
    ];
    f
}

fn kind(flow: &Flow, seg: Segment) -> Kind {
    classify(flow, flow.side_of(&seg), &seg, AT)
}

/// When the segments under test are sent: well after anything the
/// flows of these tests heard.
const AT: Timestamp = Timestamp {
    sec: 1_700_000_100,
    nsec: 0,
};

/// The client has a keepalive probe out (at `C_NEXT − 1`).
fn probing() -> Flow {
    let mut f = established();
    f.dir[0].probe = Some(Outstanding {
        seq: SeqNumber(C_NEXT - 1),
        zero_window: false,
    });
    f
}

// Rule 0: duplicate.
#[test]
fn rule_0_a_copy_of_the_senders_last_segment_is_a_duplicate() {
    let seg = Segment {
        ip_id: 7,
        ..SEGMENT
    };
    let mut f = established();
    f.last_ts = AT;
    f.dir[0].last = Sent::of(&seg);
    assert_eq!(kind(&f, seg), Kind::Duplicate);
    // Another IP ID: the same segment sent again, not a copy.
    let again = Segment { ip_id: 8, ..seg };
    assert_eq!(kind(&f, again), Kind::Ack);
    // Too late for a copy (> 50 ms).
    f.last_ts = AT.plus(-0.2);
    assert_eq!(kind(&f, seg), Kind::Ack);
}

#[test]
fn rule_0_nothing_tells_a_copy_without_an_ip_id_or_timestamps() {
    let mut f = established();
    f.last_ts = AT;
    f.dir[0].last = Sent::of(&SEGMENT);
    assert_eq!(kind(&f, SEGMENT), Kind::Ack);
}

// Rule 1: rst.
#[test]
fn rule_1_rst() {
    let seg = Segment {
        flags: flags::RST | flags::ACK,
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Rst);
}

#[test]
fn rule_1_before_2_rst_with_syn_is_rst() {
    let seg = Segment {
        flags: flags::RST | flags::SYN,
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Rst);
}

#[test]
fn rule_1_before_6_rst_one_below_next_is_no_probe() {
    let seg = Segment {
        flags: flags::RST,
        seq: SeqNumber(C_NEXT - 1),
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Rst);
}

// Rule 2: syn, syn-ack.
#[test]
fn rule_2_syn_and_syn_ack() {
    let syn = Segment {
        flags: flags::SYN,
        ..SEGMENT
    };
    let syn_ack = Segment {
        flags: flags::SYN | flags::ACK,
        ..FROM_SERVER
    };
    assert_eq!(kind(&established(), syn), Kind::Syn);
    assert_eq!(kind(&established(), syn_ack), Kind::SynAck);
}

// Rule 3: a FIN the sender already sent is a retransmission.
#[test]
fn rule_3_fin_seen_before_is_a_retransmission() {
    let mut f = established();
    f.dir[0].fin = Some(SeqNumber(C_NEXT));
    let seg = Segment {
        flags: flags::FIN | flags::ACK,
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::Retransmission);
}

// Rule 4: fin.
#[test]
fn rule_4_fin() {
    let seg = Segment {
        flags: flags::FIN | flags::ACK,
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Fin);
}

#[test]
fn rule_4_before_13_fin_with_data_is_fin() {
    let seg = Segment {
        flags: flags::FIN | flags::PSH | flags::ACK,
        len: DATA.len() as u32,
        payload: DATA,
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Fin);
}

// Rule 5: zero-window probe.
#[test]
fn rule_5_zero_window_probe_rfc_1122_one_byte_at_next() {
    let mut f = established();
    f.dir[1].win = Some(0);
    let seg = Segment {
        len: 1,
        payload: ONE_BYTE,
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::ZeroWindowProbe);
}

#[test]
fn rule_5_before_6_linux_zero_window_probe_looks_like_a_keepalive() {
    // Linux probes a zero window one below next, like a keepalive.
    let mut f = established();
    f.dir[1].win = Some(0);
    let seg = Segment {
        seq: SeqNumber(C_NEXT - 1),
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::ZeroWindowProbe);
}

// Rule 6: keepalive.
#[test]
fn rule_6_keepalive_zero_bytes_one_below_next() {
    let seg = Segment {
        seq: SeqNumber(C_NEXT - 1),
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Keepalive);
}

#[test]
fn rule_6_keepalive_from_the_server() {
    let seg = Segment {
        seq: SeqNumber(S_NEXT - 1),
        ..FROM_SERVER
    };
    assert_eq!(kind(&established(), seg), Kind::Keepalive);
}

#[test]
fn rule_6_keepalive_one_garbage_byte_when_everything_was_acknowledged() {
    // Windows and RFC 1122 stacks send one byte below next.
    let seg = Segment {
        seq: SeqNumber(C_NEXT - 1),
        len: 1,
        payload: ONE_BYTE,
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Keepalive);
}

#[test]
fn rule_6_before_12_one_byte_not_yet_acknowledged_is_a_retransmission() {
    let mut f = established();
    f.dir[1].acked = Some(SeqNumber(C_NEXT - 1));
    let seg = Segment {
        seq: SeqNumber(C_NEXT - 1),
        len: 1,
        payload: ONE_BYTE,
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::Retransmission);
}

#[test]
fn rule_6_no_keepalive_after_a_rst() {
    let mut f = established();
    f.close = Some((CloseKind::Rst, Side::Server));
    f.finished = true;
    let seg = Segment {
        seq: SeqNumber(C_NEXT - 1),
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::Ack);
}

#[test]
fn rule_6_no_keepalive_after_a_fin_exchange() {
    let mut f = established();
    f.close = Some((CloseKind::Fin, Side::Client));
    f.dir[0].fin = Some(SeqNumber(C_NEXT - 1));
    f.dir[1].fin = Some(SeqNumber(S_NEXT - 1));
    f.finished = true;
    let seg = Segment {
        seq: SeqNumber(C_NEXT - 1),
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::Ack);
}

#[test]
fn rule_6_no_keepalive_sooner_than_a_second_after_what_its_sender_heard() {
    let seg = Segment {
        seq: SeqNumber(C_NEXT - 1),
        ..SEGMENT
    };
    let mut f = established();
    f.dir[0].heard = When::at(AT.plus(-0.5));
    assert_eq!(kind(&f, seg), Kind::Ack);
    f.dir[0].heard = When::at(AT.plus(-1.0));
    assert_eq!(kind(&f, seg), Kind::Keepalive);
    // Nor sooner than a second after its own previous probe.
    f.dir[0].probed = When::at(AT.plus(-0.3));
    assert_eq!(kind(&f, seg), Kind::Ack);
}

#[test]
fn rule_6_needs_the_senders_next_sequence_number() {
    // Mid-connection start: next unknown (the hold-back learns it).
    let mut f = established();
    f.dir[0].next = None;
    let seg = Segment {
        seq: SeqNumber(C_NEXT - 1),
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::Ack);
}

// Rule 7: keepalive-ack.
#[test]
fn rule_7_keepalive_ack_acknowledges_past_the_probe() {
    assert_eq!(kind(&probing(), FROM_SERVER), Kind::KeepaliveAck);
}

#[test]
fn rule_7_an_ack_below_the_probe_does_not_answer_it() {
    let seg = Segment {
        ack: SeqNumber(C_NEXT - 1),
        ..FROM_SERVER
    };
    assert_eq!(kind(&probing(), seg), Kind::Ack);
}

#[test]
fn rule_7_before_13_data_that_answers_a_probe_is_data() {
    let seg = Segment {
        len: DATA.len() as u32,
        payload: DATA,
        ..FROM_SERVER
    };
    assert_eq!(kind(&probing(), seg), Kind::Data);
}

// Rule 8: zero-window-probe-ack.
#[test]
fn rule_8_zero_window_probe_ack() {
    let mut f = established();
    f.dir[0].probe = Some(Outstanding {
        seq: SeqNumber(C_NEXT),
        zero_window: true,
    });
    let seg = Segment {
        win: 0,
        ..FROM_SERVER
    };
    assert_eq!(kind(&f, seg), Kind::ZeroWindowProbeAck);
}

// Rule 9: zero-window.
#[test]
fn rule_9_a_pure_ack_with_window_0_is_a_zero_window() {
    let seg = Segment {
        win: 0,
        ..FROM_SERVER
    };
    assert_eq!(kind(&established(), seg), Kind::ZeroWindow);
}

#[test]
fn rule_7_before_9_an_answer_to_a_probe_with_window_0_stays_an_answer() {
    let seg = Segment {
        win: 0,
        ..FROM_SERVER
    };
    assert_eq!(kind(&probing(), seg), Kind::KeepaliveAck);
}

// Rule 10: window-update.
#[test]
fn rule_10_the_ack_that_reopens_a_zero_window_is_a_window_update() {
    let mut f = established();
    f.dir[1].win = Some(0);
    assert_eq!(kind(&f, FROM_SERVER), Kind::WindowUpdate);
    // Data that reopens it is data.
    let seg = Segment {
        len: DATA.len() as u32,
        payload: DATA,
        ..FROM_SERVER
    };
    assert_eq!(kind(&f, seg), Kind::Data);
}

// Rule 11: handshake-ack.
#[test]
fn rule_11_handshake_ack_acknowledges_the_servers_isn() {
    let mut f = established();
    f.established = false;
    f.dir[1].base = Some(SeqNumber(S_NEXT - 1));
    assert_eq!(kind(&f, SEGMENT), Kind::HandshakeAck);
    // The server's ACK is never the handshake's third segment.
    assert_eq!(kind(&f, FROM_SERVER), Kind::Ack);
}

#[test]
fn rule_11_an_ack_of_something_else_is_a_plain_ack() {
    let mut f = established();
    f.established = false;
    f.dir[1].base = Some(SeqNumber(S_NEXT - 1));
    let seg = Segment {
        ack: SeqNumber(S_NEXT + 10),
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::Ack);
}

// Rule 12: retransmission.
#[test]
fn rule_12_payload_before_next_is_a_retransmission() {
    let seg = Segment {
        seq: SeqNumber(C_NEXT - DATA.len() as u32),
        len: DATA.len() as u32,
        payload: DATA,
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Retransmission);
}

// Rule 13: data.
#[test]
fn rule_13_payload_at_next_is_data() {
    let seg = Segment {
        flags: flags::PSH | flags::ACK,
        len: DATA.len() as u32,
        payload: DATA,
        ..SEGMENT
    };
    assert_eq!(kind(&established(), seg), Kind::Data);
}

#[test]
fn rule_13_payload_with_next_unknown_is_data() {
    let mut f = established();
    f.dir[0].next = None;
    let seg = Segment {
        len: DATA.len() as u32,
        payload: DATA,
        ..SEGMENT
    };
    assert_eq!(kind(&f, seg), Kind::Data);
}

// Rule 14: ack.
#[test]
fn rule_14_bare_ack_at_next_is_an_ack() {
    assert_eq!(kind(&established(), SEGMENT), Kind::Ack);
    assert_eq!(kind(&established(), FROM_SERVER), Kind::Ack);
}

#[test]
fn rule_14_another_window_change_is_an_ack() {
    let seg = Segment {
        win: 4096,
        ..FROM_SERVER
    };
    assert_eq!(kind(&established(), seg), Kind::Ack);
}
