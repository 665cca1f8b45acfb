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
