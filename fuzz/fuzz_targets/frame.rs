//! Arbitrary bytes as frames of each link type, through decode, flows,
//! classify, keepalive and both reports. Parsing must never panic.
//!
//! Input: byte 0 picks the link type; then frames, each as a 2-byte length
//! and that many bytes, with a 2-byte time step before it.
#![no_main]

use kacap::pipeline::analyzer::Analyzer;
use kacap::core::decode::LinkType;
use kacap::pipeline::event::Frame;
use kacap::core::flows::Options;
use kacap::report::json::{JsonOptions, JsonSink};
use kacap::report::tcpdump::{Dump, Style, TsFormat};
use kacap::report::text::{TextOptions, TextSink};
use kacap::core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 6] = [
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Null,
    LinkType::Loop,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
];

fn frames(data: &[u8]) -> Vec<(Timestamp, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut t = Timestamp::new(1_700_000_000, 0);
    while at + 4 <= data.len() {
        let step = u16::from_le_bytes([data[at], data[at + 1]]);
        let len = usize::from(u16::from_le_bytes([data[at + 2], data[at + 3]]));
        at += 4;
        let end = (at + len).min(data.len());
        t = t.plus(f64::from(step) / 100.0);
        out.push((t, &data[at..end]));
        at = end;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(pick) % LINKS.len()];
    let frames = frames(rest);
    // The `--threads` reader's shortcut agrees with decode on every frame.
    for (_, f) in &frames {
        let whole = kacap::core::decode::decode(link, f).map(|s| (s.src, s.sport, s.dst, s.dport));
        assert_eq!(kacap::core::decode::ends(link, f), whole);
    }
    let options = Options {
        linger: 5.0,
        idle_timeout: 60.0,
        // Small: the eviction path gets fuzzed too.
        max_open: 64,
    };
    let text = TextSink::new(
        std::io::sink(),
        TextOptions {
            color: pick & 0x80 != 0,
            timeline: true,
            explain: true,
            diagram: true,
            // The tcpdump printers too: -v/-vv, -e, -x/-X/-A by the pick byte.
            style: Style {
                ts_format: TsFormat::Epoch,
                verbose: (pick >> 3) & 3,
                link_header: pick & 0x40 != 0,
                dump: Dump::from_counts((pick >> 5) & 1, (pick >> 2) & 1, pick & 0x02),
                ..Style::default()
            },
            width: (pick & 0x10 != 0).then_some(60),
            ..TextOptions::default()
        },
    );
    let mut a = Analyzer::new(link, options, text);
    let mut json = Vec::new();
    let opts = JsonOptions {
        packets: true,
        nano: true,
        flush_each: false,
        community_id: true,
    };
    let mut b = Analyzer::new(link, options, JsonSink::new(&mut json, opts));
    for (i, (ts, bytes)) in frames.iter().enumerate() {
        let f = Frame {
            n: i as u64 + 1,
            ts: *ts,
            len: bytes.len() as u32,
            data: bytes,
        };
        a.frame(&f).unwrap();
        b.frame(&f).unwrap();
    }
    a.finish().unwrap();
    b.finish().unwrap();
    for line in std::str::from_utf8(&json).unwrap().lines() {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    }
});
