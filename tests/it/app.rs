//! Application keepalives beside TCP keepalive (#15): real captures of
//! grpcio, websockets, redis-server, MariaDB and nginx made by
//! fixtures/make-app-fixtures.py, and crafted ones shaped like the field
//! (captures started on an idle connection, real gRPC / LB timers, a busy
//! link).

use crate::craft::*;
use crate::{Json, fixture, json, kacap, text};
use serde_json::Value;
use tempfile::TempDir;

fn app(flow: &Value) -> &Value {
    &flow["app_keepalive"]
}

fn labels(j: &Json, flow: u64, label: &str) -> usize {
    j.packets
        .iter()
        .filter(|p| p["flow"] == flow && p["app"] == label)
        .count()
}

fn close_to(v: &Value, want: f64, tol: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() <= tol)
}

#[test]
fn grpc_keepalive_pings_are_http2_pings_answered_and_bdp_pings_are_not_counted() {
    let j = json(&fixture("grpc-keepalive.pcap"), &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "app-keepalive", "{f}");
    let a = app(f);
    assert_eq!(a["protocol"], "http2");
    assert_eq!(
        (a["pings"].as_u64(), a["pongs"].as_u64()),
        (Some(4), Some(4))
    );
    assert!(close_to(&a["interval"], 1.0, 0.05), "{a}");
    assert_eq!(a["unanswered"], 0);
    assert_eq!(a["pinger"], "client");
    assert!(f.get("goaway").is_none());
    // Every PING is labeled, the two sent with data (BDP) too; every ACK.
    assert_eq!(labels(&j, 1, "ping"), 6);
    assert_eq!(labels(&j, 1, "ping-ack"), 6);
    assert!(f.get("http").is_none(), "h2c is not HTTP/1.x");
    let t = text(&["-r", fixture("grpc-keepalive.pcap").to_str().unwrap()]);
    assert!(
        t.contains("HTTP/2 PING from client (application keepalive #1)"),
        "{t}"
    );
    assert!(t.contains("flow-control/BDP probe, not a keepalive"), "{t}");
    assert!(t.contains("; PING ACK in "), "{t}");
}

#[test]
fn grpc_too_many_pings_is_told_with_what_to_change() {
    let path = fixture("grpc-too-many-pings.pcap");
    let j = json(&path, &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "too-many-pings", "{f}");
    assert_eq!(
        f["goaway"],
        serde_json::json!({"error":"ENHANCE_YOUR_CALM","debug":"too_many_pings","last_stream":1,"from":"server"})
    );
    assert_eq!(
        (app(f)["pings"].as_u64(), app(f)["pongs"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(close_to(&app(f)["interval"], 1.0, 0.05));
    assert_eq!(labels(&j, 1, "goaway"), 1);
    let e = text(&["-r", path.to_str().unwrap(), "--explain"]);
    for needle in [
        "— too-many-pings",
        "The server refused the client's pings: GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\"",
        "the client pinged every 1.00s",
        "5 min by default",
        "GRPC_ARG_KEEPALIVE_TIME_MS",
        "EnforcementPolicy",
        "What to change",
    ] {
        assert!(e.contains(needle), "{needle:?} not in\n{e}");
    }
    assert!(e.contains("HTTP/2 GOAWAY"), "the diagram row: {e}");
}

#[test]
fn grpc_over_tls_is_a_likely_keepalive_by_its_rhythm_and_a_bulk_transfer_is_not() {
    let j = json(&fixture("grpc-tls-keepalive.pcap"), &[]);
    // Flow 1: the client tried ::1 first, refused.
    let f = &j.flows[1];
    assert_eq!(f["verdict"], "app-keepalive", "{f}");
    let a = app(f);
    assert_eq!(a["protocol"], "encrypted");
    assert_eq!(a["exchange"], serde_json::json!([39, 39]));
    assert!(a["pings"].as_u64().unwrap() >= 5, "{a}");
    assert!(close_to(&a["interval"], 1.0, 0.05), "{a}");
    assert!(labels(&j, 2, "ping") >= 3 && labels(&j, 2, "pong") >= 3);
    // Once the third exchange established the rhythm, the first two are
    // relabeled (files too), right after that answer.
    let revised: Vec<(&Value, &Value, &Value)> = j
        .revisions
        .iter()
        .map(|r| (&r["flow"], &r["kind"], &r["app"]))
        .collect();
    let (d, p, q) = (&"data".into(), &"ping".into(), &"pong".into());
    let two = &2.into();
    assert_eq!(
        revised,
        [(two, d, p), (two, d, q), (two, d, p), (two, d, q)]
    );
    let t = text(&["-r", fixture("grpc-tls-keepalive.pcap").to_str().unwrap()]);
    assert!(
        t.contains("  ↳ flow 2: frames 19, 20, 22 and 23 were the client's first two keepalive exchanges (ping, pong, ping, pong)"),
        "{t}"
    );
    let e = text(&[
        "-r",
        fixture("grpc-tls-keepalive.pcap").to_str().unwrap(),
        "--explain",
    ]);
    assert!(
        e.contains("Likely an application keepalive, encrypted"),
        "{e}"
    );
    assert!(e.contains("this is an inference"), "{e}");

    let bulk = json(&fixture("tls-bulk.pcap"), &[]);
    let f = bulk.flow();
    assert!(f.get("app_keepalive").is_none(), "{f}");
    assert_eq!(f["verdict"], "no-keepalive");
    assert!(bulk.packets.iter().all(|p| p.get("app").is_none()));
}

#[test]
fn websocket_pings_both_ways_and_how_it_closed() {
    let j = json(&fixture("websocket.pcap"), &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "app-keepalive");
    let a = app(f);
    assert_eq!(a["protocol"], "websocket");
    assert_eq!(a["pinger"], "both");
    assert_eq!(a["pings"], a["pongs"]);
    assert_eq!(
        (a["close_code"].as_u64(), a["abrupt"].as_bool()),
        (Some(1000), Some(false))
    );
    assert!(labels(&j, 1, "close") >= 1);
    // The upgrade is one HTTP/1.1 exchange.
    assert_eq!(f["http"]["requests"], 1);
    assert_eq!(f["http"]["responses"], 1);

    let killed = json(&fixture("websocket-1006.pcap"), &[]);
    let a = app(killed.flow());
    assert_eq!(
        (a["close_code"].is_null(), a["abrupt"].as_bool()),
        (true, Some(true))
    );
    let e = text(&[
        "-r",
        fixture("websocket-1006.pcap").to_str().unwrap(),
        "--explain",
    ]);
    assert!(e.contains("without a WebSocket Close frame"), "{e}");
    assert!(e.contains("1006"), "{e}");
}

#[test]
fn a_frozen_websocket_peer_is_an_app_ping_timeout() {
    let path = fixture("websocket-frozen.pcap");
    let j = json(&path, &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "app-ping-timeout", "{f}");
    let a = app(f);
    assert!(a["unanswered"].as_u64().unwrap() >= 1);
    assert_eq!(a["close_code"], 1011);
    let e = text(&["-r", path.to_str().unwrap(), "--explain"]);
    assert!(
        e.contains("went unanswered, and then the connection ended"),
        "{e}"
    );
    assert!(e.contains("keepalive ping timeout"), "{e}");
}

#[test]
fn redis_and_mysql_pings_on_any_port() {
    let j = json(&fixture("redis.pcap"), &[]);
    assert_eq!(j.flows.len(), 3);
    for f in &j.flows {
        assert_eq!(app(f)["protocol"], "redis");
        assert_eq!(f["verdict"], "app-keepalive");
        assert_eq!(app(f)["pings"], app(f)["pongs"]);
    }
    // redis-py's pings, then inline PINGs, 1 s apart.
    assert_eq!(app(&j.flows[1])["pings"], 4);
    assert!(close_to(&app(&j.flows[1])["interval"], 1.0, 0.05));
    assert_eq!(app(&j.flows[2])["pings"], 3);
    let t = text(&["-r", fixture("redis.pcap").to_str().unwrap()]);
    assert!(
        t.contains("Redis PING from client (application keepalive"),
        "{t}"
    );
    assert!(t.contains("; +PONG in "), "{t}");

    let m = json(&fixture("mysql.pcap"), &[]);
    let f = m.flow();
    assert_eq!(app(f)["protocol"], "mysql");
    assert_eq!(
        (app(f)["pings"].as_u64(), app(f)["pongs"].as_u64()),
        (Some(4), Some(4))
    );
    assert!(close_to(&app(f)["interval"], 1.0, 0.05));
    assert_eq!(labels(&m, 1, "close"), 1, "COM_QUIT");
}

#[test]
fn the_keep_alive_pool_race_on_a_real_nginx() {
    let path = fixture("http-pool-race.pcap");
    let j = json(&path, &[]);
    assert_eq!(j.flows.len(), 2);
    let race = &j.flows[0];
    assert_eq!(race["verdict"], "stale-connection", "{race}");
    let h = &race["http"];
    assert_eq!(h["stale_request"], true);
    assert!(close_to(&h["server_idle_close"], 2.0, 0.05), "{h}");
    assert_eq!(h["advertised_timeout"], 2.0);
    assert!(h["client_idle_close"].is_null());
    // The benign order: the client closes first, 1 s after.
    let safe = &j.flows[1];
    assert_eq!(safe["verdict"], "no-keepalive");
    assert_eq!(safe["http"]["stale_request"], false);
    assert!(close_to(&safe["http"]["client_idle_close"], 1.0, 0.05));
    assert!(safe["http"]["server_idle_close"].is_null());

    let t = text(&["-r", path.to_str().unwrap()]);
    assert!(
        t.contains("sent after the server closed 2.00s after its last response (its FIN above)"),
        "{t}"
    );
    assert!(
        t.contains("the client sees ECONNRESET (keep-alive race)"),
        "{t}"
    );
    let e = text(&["-r", path.to_str().unwrap(), "--explain"]);
    assert!(e.contains("Order the timeouts"), "{e}");
    assert!(e.contains("`Keep-Alive: timeout=2`"), "{e}");
    // Across the two connections: a bound on the server's timeout. The
    // request into the closed connection is not a reuse that survived.
    assert!(
        e.contains("Server 127.0.0.1:8080, from 2 kept-alive connections: it keeps an idle connection at least 1.00s and closes it after about 2.00s"),
        "{e}"
    );
    assert!(
        e.contains("longest pause between a response and the next request 300ms"),
        "{e}"
    );
}

// Crafted, shaped like the field.

const T0: f64 = 1_700_000_000.0;

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Mid-connection (no handshake, no preface), on a busy link.
fn mid(client: &str, server: &str, t: f64) -> Conn {
    let mut c = Conn::new(client, server, Link::Ethernet);
    c.t = t;
    c.next = [0x1000_0000, 0x7000_0000];
    c
}

fn write(dir: &TempDir, name: &str, frames: &[(f64, Vec<u8>)]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    write_pcap(&path, 1, frames, PcapOpts::default());
    path
}

#[test]
fn field_grpc_too_many_pings_with_a_30s_keepalive_seen_mid_connection() {
    // grpc-go ClientParameters{Time: 30s, PermitWithoutStream: true}
    // against a server with the default EnforcementPolicy (MinTime 5 min):
    // the third early ping gets GOAWAY ENHANCE_YOUR_CALM. The capture
    // starts on the idle connection, among other traffic.
    let mut c = mid("10.0.0.2:55012", "10.0.0.1:50051", T0 + 3.0);
    for (k, data) in [b"00000001", b"00000002", b"00000003"].iter().enumerate() {
        c.t = T0 + 3.0 + 30.0 * k as f64;
        c.seg(Client, PSH | ACK, &h2_frame(6, 0, 0, *data));
        let mut answer = h2_frame(6, 1, 0, *data);
        if k == 2 {
            let mut g = vec![0, 0, 0, 1, 0, 0, 0, 0x0b];
            g.extend_from_slice(b"too_many_pings");
            answer.extend_from_slice(&h2_frame(7, 0, 0, &g));
        }
        c.wait(0.012).seg(Server, PSH | ACK, &answer);
        c.wait(0.012).seg(Client, ACK, &[]);
    }
    c.seg(Server, FIN | ACK, &[]).seg(Client, FIN | ACK, &[]);
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "grpc-field.pcap",
        &merge(vec![c.frames, busy_link(T0, 70.0, 100.0)]),
    );
    let j = json(&path, &[]);
    let f = j
        .flows
        .iter()
        .find(|f| f["server"] == "10.0.0.1:50051")
        .unwrap();
    assert_eq!(f["verdict"], "too-many-pings", "{f}");
    assert!(close_to(&app(f)["interval"], 30.0, 0.01), "{f}");
    assert_eq!(f["goaway"]["debug"], "too_many_pings");
    let e = text(&["-r", path.to_str().unwrap(), "--explain"]);
    assert!(e.contains("the client pinged every 30.00s"), "{e}");
}

#[test]
fn field_websocket_behind_a_load_balancer_the_client_stops_answering() {
    // A server pinging every 25 s (under a 60 s LB idle timeout), seen
    // mid-connection: two pongs, then two pings unanswered (the peer's
    // kernel still ACKs), then the server's Close 1011 and FIN.
    let mut c = mid("192.0.2.7:51234", "198.51.100.5:443", T0);
    for k in 0..4u8 {
        c.t = T0 + 25.0 * f64::from(k);
        let data = [b'p', b'i', b'n', b'0' + k];
        let mut ping = vec![0x89, 4];
        ping.extend_from_slice(&data);
        c.seg(Server, PSH | ACK, &ping);
        if k < 2 {
            let mut pong = vec![0x8a, 0x84, 1, 2, 3, 4];
            pong.extend(data.iter().zip([1u8, 2, 3, 4]).map(|(b, m)| b ^ m));
            c.wait(0.04).seg(Client, PSH | ACK, &pong);
        } else {
            c.wait(0.04).seg(Client, ACK, &[]);
        }
    }
    c.wait(10.0)
        .seg(Server, PSH | ACK, b"\x88\x02\x03\xf3")
        .seg(Server, FIN | ACK, &[]);
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "ws-field.pcap", &c.frames);
    let f = json(&path, &[]).flow().clone();
    assert_eq!(f["verdict"], "app-ping-timeout", "{f}");
    let a = app(&f);
    assert_eq!(
        (a["pings"].as_u64(), a["pongs"].as_u64()),
        (Some(4), Some(2))
    );
    assert!(close_to(&a["interval"], 25.0, 0.01));
    assert_eq!(a["pinger"], "server");
    assert_eq!(a["close_code"], 1011);
}

#[test]
fn field_the_keep_alive_race_when_the_request_crosses_the_servers_fin() {
    // Seen from the client: its request leaves just before the server's
    // idle close (Node's default keepAliveTimeout, 5 s) reaches it; the FIN
    // does not acknowledge the request; the server's kernel answers RST.
    let mut c = Conn::new("10.1.0.9:40500", "10.1.0.1:3000", Link::Ethernet);
    c.t = T0;
    c.handshake(100, 900)
        .exchange(Client, b"GET /a HTTP/1.1\r\nHost: api\r\n\r\n")
        .exchange(
            Server,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nok",
        );
    c.wait(5.0)
        .seg(Client, PSH | ACK, b"GET /b HTTP/1.1\r\nHost: api\r\n\r\n");
    // The server's FIN, sent before the request arrived: its ack is old.
    let fin_ack = c.next[0] - 30;
    let seq = c.next[1];
    c.raw(Server, FIN | ACK, seq, fin_ack, 512, &[], &[]);
    c.next[1] += 1;
    c.wait(0.0002).raw(Server, RST, seq + 1, 0, 0, &[], &[]);
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "crossed.pcap", &c.frames);
    let f = json(&path, &[]).flow().clone();
    assert_eq!(f["verdict"], "stale-connection", "{f}");
    assert!(close_to(&f["http"]["server_idle_close"], 5.0, 0.01), "{f}");
    assert_eq!(f["http"]["advertised_timeout"], 5.0);
    let t = text(&["-r", path.to_str().unwrap()]);
    assert!(t.contains("(they cross)"), "{t}");
}

#[test]
fn app_keepalive_is_absent_for_plain_tcp_keepalive_fixtures() {
    for name in [
        "healthy.pcap",
        "dead-peer.pcap",
        "http.pcap",
        "idle-drop.pcap",
    ] {
        let j = json(&fixture(name), &[]);
        for f in &j.flows {
            assert!(f.get("app_keepalive").is_none(), "{name}: {f}");
            assert!(f.get("goaway").is_none(), "{name}: {f}");
        }
        assert!(j.packets.iter().all(|p| p.get("app").is_none()), "{name}");
    }
    // The table gains its column only when some flow has one.
    let t = String::from_utf8(
        kacap()
            .args(["-r", fixture("healthy.pcap").to_str().unwrap(), "--summary"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(!t.contains("app keepalive"), "{t}");
}
