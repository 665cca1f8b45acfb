//! Property tests (proptest) on the library: sequence arithmetic, the
//! keepalive rule, flow-table invariants, and JSON that always parses.

use kacap::core::decode::LinkType;
use kacap::core::flows::Options;
use kacap::core::seq::SeqNumber;
use kacap::core::tcp::Kind;
use kacap::core::time::Timestamp;
use kacap::craft::tcp_packet;
use kacap::pipeline::drive::analyze;
use kacap::pipeline::event::{MemorySource, PacketEvent, Sink, Stats};
use kacap::pipeline::summary::FlowSummary;
use kacap::report::json::{JsonOptions, JsonSink};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;

/// A raw IPv4 + TCP packet (LinkType::Raw) between client 10.0.1.`client`
/// and the server 10.0.0.1:5432, `len` bytes of payload.
fn packet(client: u8, from_server: bool, flags: u8, seq: u32, ack: u32, len: usize) -> Vec<u8> {
    let c = SocketAddr::from(([10, 0, 1, client], 40000));
    let s = SocketAddr::from(([10, 0, 0, 1], 5432));
    let (src, dst) = if from_server { (s, c) } else { (c, s) };
    tcp_packet(src, dst, flags, seq, ack, 512, &vec![0x61; len])
}

/// One generated segment, relative to what its sender sent so far.
#[derive(Clone, Debug)]
struct Step {
    client: u8,
    from_server: bool,
    flags: u8,
    /// Offset from the sender's highest sequence so far (may be negative).
    offset: i32,
    len: usize,
    gap_ms: u32,
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    let flags = prop_oneof![
        4 => Just(0x10u8),
        2 => Just(0x18u8),
        1 => Just(0x02u8),
        1 => Just(0x12u8),
        1 => Just(0x11u8),
        1 => Just(0x04u8),
        1 => Just(0x14u8),
        1 => any::<u8>(),
    ];
    prop::collection::vec(
        (
            0u8..4,
            any::<bool>(),
            flags,
            -3i32..3,
            prop_oneof![4 => Just(0usize), 2 => Just(1usize), 1 => 2usize..40],
            0u32..3000,
        )
            .prop_map(|(client, from_server, flags, offset, len, gap_ms)| Step {
                client,
                from_server,
                flags,
                offset,
                len,
                gap_ms,
            }),
        1..max,
    )
}

/// Records what the analyzer says, and checks invariants as it goes.
#[derive(Default)]
struct Check {
    events: u64,
    /// Per flow id: packets seen in events.
    packets: HashMap<u32, u64>,
    reported: HashSet<u32>,
    kinds: Vec<Kind>,
    finished: bool,
    stats: Stats,
}

impl Sink for Check {
    fn packet(&mut self, ev: &PacketEvent) -> std::io::Result<()> {
        assert!(
            !self.reported.contains(&ev.flow_id),
            "packet for flow {} after its record",
            ev.flow_id
        );
        self.events += 1;
        *self.packets.entry(ev.flow_id).or_default() += 1;
        self.kinds.push(ev.kind);
        Ok(())
    }

    fn flow(&mut self, flow: &FlowSummary) -> std::io::Result<()> {
        assert!(
            self.reported.insert(flow.id),
            "flow {} reported twice",
            flow.id
        );
        assert_eq!(
            self.packets.get(&flow.id).copied().unwrap_or(0),
            flow.packets
        );
        Ok(())
    }

    fn finish(&mut self, stats: &Stats) -> std::io::Result<()> {
        self.finished = true;
        self.stats = *stats;
        assert_eq!(stats.tcp_segments, self.events);
        assert_eq!(stats.frames, stats.tcp_segments + stats.skipped);
        Ok(())
    }
}

/// Turns steps into frames, tracking each sender's highest sequence number
/// (the model the keepalive rule is checked against).
fn frames(steps: &[Step]) -> (Vec<(Timestamp, Vec<u8>)>, Vec<bool>) {
    let mut high: HashMap<(u8, bool), u32> = HashMap::new();
    let mut t = Timestamp::new(1_700_000_000, 0);
    let mut out = Vec::new();
    let mut advances = Vec::new();
    for s in steps {
        let mine = *high
            .entry((s.client, s.from_server))
            .or_insert(u32::MAX - 50 + u32::from(s.client));
        let theirs = *high
            .entry((s.client, !s.from_server))
            .or_insert(7_000 + u32::from(s.client));
        let seq = mine.wrapping_add(s.offset as u32);
        let syn_fin = u32::from(s.flags & 0x02 != 0) + u32::from(s.flags & 0x01 != 0);
        let end = seq.wrapping_add(s.len as u32 + syn_fin);
        // Advancing: it carries sequence space (data, SYN, FIN) beyond all
        // its sender sent before. (A bare ACK occupies none.)
        let adv = s.len as u32 + syn_fin > 0 && SeqNumber(end) > SeqNumber(mine);
        advances.push(adv);
        if SeqNumber(end) > SeqNumber(mine) && s.flags & 0x04 == 0 {
            high.insert((s.client, s.from_server), end);
        }
        t = t.plus(f64::from(s.gap_ms) / 1000.0);
        out.push((
            t,
            packet(s.client, s.from_server, s.flags, seq, theirs, s.len),
        ));
    }
    (out, advances)
}

/// Runs the pipeline on frames in memory.
fn run(link: LinkType, frames: &[(Timestamp, Vec<u8>)], options: Options, sink: impl Sink) {
    let mut src = MemorySource::new(link, frames.to_vec());
    analyze(&mut src, options, sink, &AtomicBool::new(false)).unwrap();
}

fn check(frames: &[(Timestamp, Vec<u8>)]) -> Check {
    let mut check = Check::default();
    let options = Options {
        linger: 2.0,
        idle_timeout: 30.0,
        ..Options::default()
    };
    run(LinkType::Raw, frames, options, &mut check);
    check
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sequence_comparison_wraps(a in any::<u32>(), d in 1u32..(1 << 31)) {
        let x = SeqNumber(a);
        let y = x + d;
        prop_assert!(y > x);
        prop_assert!(x < y);
        prop_assert_eq!(y.diff(x), d as i32);
        prop_assert_eq!(x.max(y), y);
        prop_assert_eq!(y - d, x);
    }

    #[test]
    fn a_segment_that_advances_is_never_a_keepalive(s in steps(60)) {
        let (frames, advances) = frames(&s);
        let check = check(&frames);
        // Held segments are analyzed in order, so kinds line up with frames.
        prop_assert_eq!(check.kinds.len(), frames.len());
        for (i, kind) in check.kinds.iter().enumerate() {
            if advances[i] {
                prop_assert_ne!(*kind, Kind::Keepalive, "step {} {:?}", i, s[i]);
            }
        }
    }

    #[test]
    fn flow_table_invariants_hold_under_any_interleaving(s in steps(120)) {
        let (frames, _) = frames(&s);
        let check = check(&frames);
        prop_assert!(check.finished);
        // Every flow that had packets was reported exactly once.
        let with_packets: HashSet<u32> = check.packets.keys().copied().collect();
        prop_assert_eq!(with_packets, check.reported.clone());
        prop_assert_eq!(check.packets.values().sum::<u64>(), check.events);
    }

    #[test]
    fn json_is_always_json_lines(raw in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..40),
                                 s in steps(30),
                                 link in prop_oneof![Just(LinkType::Raw), Just(LinkType::Ethernet), Just(LinkType::LinuxSll2), Just(LinkType::Null)]) {
        let (mut frames, _) = frames(&s);
        // Random bytes mixed in among valid segments.
        for (i, r) in raw.into_iter().enumerate() {
            let at = (i * 7) % (frames.len() + 1);
            let ts = frames.get(at).map_or(Timestamp::new(1_700_000_000, 0), |f| f.0);
            frames.insert(at, (ts, r));
        }
        let mut out = Vec::new();
        let opts = JsonOptions { packets: true, ..JsonOptions::default() };
        run(link, &frames, Options::default(), JsonSink::new(&mut out, opts));
        let text = String::from_utf8(out).unwrap();
        let mut last = None;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
            last = v["type"].as_str().map(String::from);
        }
        prop_assert_eq!(last.as_deref(), Some("summary"));
    }
}

/// Application-keepalive parsing on arbitrary streams: whatever the bytes
/// and however they are cut into segments (after an HTTP/2 preface, a
/// WebSocket upgrade, or nothing), no panic, and the per-connection state
/// stays within `app::MAX_FOOTPRINT`.
mod app_streams {
    use kacap::analyses::Analysis;
    use kacap::analyses::app::{AppAnalysis, MAX_FOOTPRINT};
    use kacap::analyses::http::HttpAnalysis;
    use kacap::core::decode::flags;
    use kacap::core::flows::Flow;
    use kacap::core::seq::SeqNumber;
    use kacap::core::tcp::Side;
    use kacap::core::time::Timestamp;
    use kacap::craft::{data_ctx, decoded};
    use proptest::prelude::*;
    use std::net::SocketAddr;

    const PRELUDES: [&[u8]; 4] = [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"",
    ];

    /// One segment: its side, a sequence skip (a gap in the capture when
    /// not 0), the time step, and its payload.
    fn segments() -> impl Strategy<Value = Vec<(bool, u8, u16, Vec<u8>)>> {
        let frameish = prop_oneof![
            // HTTP/2 frame headers with any length and type, then bytes.
            (
                any::<[u8; 9]>(),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(h, b)| [h.to_vec(), b].concat()),
            // WebSocket-like headers (0x8_/0x1_ opcodes, 126/127 lengths).
            (
                0x80u8..0x8b,
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(a, b, rest)| [vec![a, b], rest].concat()),
            proptest::collection::vec(any::<u8>(), 1..300),
        ];
        proptest::collection::vec(
            (
                any::<bool>(),
                prop_oneof![9 => Just(0u8), 1 => any::<u8>()],
                0u16..3000,
                frameish,
            ),
            1..80,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_stream_is_read_without_panic_in_bounded_memory(
            prelude in 0usize..4,
            upgrade_answer in any::<bool>(),
            segs in segments(),
        ) {
            let client: SocketAddr = "10.0.0.2:40000".parse().unwrap();
            let server: SocketAddr = "10.0.0.1:8080".parse().unwrap();
            let mut app = AppAnalysis::default();
            let mut http = HttpAnalysis::default();
            let mut next = [SeqNumber(1), SeqNumber(1)];
            let mut t = Timestamp::new(1_700_000_000, 0);
            let mut all = vec![(false, 0u8, 0u16, PRELUDES[prelude].to_vec())];
            if upgrade_answer {
                all.push((true, 0, 1, b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec()));
            }
            all.extend(segs);
            for (from_server, skip, dt, payload) in all {
                if payload.is_empty() {
                    continue;
                }
                let side = if from_server { Side::Server } else { Side::Client };
                let i = side.idx();
                next[i] = next[i] + u32::from(skip);
                t = t.plus(f64::from(dt) / 1000.0);
                let (src, dst) = if from_server { (server, client) } else { (client, server) };
                let seg = decoded(src, dst, flags::ACK | flags::PSH, next[i].0, next[1 - i].0, &payload);
                next[i] = next[i] + payload.len() as u32;
                let cx = data_ctx(1, t, &seg, side);
                app.segment(&cx);
                http.segment(&cx);
                prop_assert!(app.footprint() <= MAX_FOOTPRINT, "{}", app.footprint());
            }
            let flow = Flow::new(1, client, server, t);
            let _ = app.finish(&flow, t);
            let _ = http.finish(&flow, t);
        }
    }

    /// Endless pings nobody answers, each with new data: the outstanding
    /// list and the gaps stay bounded.
    #[test]
    fn endless_unanswered_pings_stay_bounded() {
        let client: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let mut app = AppAnalysis::default();
        let mut seq = SeqNumber(1);
        let mut t = Timestamp::new(1_700_000_000, 0);
        for k in 0u64..20_000 {
            let mut ping = vec![0, 0, 8, 6, 0, 0, 0, 0, 0];
            ping.extend_from_slice(&k.to_be_bytes());
            let server: SocketAddr = "10.0.0.1:8080".parse().unwrap();
            let seg = decoded(client, server, flags::ACK | flags::PSH, seq.0, 1, &ping);
            seq = seq + 17;
            t = t.plus(1.0);
            app.segment(&data_ctx(k, t, &seg, Side::Client));
        }
        assert!(app.footprint() <= MAX_FOOTPRINT, "{}", app.footprint());
        let flow = Flow::new(1, client, "10.0.0.1:8080".parse().unwrap(), t);
        let a = app.finish(&flow, t).unwrap();
        assert_eq!((a.pings, a.unanswered), (20_000, 20_000));
    }
}

/// An IP packet of `len` payload bytes (IPv6 with `v6`) cut into fragments
/// of `size` bytes.
fn fragments(len: usize, size: usize, v6: bool) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (c, s): (SocketAddr, SocketAddr) = if v6 {
        (
            "[2001:db8::2]:40000".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
        )
    } else {
        (
            "10.0.1.2:40000".parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
        )
    };
    let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let ip = tcp_packet(c, s, 0x18, 1, 1, 512, &payload);
    let parts = kacap::craft::fragment(&ip, size, 77);
    (ip, parts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// In any order, with any copies, the datagram comes out whole, once,
    /// on its last new fragment.
    #[test]
    fn fragments_in_any_order_make_the_datagram(
        len in 1usize..4000,
        size in (1usize..200).prop_map(|k| k * 8),
        v6 in any::<bool>(),
        order in any::<u64>(),
        copies in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        use kacap::core::frag::{Fate, Reassembler, piece};
        let (ip, mut parts) = fragments(len, size, v6);
        prop_assume!(parts.len() > 1);
        let n = parts.len();
        for c in &copies {
            let p = parts[c.index(n)].clone();
            parts.push(p);
        }
        // A shuffle from the seed, the copies among the rest.
        let mut seed = order;
        for i in (1..parts.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            parts.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let mut r = Reassembler::default();
        let mut done = 0;
        for p in &parts {
            let f = piece(p, 0).expect("a fragment");
            if let Fate::Complete { count } = r.offer(&f, Timestamp::new(1, 0)) {
                done += 1;
                prop_assert_eq!(usize::from(count), n);
                // The same packet, but for the header fields a router or
                // the sender changed (IPv4 flags; IPv6 none).
                let d = r.datagram();
                let hl = if v6 { 40 } else { 20 };
                prop_assert_eq!(&d[hl..], &ip[hl..]);
            }
        }
        // Copies that came after the end start a datagram of their own.
        prop_assert!(done >= 1);
        prop_assert_eq!(r.counts.reassembled, done);
    }

    /// A fragment that overlaps another (not a copy) drops the datagram:
    /// nothing comes out, whatever the order.
    #[test]
    fn an_overlap_drops_the_datagram(
        len in 64usize..4000,
        size in (2usize..100).prop_map(|k| k * 8),
        v6 in any::<bool>(),
        at in any::<prop::sample::Index>(),
        shift in 1usize..8,
    ) {
        use kacap::core::frag::{Fate, Reassembler, piece};
        let (_, mut parts) = fragments(len, size, v6);
        prop_assume!(parts.len() > 2);
        // A copy of one fragment, moved by 8 × shift bytes, first.
        let i = at.index(parts.len() - 1);
        let mut odd = parts[i].clone();
        let off_at = if v6 { 42 } else { 6 };
        let off = u16::from_be_bytes([odd[off_at], odd[off_at + 1]]);
        let moved = if v6 { off + (shift as u16) * 8 } else { off + shift as u16 };
        odd[off_at..off_at + 2].copy_from_slice(&moved.to_be_bytes());
        parts.insert(0, odd);
        let mut r = Reassembler::default();
        for p in &parts {
            if let Some(f) = piece(p, 0) {
                let fate = r.offer(&f, Timestamp::new(1, 0));
                let whole = matches!(fate, Fate::Complete { .. });
                prop_assert!(!whole, "a datagram with an overlap came out");
            }
        }
        prop_assert!(r.counts.dropped() > 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// The `--threads` reader picks a shard from `decode::ends`, which checks
    /// a frame as `decode` does without building the segment: on IPv4 and
    /// IPv6 frames of every link shape, with any bytes of their headers
    /// changed and cut anywhere, both say the same.
    #[test]
    fn the_readers_ends_are_decodes(
        v6 in any::<bool>(),
        link in 0usize..6,
        payload in 0usize..40,
        changes in prop::collection::vec((0usize..80, any::<u8>()), 0..4),
        cut in prop::option::of(0usize..120),
    ) {
        use kacap::craft::{Link, frame, ip_packet, tcp_segment};
        use kacap::core::decode::{decode, ends};
        let (src, dst): (SocketAddr, SocketAddr) = if v6 {
            ("[fd00::2]:40000".parse().unwrap(), "[fd00::1]:5432".parse().unwrap())
        } else {
            ("10.0.1.2:40000".parse().unwrap(), "10.0.0.1:5432".parse().unwrap())
        };
        let tcp = tcp_segment(src, dst, 0x18, 7, 9, 512, &vec![0x61; payload], &[1, 1, 1, 1]);
        let ip = ip_packet(src.ip(), dst.ip(), &tcp, false);
        let (shape, kind) = [
            (None, LinkType::Raw),
            (Some(Link::Ethernet), LinkType::Ethernet),
            (Some(Link::Vlan), LinkType::Ethernet),
            (Some(Link::Null), LinkType::Null),
            (Some(Link::Sll), LinkType::LinuxSll),
            (Some(Link::Sll2), LinkType::LinuxSll2),
        ][link];
        let mut f = match shape {
            Some(l) => frame(l, v6, &ip, false, true),
            None => ip,
        };
        for (at, b) in changes {
            if let Some(x) = f.get_mut(at) {
                *x = b;
            }
        }
        if let Some(c) = cut {
            f.truncate(c);
        }
        let whole = decode(kind, &f).map(|s| (s.src, s.sport, s.dst, s.dport));
        prop_assert_eq!(ends(kind, &f), whole);
    }
}
