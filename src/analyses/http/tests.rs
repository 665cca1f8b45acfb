//! The HTTP analysis on explicit segments.

mod unit {
    use super::super::*;

    fn t(s: f64) -> Timestamp {
        Timestamp::new(1_700_000_000, 0).plus(s)
    }

    #[test]
    fn split_and_pipelined_requests_are_counted() {
        let mut h = Http::new();
        let mut seq = SeqNumber(1000);
        let send = |h: &mut Http, client: bool, bytes: &[u8], at: f64, seq: &mut SeqNumber| {
            let n = h.feed(client, *seq, bytes.len() as u32, bytes, t(at));
            *seq = *seq + bytes.len() as u32;
            n
        };
        // A request split in three segments, in the middle of "\r\n\r\n".
        assert_eq!(send(&mut h, true, b"GET /a HT", 0.0, &mut seq), None);
        assert_eq!(
            send(&mut h, true, b"TP/1.1\r\nHost: x\r\n\r", 0.1, &mut seq),
            None
        );
        // The note goes with the segment that completes the head.
        assert!(matches!(
            send(&mut h, true, b"\n", 0.2, &mut seq),
            Some(HttpNote::Request {
                number: 1,
                reused: false,
                ..
            })
        ));
        assert_eq!(h.requests, 1);
        // Two pipelined requests in one segment.
        let two = b"GET /b HTTP/1.1\r\n\r\nHEAD /c HTTP/1.1\r\nConnection: close\r\n\r\n";
        assert!(matches!(
            send(&mut h, true, two, 1.0, &mut seq),
            Some(HttpNote::Request {
                number: 2,
                reused: true,
                ..
            })
        ));
        assert_eq!(h.requests, 3);
        let mut rs = SeqNumber(9);
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 99\r\nConnection: close\r\n\r\n";
        send(&mut h, false, resp, 1.1, &mut rs);
        assert_eq!(h.responses, 3, "the HEAD response has no body");
        assert_eq!(h.version, Some("1.1"));
        assert!(h.keep_alive());
    }

    #[test]
    fn http_1_0_defaults_to_close() {
        let mut h = Http::new();
        let req = b"GET / HTTP/1.0\r\n\r\n";
        h.feed(true, SeqNumber(1), req.len() as u32, req, t(0.0));
        let resp = b"HTTP/1.0 200 OK\r\n\r\nbody until close";
        h.feed(false, SeqNumber(1), resp.len() as u32, resp, t(0.1));
        h.closed(t(0.2));
        assert_eq!((h.requests, h.responses), (1, 1));
        assert_eq!(h.version, Some("1.0"));
        assert!(!h.keep_alive());
    }

    #[test]
    fn a_gap_in_the_capture_stops_reading_that_direction() {
        let mut h = Http::new();
        let req = b"GET / HTTP/1.1\r\n\r\n";
        h.feed(true, SeqNumber(1), req.len() as u32, req, t(0.0));
        h.feed(true, SeqNumber(500), req.len() as u32, req, t(1.0));
        assert_eq!(h.requests, 1);
        assert!(!looks_like_request(b"\x16\x03\x01 TLS"));
        assert!(looks_like_request(b"OPTIONS * HTTP/1.1"));
        assert!(looks_like_request(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(looks_like_request(b"GET /a-very-long-target-split"));
    }

    #[test]
    fn not_http1_the_h2c_preface_and_a_line_without_a_version() {
        assert!(!looks_like_request(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(!looks_like_request(b"GET / chatty\n"));
        assert!(!looks_like_request(b"PING\r\n"));
    }

    #[test]
    fn a_websocket_upgrade_is_one_exchange_then_not_http() {
        let mut h = Http::new();
        let req = b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        h.feed(true, SeqNumber(1), req.len() as u32, req, t(0.0));
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello";
        let note = h.feed(false, SeqNumber(1), resp.len() as u32, resp, t(0.1));
        assert!(matches!(note, Some(HttpNote::Response { status: 101, .. })));
        // WebSocket frames after it, both ways: no more requests or responses.
        let frame = b"\x81\x85\x00\x00\x00\x00hello\r\n\r\n";
        h.feed(
            true,
            SeqNumber(1 + req.len() as u32),
            frame.len() as u32,
            frame,
            t(0.2),
        );
        assert_eq!((h.requests, h.responses), (1, 1));
    }
}
