//! Regression tests, each named after the bug it pins.

use tempfile::TempDir;

/// Found by the `capture` fuzz target: a file libpcap rejected left its
/// descriptor open, so reading many bad files ran out of descriptors.
#[test]
fn rejected_capture_files_do_not_leak_descriptors() {
    let dir = TempDir::new().unwrap();
    for i in 0..120 {
        std::fs::write(
            dir.path().join(format!("bad-{i:03}.pcap")),
            b"\x0a\x0d\x0d\x0anot really",
        )
        .unwrap();
    }
    let bin = assert_cmd::cargo::cargo_bin("kacap");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 40 && exec '{}' -r '{}' --summary",
            bin.display(),
            dir.path().display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // One line per file (and the note that such names look like a
    // rotation set).
    let errors: Vec<&str> = err.lines().filter(|l| !l.contains("note:")).collect();
    assert_eq!(errors.len(), 120, "{err}");
    assert!(!err.contains("Too many open files"), "{err}");
    assert!(
        errors
            .iter()
            .all(|l| l.contains("not a readable pcap or pcapng capture")),
        "{err}"
    );
}

/// Found by the `threads` fuzz target: an IP fragment whose record says
/// fewer bytes on the wire than captured got a stamp before tcpdump's
/// `[Invalid header: …]` on one thread (none on shards, none in tcpdump).
#[test]
fn an_invalid_fragment_record_has_no_stamp_on_any_thread() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fragment-invalid-header.pcap");
    let run = |threads: &str| {
        let out = crate::kacap()
            .arg("-r")
            .arg(&path)
            .args(["--color=never", "--threads", threads])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let one = run("1");
    assert_eq!(one, run("2"));
    assert!(
        one.lines()
            .any(|l| l.starts_with("[Invalid header: len(72) < caplen(74)]  IP fragment ")),
        "{one}"
    );
}
