//! One small test per rule, with explicit times: recognition (`detect`),
//! framing across segments, the HTTP/2 keepalive/BDP rule, answers and
//! unanswered pings, the encrypted rhythm.

use super::*;
use crate::core::decode::flags;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn at(s: f64) -> Timestamp {
    Timestamp::new(1_700_000_000, 0).plus(s)
}

/// One connection fed segment by segment, each side at its next sequence
/// number.
struct Conn {
    app: AppAnalysis,
    next: [u32; 2],
}

impl Conn {
    fn new() -> Conn {
        Conn {
            app: AppAnalysis::default(),
            next: [1000, 5000],
        }
    }

    /// A data segment from `from` at its next sequence number, time `t`.
    fn send(&mut self, from: Side, t: f64, payload: &[u8]) -> AppNote {
        let i = from.idx();
        let (client, server) = (
            SocketAddr::new(CLIENT, 55012),
            SocketAddr::new(SERVER, 50051),
        );
        let (src, dst) = if from == Client {
            (client, server)
        } else {
            (server, client)
        };
        let seg = crate::craft::decoded(
            src,
            dst,
            flags::ACK | flags::PSH,
            self.next[i],
            self.next[1 - i],
            payload,
        );
        self.next[i] = self.next[i].wrapping_add(payload.len() as u32);
        self.app
            .segment(&crate::craft::data_ctx(0, at(t), &seg, from))
    }

    fn summary(&mut self) -> Option<AppSummary> {
        let flow = Flow::new(
            1,
            SocketAddr::new(CLIENT, 55012),
            SocketAddr::new(SERVER, 50051),
            at(0.0),
        );
        self.app.finish(&flow, at(0.0))
    }
}

use Side::{Client, Server};

fn h2_ping(ack: bool, data: &[u8; 8]) -> Vec<u8> {
    let mut f = vec![0, 0, 8, 6, u8::from(ack), 0, 0, 0, 0];
    f.extend_from_slice(data);
    f
}

fn h2_data(len: usize) -> Vec<u8> {
    let mut f = vec![
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        0,
        0,
        0,
        0,
        0,
        1,
    ];
    f.resize(9 + len, b'x');
    f
}

fn goaway(error: u8, debug: &[u8]) -> Vec<u8> {
    let len = 8 + debug.len();
    let mut f = vec![
        0, 0, len as u8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, error,
    ];
    f.extend_from_slice(debug);
    f
}

#[test]
fn rule_2_the_h2_preface_starts_http2_and_its_frames_are_followed() {
    let mut c = Conn::new();
    let mut first = h2::PREFACE.to_vec();
    first.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS
    let n = c.send(Client, 0.0, &first);
    assert_eq!(n.event, Some(AppEvent::Recognized(Protocol::Http2)));
    c.send(Server, 0.001, &[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let n = c.send(Client, 10.0, &h2_ping(false, b"12345678"));
    assert_eq!(n.label, Some(Label::Ping));
    let n = c.send(Server, 10.0002, &h2_ping(true, b"12345678"));
    assert_eq!(n.label, Some(Label::PingAck));
    let a = c.summary().unwrap();
    assert_eq!((a.protocol, a.pings, a.pongs), (Protocol::Http2, 1, 1));
    assert!(a.rtt.unwrap() < 0.001);
}

#[test]
fn rule_1_and_3_an_upgrade_counts_from_the_101_and_a_refusal_undoes_it() {
    let mut c = Conn::new();
    c.send(
        Client,
        0.0,
        b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    // The 101 and a server ping in one segment.
    let mut resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
    resp.extend_from_slice(b"\x89\x04abcd");
    let n = c.send(Server, 0.01, &resp);
    assert_eq!(n.label, Some(Label::Ping));
    let n = c.send(Client, 0.02, b"\x8a\x84\x01\x02\x03\x04\x60\x60\x60\x60");
    assert_eq!(n.label, Some(Label::Pong));
    assert!(matches!(
        n.event,
        Some(AppEvent::Answer { rtt: Some(_), .. })
    ));

    let mut refused = Conn::new();
    refused.send(
        Client,
        0.0,
        b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    );
    refused.send(
        Server,
        0.01,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(refused.summary(), None);
}

#[test]
fn rule_1_an_h2c_upgrade_then_the_client_preface_then_frames() {
    let mut c = Conn::new();
    c.send(
        Client,
        0.0,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    );
    // The 101 and the server's SETTINGS in one segment.
    let mut resp =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    resp.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let n = c.send(Server, 0.01, &resp);
    assert_eq!(n.event, Some(AppEvent::Recognized(Protocol::Http2)));
    // The client's preface, then its SETTINGS, then a keepalive PING.
    let mut preface = h2::PREFACE.to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    c.send(Client, 0.02, &preface);
    assert_eq!(
        c.send(Client, 20.0, &h2_ping(false, b"upgraded")).label,
        Some(Label::Ping)
    );
    assert_eq!(
        c.send(Server, 20.001, &h2_ping(true, b"upgraded")).label,
        Some(Label::PingAck)
    );
    let a = c.summary().unwrap();
    assert_eq!((a.protocol, a.pings, a.pongs), (Protocol::Http2, 1, 1));
}

#[test]
fn rule_4_and_5_redis_and_mysql_pings_by_content() {
    let mut r = Conn::new();
    for k in 0..3 {
        let t = f64::from(k) * 10.0;
        assert_eq!(
            r.send(Client, t, b"*1\r\n$4\r\nPING\r\n").label,
            Some(Label::Ping)
        );
        assert_eq!(
            r.send(Server, t + 0.001, b"+PONG\r\n").label,
            Some(Label::Pong)
        );
    }
    let a = r.summary().unwrap();
    assert_eq!((a.protocol, a.pings, a.pongs), (Protocol::Redis, 3, 3));
    assert!((a.interval.unwrap() - 10.0).abs() < 1e-3);

    let mut m = Conn::new();
    // An OK packet before any COM_PING is not a pong.
    m.send(Client, 0.0, &[1, 0, 0, 0, 0x0e]);
    m.send(Server, 0.001, &[7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
    let n = m.send(Server, 0.5, &[7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(n.label, None);
    assert_eq!(
        m.send(Client, 1.0, &[1, 0, 0, 0, 0x01]).label,
        Some(Label::Close)
    );
    let a = m.summary().unwrap();
    assert_eq!((a.protocol, a.pings, a.pongs), (Protocol::Mysql, 1, 1));
}

#[test]
fn rule_6_mid_connection_an_idle_http2_connection_is_found_by_its_ping() {
    let mut c = Conn::new();
    // The capture starts in the middle of a large DATA frame: not frames.
    assert_eq!(c.send(Server, 0.0, &[b'x'; 1200]).label, None);
    let n = c.send(Client, 30.0, &h2_ping(false, b"aaaaaaaa"));
    assert_eq!(n.label, Some(Label::Ping));
    // The server's side is found by its first segment of whole frames.
    let n = c.send(Server, 30.0003, &h2_ping(true, b"aaaaaaaa"));
    assert_eq!(n.label, Some(Label::PingAck));
    c.send(Client, 60.0, &h2_ping(false, b"bbbbbbbb"));
    let mut last = h2_ping(true, b"bbbbbbbb");
    last.extend_from_slice(&goaway(0xb, b"too_many_pings"));
    let n = c.send(Server, 60.0003, &last);
    // A PING ACK and a GOAWAY in one segment: labeled goaway, ACK counted.
    assert_eq!(n.label, Some(Label::Goaway));
    let a = c.summary().unwrap();
    assert_eq!((a.pings, a.pongs), (2, 2));
    let g = a.goaway.unwrap();
    assert!(g.too_many_pings());
    assert_eq!(g.debug.to_string(), "too_many_pings");
    assert_eq!(g.last_stream, 1);
    assert!((g.pinged_every.unwrap() - 30.0).abs() < 1e-3);
}

#[test]
fn rule_7_mid_connection_a_websocket_control_frame_with_the_right_mask() {
    let mut c = Conn::new();
    // A server ping must be unmasked: a masked one from the server is not.
    assert_eq!(
        c.send(Server, 0.0, b"\x89\x84\x01\x02\x03\x04abcd").label,
        None
    );
    assert_eq!(
        c.send(Server, 25.0, b"\x89\x04abcd").label,
        Some(Label::Ping)
    );
}

#[test]
fn rule_8_tls_records_and_ssh_banners_are_encrypted() {
    let mut c = Conn::new();
    let n = c.send(Client, 0.0, b"SSH-2.0-OpenSSH_9.2p1\r\n");
    assert_eq!(n.event, Some(AppEvent::Recognized(Protocol::Encrypted)));
    let mut t = Conn::new();
    let n = t.send(
        Server,
        0.0,
        b"\x17\x03\x03\x00\x22aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    );
    assert_eq!(n.event, Some(AppEvent::Recognized(Protocol::Encrypted)));
}

#[test]
fn a_frame_split_across_segments_is_put_together_and_a_gap_loses_the_boundaries() {
    let mut c = Conn::new();
    let mut first = h2::PREFACE.to_vec();
    let ping = h2_ping(false, b"splitpng");
    first.extend_from_slice(&ping[..5]);
    c.send(Client, 0.0, &first);
    let n = c.send(Client, 0.1, &ping[5..]);
    assert_eq!(n.label, Some(Label::Ping));
    // A hole of 100 bytes: what follows is not read as frames...
    c.next[0] += 100;
    assert_eq!(c.send(Client, 1.0, &h2_data(3)[2..]).label, None);
    // ...until a segment of whole frames.
    assert_eq!(
        c.send(Client, 2.0, &h2_ping(false, b"again!!!")).label,
        Some(Label::Ping)
    );
}

#[test]
fn an_h2_ping_right_after_data_from_the_peer_is_not_a_keepalive() {
    let mut c = Conn::new();
    c.send(Client, 0.0, h2::PREFACE);
    c.send(Server, 0.0, &[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    c.send(Server, 5.0, &h2_data(100));
    let n = c.send(Client, 5.0005, &h2_ping(false, b"bdpprobe"));
    assert!(matches!(
        n.event,
        Some(AppEvent::Ping {
            keepalive: false,
            ..
        })
    ));
    c.send(Server, 5.001, &h2_ping(true, b"bdpprobe"));
    let n = c.send(
        Client,
        5.0 + h2::DATA_RECENT + 0.5,
        &h2_ping(false, b"keepaliv"),
    );
    assert!(matches!(
        n.event,
        Some(AppEvent::Ping {
            keepalive: true,
            ordinal: 1,
            ..
        })
    ));
    let a = c.summary().unwrap();
    assert_eq!(
        (a.pings, a.pongs, a.other_pings, a.unanswered),
        (1, 0, 1, 1)
    );
    assert_eq!(a.trailing_unanswered, 1);
}

#[test]
fn unanswered_pings_in_a_row_and_an_answer_resets_them() {
    let mut c = Conn::new();
    c.send(Server, 0.0, b"\x89\x04aaaa");
    c.send(Client, 0.001, b"\x8a\x84\0\0\0\0aaaa");
    c.send(Server, 20.0, b"\x89\x04bbbb");
    c.send(Server, 40.0, b"\x89\x04cccc");
    let a = c.summary().unwrap();
    assert_eq!((a.pings, a.pongs, a.trailing_unanswered), (3, 1, 2));
    assert_eq!(a.pinger, Some(Server));
}

/// A TLS application-data record of `n` bytes in all.
fn record(n: usize) -> Vec<u8> {
    let mut r = vec![0x17, 3, 3, ((n - 5) >> 8) as u8, (n - 5) as u8];
    r.resize(n, 0xaa);
    r
}

#[test]
fn the_rhythm_needs_three_equal_exchanges_at_a_steady_period() {
    let mut c = Conn::new();
    c.send(Client, 0.0, &record(517)); // a ClientHello-sized record
    let mut labels = Vec::new();
    for k in 0..5 {
        let t = 100.0 + f64::from(k) * 60.0 + if k % 2 == 0 { 0.2 } else { -0.2 };
        labels.push(c.send(Client, t, &record(39)).label);
        labels.push(c.send(Server, t + 0.03, &record(39)).label);
    }
    // Labels from the third exchange on.
    assert_eq!(labels[..5], [None, None, None, None, Some(Label::Ping)]);
    assert_eq!(labels[5], Some(Label::Pong));
    let a = c.summary().unwrap();
    assert_eq!(
        (a.protocol, a.pings, a.exchange),
        (Protocol::Encrypted, 5, Some((39, 39)))
    );
    assert!((a.interval.unwrap() - 59.6).abs() < 0.01);
}

#[test]
fn the_rhythm_does_not_fire_on_irregular_or_bulk_traffic() {
    let mut irregular = Conn::new();
    irregular.send(Client, 0.0, &record(517));
    for (k, gap) in [3.0, 11.0, 4.5, 30.0, 7.0].iter().enumerate() {
        let t = 100.0 + gap * k as f64;
        irregular.send(Client, t, &record(39));
        irregular.send(Server, t + 0.03, &record(39));
    }
    assert_eq!(irregular.summary(), None);

    // Two exchanges, bulk, two exchanges: no run of three.
    let mut bulk = Conn::new();
    bulk.send(Client, 0.0, &record(517));
    for t in [10.0, 20.0] {
        bulk.send(Client, t, &record(39));
        bulk.send(Server, t + 0.03, &record(39));
    }
    bulk.send(Server, 25.0, &record(1400));
    for t in [30.0, 40.0] {
        bulk.send(Client, t, &record(39));
        bulk.send(Server, t + 0.03, &record(39));
    }
    assert_eq!(bulk.summary(), None);

    // Faster than MIN_PERIOD: keystroke echo, not a keepalive.
    let mut typing = Conn::new();
    typing.send(Client, 0.0, b"SSH-2.0-OpenSSH_9.2p1\r\n");
    for k in 0..10 {
        let t = 10.0 + f64::from(k) * 0.2;
        typing.send(Client, t, &[0u8; 36]);
        typing.send(Server, t + 0.01, &[0u8; 36]);
    }
    assert_eq!(typing.summary(), None);
}

#[test]
fn a_password_guessing_loop_is_no_keepalive_either_way_round() {
    // An SSH brute force: 152-byte attempts, 56-byte failures 1.6–2.2 s
    // later (the server's work), the next attempt right after the failure.
    // Read from the attempts, the answers are slow; read from the
    // failures, each "answer" is a bigger new attempt.
    let mut c = Conn::new();
    c.send(Client, 0.0, b"SSH-2.0-libssh2_1.8.0\r\n");
    c.send(Server, 0.01, b"SSH-2.0-OpenSSH_7.4\r\n");
    let mut t = 5.0;
    for work in [1.6, 2.2, 1.9, 1.7, 2.1, 2.0, 1.8, 2.2, 1.6, 1.9] {
        c.send(Client, t, &[0u8; 152]);
        c.send(Server, t + work, &[0u8; 56]);
        t += work + 0.002;
    }
    assert_eq!(c.summary(), None);

    // A keepalive with the same period still counts: the answer is a
    // round trip, and no bigger than the request.
    let mut k = Conn::new();
    k.send(Client, 0.0, b"SSH-2.0-OpenSSH_9.2p1\r\n");
    for n in 0..5 {
        let t = 10.0 + 2.0 * f64::from(n);
        k.send(Client, t, &[0u8; 88]);
        k.send(Server, t + 0.02, &[0u8; 56]);
    }
    let a = k.summary().unwrap();
    assert_eq!((a.protocol, a.pinger), (Protocol::Encrypted, Some(Client)));
}

#[test]
fn per_flow_state_is_small_until_a_protocol_is_found() {
    assert!(std::mem::size_of::<AppAnalysis>() <= 16);
    // The note travels with every packet event.
    assert!(
        std::mem::size_of::<AppNote>() <= 24,
        "{}",
        std::mem::size_of::<AppNote>()
    );
    let mut c = Conn::new();
    for k in 0..50 {
        c.send(Client, f64::from(k), &[b'z'; 1400]);
    }
    assert!(c.app.state.is_none());
}

#[test]
fn a_ping_left_unanswered_by_a_normal_close_is_a_graceful_end() {
    let mut c = Conn::new();
    c.send(Server, 0.0, b"\x89\x04aaaa");
    c.send(Client, 0.001, b"\x8a\x84\0\0\0\0aaaa");
    c.send(Server, 20.0, b"\x89\x04bbbb");
    // The client closes normally (1000) before the pong could come.
    c.send(Client, 20.001, b"\x88\x82\0\0\0\0\x03\xe8");
    let a = c.summary().unwrap();
    assert_eq!((a.trailing_unanswered, a.close_code), (1, Some(1000)));
    assert!(a.graceful_end());
    // A server that gives up (1011) ends otherwise.
    let mut d = Conn::new();
    d.send(Server, 0.0, b"\x89\x04aaaa");
    d.send(Server, 0.5, b"\x88\x02\x03\xf3");
    assert!(!d.summary().unwrap().graceful_end());
}

#[test]
fn a_peer_that_talks_after_unanswered_pings_is_alive_not_timed_out() {
    // Two server pings the client never answers, but it sends data after
    // them and closes normally: its pongs are missing, it is not stuck.
    let mut c = Conn::new();
    c.send(Server, 0.0, b"\x89\x04aaaa");
    c.send(Server, 20.0, b"\x89\x04bbbb");
    c.send(Client, 20.5, b"\x81\x84\0\0\0\0data");
    c.send(Client, 21.0, b"\x88\x82\0\0\0\0\x03\xe8");
    let a = c.summary().unwrap();
    assert_eq!((a.trailing_unanswered, a.peer_talked), (2, true));
    // Data before the pings, silence after them: not talking.
    let mut d = Conn::new();
    d.send(Client, 0.0, b"\x81\x84\0\0\0\0data");
    d.send(Server, 1.0, b"\x89\x04aaaa");
    d.send(Server, 21.0, b"\x89\x04bbbb");
    let a = d.summary().unwrap();
    assert_eq!((a.trailing_unanswered, a.peer_talked), (2, false));
    // One ping, then the peer's Close 1009 (message too big): it answered
    // with a close, not silence.
    let mut e = Conn::new();
    e.send(Server, 0.0, b"\x89\x04aaaa");
    e.send(Client, 0.2, b"\x88\x82\0\0\0\0\x03\xf1");
    let a = e.summary().unwrap();
    assert_eq!(
        (a.trailing_unanswered, a.close_code, a.peer_talked),
        (1, Some(1009), true)
    );
}
