//! HTTP keep-alive beside TCP keepalive.

use crate::craft::*;
use crate::{fixture, json, text};
use serde_json::Value;
use tempfile::TempDir;

fn http(flow: &Value) -> (u64, u64, bool, &str) {
    let h = &flow["http"];
    (
        h["requests"].as_u64().unwrap(),
        h["responses"].as_u64().unwrap(),
        h["keep_alive"].as_bool().unwrap(),
        h["version"].as_str().unwrap(),
    )
}

#[test]
fn real_http_fixture_counts_keep_alive_version_and_closing_side() {
    let j = json(&fixture("http.pcap"), &[]);
    assert_eq!(j.flows.len(), 4);
    // One client reuses its connection for three requests, then closes.
    assert_eq!(http(&j.flows[0]), (3, 3, true, "1.1"));
    assert_eq!(j.flows[0]["closed_by"], "client");
    // Connection: close, twice.
    assert_eq!(http(&j.flows[1]), (1, 1, false, "1.1"));
    assert_eq!(j.flows[1]["closed_by"], "server");
    assert_eq!(http(&j.flows[2]), (1, 1, false, "1.1"));
    assert_eq!(j.flows[2]["closed_by"], "client");
    // HTTP/1.0: no keep-alive, the server closes first.
    assert_eq!(http(&j.flows[3]), (1, 1, false, "1.0"));
    assert_eq!(j.flows[3]["closed_by"], "server");
    for f in &j.flows {
        assert_eq!(
            f["verdict"], "no-keepalive",
            "HTTP keep-alive is not TCP keepalive"
        );
    }
    let t = text(&["-r", fixture("http.pcap").to_str().unwrap()]);
    assert!(t.contains("HTTP GET /b — request 2 on this connection (reused: keep-alive, 300ms after the previous response)"), "{t}");
    assert!(
        t.contains("FIN: server closes first (it will hold TIME_WAIT)"),
        "{t}"
    );
}

#[test]
fn flows_without_http_have_no_http_field() {
    let j = json(&fixture("healthy.pcap"), &[]);
    assert!(j.flow().get("http").is_none());
}

#[test]
fn split_and_pipelined_requests_and_chunked_responses() {
    let dir = TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:50000", "10.0.0.1:9000", Link::Ethernet);
    c.handshake(10, 20)
        // One request split in three segments.
        .seg(Client, PSH | ACK, b"GET /split HT")
        .seg(Client, PSH | ACK, b"TP/1.1\r\nHost: x\r\n\r")
        .seg(Client, PSH | ACK, b"\n")
        .seg(Server, PSH | ACK, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
        .wait(0.5)
        // Two pipelined requests in one segment, a HEAD among them.
        .seg(Client, PSH | ACK, b"GET /p1 HTTP/1.1\r\n\r\nHEAD /p2 HTTP/1.1\r\n\r\n")
        // Both responses in one segment; the HEAD response has no body.
        .seg(Server, PSH | ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        .seg(Client, FIN | ACK, &[])
        .seg(Server, FIN | ACK, &[])
        .seg(Client, ACK, &[]);
    let path = dir.path().join("pipelined.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let j = json(&path, &[]);
    assert_eq!(http(j.flow()), (3, 3, true, "1.1"));
    let t = text(&["-r", path.to_str().unwrap()]);
    assert!(t.contains("HTTP GET /split — request 1"), "{t}");
    assert!(t.contains("HTTP GET /p1 — request 2 on this connection (reused: keep-alive, 500ms after the previous response)"), "{t}");
}

/// A request line whose head never ends (an attack probe, a cut capture)
/// says nothing about HTTP: no `http` member, rather than one with no
/// request and no response (46 flow records of a third-party corpus had
/// one).
#[test]
fn a_request_head_that_never_ends_gives_no_http_record() {
    let dir = TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:50000", "10.0.0.1:80", Link::Ethernet);
    c.handshake(10, 20)
        .seg(
            Client,
            PSH | ACK,
            b"GET /cgi-bin/x.sh HTTP/1.1\r\nUser-Agent: () { :; };",
        )
        .seg(Server, ACK, &[])
        .seg(Client, FIN | ACK, &[])
        .seg(Server, FIN | ACK, &[])
        .seg(Client, ACK, &[]);
    let path = dir.path().join("unended.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let j = json(&path, &[]);
    assert!(j.flow().get("http").is_none(), "{:?}", j.flow());
    assert_eq!(j.flow()["verdict"], "no-keepalive");
}

#[test]
fn http_on_any_port_is_recognized_by_the_request_line_not_the_port() {
    let dir = TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:50000", "10.0.0.1:80", Link::Ethernet);
    c.handshake(10, 20)
        .exchange(Client, b"\x16\x03\x01\x02\x00 not http at all");
    let path = dir.path().join("tls-on-80.pcap");
    c.write_pcap(&path, PcapOpts::default());
    assert!(json(&path, &[]).flow().get("http").is_none());
}

/// Not HTTP/1.x: the HTTP/2 prior-knowledge preface (h2c) and a text
/// protocol's `GET / chatty` line are not counted as requests; a WebSocket
/// upgrade is one exchange (the 101 is its response), then frames, not
/// requests.
#[test]
fn h2c_and_a_versionless_line_are_not_http1_and_a_websocket_upgrade_is_one_exchange() {
    let dir = TempDir::new().unwrap();
    let mut h2c = Conn::new("10.0.0.2:40000", "10.0.0.1:8080", Link::Ethernet);
    h2c.handshake(1, 2)
        .exchange(
            Client,
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
        )
        .exchange(Server, b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    let p = dir.path().join("h2c.pcap");
    h2c.write_pcap(&p, PcapOpts::default());
    assert!(
        json(&p, &[]).flow().get("http").is_none(),
        "h2c read as HTTP/1.x"
    );

    let mut chatty = Conn::new("10.0.0.2:40001", "10.0.0.1:7000", Link::Ethernet);
    chatty
        .handshake(1, 2)
        .exchange(Client, b"GET / chatty\n")
        .exchange(Server, b"OK\n");
    let p = dir.path().join("chatty.pcap");
    chatty.write_pcap(&p, PcapOpts::default());
    assert!(
        json(&p, &[]).flow().get("http").is_none(),
        "a versionless line read as HTTP"
    );

    let mut ws = Conn::new("10.0.0.2:40002", "10.0.0.1:8765", Link::Ethernet);
    ws.handshake(1, 2)
        .exchange(
            Client,
            b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .exchange(
            Server,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        )
        .exchange(Client, b"\x89\x80\x01\x02\x03\x04")
        .exchange(Server, b"\x8a\x00");
    let p = dir.path().join("ws.pcap");
    ws.write_pcap(&p, PcapOpts::default());
    let j = json(&p, &[]);
    let h = &j.flow()["http"];
    assert_eq!(
        (h["requests"].as_u64(), h["responses"].as_u64()),
        (Some(1), Some(1)),
        "{h}"
    );
}

/// Client data after the server's FIN is stale only if the server no longer
/// reads: a server that closed just its sending side (shutdown(SHUT_WR))
/// acknowledges it — a half-close, not a stale pooled connection.
#[test]
fn data_after_a_half_close_that_the_server_acknowledges_is_not_stale() {
    let dir = TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:50000", "10.0.0.1:80", Link::Ethernet);
    c.handshake(10, 20)
        .exchange(Client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .exchange(Server, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .seg(Server, FIN | ACK, &[])
        .seg(Client, ACK, &[])
        .seg(Client, PSH | ACK, b"GET /more HTTP/1.1\r\nHost: x\r\n\r\n")
        .seg(Server, ACK, &[])
        .seg(Client, FIN | ACK, &[])
        .seg(Server, ACK, &[]);
    let path = dir.path().join("half-close.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let t = text(&["-r", path.to_str().unwrap()]);
    assert!(
        t.contains(
            "a stale pooled connection if the server answers RST, a half-close if it acknowledges"
        ),
        "{t}"
    );
    assert!(t.contains("(a half-close, not a stale connection)"), "{t}");
    let j = json(&path, &[]);
    let flow = j.flow();
    assert_eq!(flow["http"]["stale_request"], false);
    assert_ne!(flow["verdict"], "stale-connection");
}
