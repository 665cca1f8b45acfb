//! Application-keepalive and HTTP/1.x parsing on arbitrary byte streams, cut
//! into segments anywhere, both directions, with gaps. Never panic; the
//! per-connection state stays within `app::MAX_FOOTPRINT`.
//!
//! Input: byte 0 picks a prelude (HTTP/2 preface, WebSocket upgrade and its
//! 101, Redis PING, none); then segments, each as a control byte (bit 0:
//! from the server; bit 1: a gap of 100 bytes before it), a time step in
//! 10 ms, a length byte and that many bytes.
#![no_main]

use kacap::analyses::Analysis;
use kacap::analyses::app::{AppAnalysis, MAX_FOOTPRINT};
use kacap::craft::{data_ctx, decoded};
use kacap::core::decode::flags;
use kacap::core::flows::Flow;
use kacap::analyses::http::HttpAnalysis;
use kacap::core::seq::SeqNumber;
use kacap::core::tcp::Side;
use kacap::core::time::Timestamp;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

const PRELUDES: [&[&[u8]]; 4] = [
    &[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
    &[
        b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
    &[b"*1\r\n$4\r\nPING\r\n"],
    &[],
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let client: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let server: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    let mut app = AppAnalysis::default();
    let mut http = HttpAnalysis::default();
    let mut next = [SeqNumber(1), SeqNumber(1)];
    let mut t = Timestamp::new(1_700_000_000, 0);
    let mut segs: Vec<(u8, u8, &[u8])> = PRELUDES[usize::from(pick % 4)]
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u8 & 1, 0, *p))
        .collect();
    while let [ctl, dt, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        segs.push((*ctl, *dt, &tail[..n]));
        rest = &tail[n..];
    }
    for (ctl, dt, payload) in segs {
        if payload.is_empty() {
            continue;
        }
        let side = if ctl & 1 == 1 {
            Side::Server
        } else {
            Side::Client
        };
        let i = side.idx();
        if ctl & 2 != 0 {
            next[i] = next[i] + 100;
        }
        t = t.plus(f64::from(dt) / 100.0);
        let (src, dst) = if i == 1 {
            (server, client)
        } else {
            (client, server)
        };
        let flags = flags::ACK | flags::PSH | if ctl & 4 != 0 { flags::FIN } else { 0 };
        let seg = decoded(src, dst, flags, next[i].0, next[1 - i].0, payload);
        next[i] = next[i] + payload.len() as u32;
        let cx = data_ctx(1, t, &seg, side);
        app.segment(&cx);
        http.segment(&cx);
        assert!(app.footprint() <= MAX_FOOTPRINT);
    }
    let flow = Flow::new(1, client, server, t);
    let _ = app.finish(&flow, t);
    let _ = http.finish(&flow, t);
});
