//! Whole capture files (pcap, pcapng, anything) through libpcap and the
//! analyzer, as `kacap -r FILE --json` reads them. Never panic, never hang.
#![no_main]

use kacap::pipeline::drive::analyze;
use kacap::core::flows::Options;
use kacap::report::json::{JsonOptions, JsonSink};
use kacap::input::source::Source;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::atomic::AtomicBool;

fuzz_target!(|data: &[u8]| {
    // An in-memory file, opened by path like any capture.
    // SAFETY: memfd_create with a valid C string.
    let fd = unsafe { libc::memfd_create(c"capture".as_ptr(), 0) };
    assert!(fd >= 0);
    let path = format!("/proc/self/fd/{fd}");
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(data).unwrap();
    }
    if let Ok(mut src) = Source::file(std::path::Path::new(&path), None) {
        let mut out = Vec::new();
        let opts = JsonOptions {
            packets: true,
            ..JsonOptions::default()
        };
        let stop = AtomicBool::new(false);
        let _ = analyze(
            &mut src,
            Options::default(),
            JsonSink::new(&mut out, opts),
            &stop,
        );
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
});
