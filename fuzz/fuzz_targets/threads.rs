//! Differential: a capture file analyzed on one thread and on two shards
//! (`--threads`, `src/pipeline/shard/`) must give the same `--json` output —
//! packet records in capture order, each connection's record where one
//! thread writes it (connections reported at the same moment in any order
//! among themselves, as `tests/it/threads.rs` allows) — and the same
//! timeline, byte for byte. Any difference panics.
#![no_main]

use kacap::input::source::Reopen;
use kacap::pipeline::analyzer::{Analyzer, LookaheadPass};
use kacap::pipeline::drive::{self, Controls};
use kacap::pipeline::event::{FrameSource, Sharded, Sink};
use kacap::core::flows::Options;
use kacap::report::json::{JsonOptions, JsonSink};
use kacap::report::text::{TextOptions, TextSink};
use kacap::pipeline::shard;
use kacap::input::source::Source;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn pass(path: &Path) -> LookaheadPass {
    let again = Reopen {
        paths: vec![path.to_path_buf()],
        filter: None,
        limit: None,
    };
    LookaheadPass::new(Box::new(again), Options::default())
}

fn controls(stop: &AtomicBool) -> Controls<'_> {
    Controls {
        stop,
        show: None,
        every: None,
        partial_on_stop: true,
        quit: None,
    }
}

/// Runs of flow records sorted (connections reported at one moment).
fn canonical(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out);
    let (mut lines, mut run) = (Vec::new(), Vec::new());
    for l in text.lines() {
        if l.starts_with("{\"type\":\"flow\"") {
            run.push(l.to_string());
        } else {
            run.sort();
            lines.append(&mut run);
            lines.push(l.to_string());
        }
    }
    run.sort();
    lines.append(&mut run);
    lines
}

/// `sink` fed by one analyzer, as `--threads 1` runs; false when the
/// input is no capture.
fn one(path: &Path, sink: impl Sink) -> bool {
    let Ok(mut src) = Source::file(path, None) else {
        return false;
    };
    let stop = AtomicBool::new(false);
    let a = Analyzer::new(src.link(), Options::default(), sink).with_lookahead(pass(path));
    let _ = drive::drive(&mut src, a, controls(&stop));
    true
}

/// `sink` fed by two shards, the shards formatting its records; the file
/// read by `readers`.
fn two(path: &Path, sink: impl Sharded, readers: shard::Readers) -> bool {
    let Ok(mut src) = Source::file(path, None) else {
        return false;
    };
    let stop = AtomicBool::new(false);
    let _ = shard::drive(
        &mut src,
        Options::default(),
        pass(path),
        sink,
        2,
        readers,
        controls(&stop),
    );
    true
}

fn text_opts() -> TextOptions {
    TextOptions {
        timeline: true,
        ..TextOptions::default()
    }
}

fuzz_target!(|data: &[u8]| {
    // SAFETY: memfd_create with a valid C string.
    let fd = unsafe { libc::memfd_create(c"capture".as_ptr(), 0) };
    assert!(fd >= 0);
    let path = PathBuf::from(format!("/proc/self/fd/{fd}"));
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(data).unwrap();
    }
    // One reader, and three range readers with a range boundary every
    // few records (`input::ranges`: each range proven or parsed again).
    let ranged = shard::Readers {
        count: 3,
        range: 64 + (data.len() as u64 * 7) % 449,
    };
    for readers in [shard::Readers::ONE, ranged] {
        compare(&path, readers);
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
});

fn compare(path: &Path, readers: shard::Readers) {
    let path = path.to_path_buf();
    let opts = JsonOptions {
        packets: true,
        ..JsonOptions::default()
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    if one(&path, JsonSink::new(&mut a, opts))
        && two(&path, JsonSink::new(&mut b, opts), readers)
    {
        assert!(
            canonical(&a) == canonical(&b),
            "--json on two shards differs from one thread:\n{}\n---\n{}",
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    if one(&path, TextSink::new(&mut a, text_opts()))
        && two(&path, TextSink::new(&mut b, text_opts()), readers)
    {
        assert!(
            a == b,
            "the timeline on two shards differs from one thread's:\n{}\n---\n{}",
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
    }
}
