//! Several inputs at once: `-r` repeated, a directory, a quoted glob.

use crate::{fixture, kacap, text};

const NAMES: [&str; 3] = ["dead-peer.pcap", "healthy.pcap", "peer-reboot.pcap"];

#[test]
fn several_files_come_out_in_the_order_given_each_as_alone() {
    let paths: Vec<String> = NAMES
        .iter()
        .map(|n| fixture(n).display().to_string())
        .collect();
    let mut args = Vec::new();
    for p in paths.iter().rev() {
        args.extend(["-r", p.as_str()]);
    }
    let together = text(&args);
    let mut expected = String::new();
    for p in paths.iter().rev() {
        expected.push_str(&format!("==> {p} <==\n"));
        expected.push_str(&text(&["-r", p]));
    }
    assert_eq!(together, expected);
}

#[test]
fn a_directory_or_a_glob_expands_to_its_captures() {
    let dir = fixture("");
    let out = text(&["-r", dir.to_str().unwrap(), "--summary", "--json"]);
    let files: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("\"type\":\"file\""))
        .collect();
    assert_eq!(files.len(), 4, "{out}");
    assert!(
        files[0].ends_with("dead-peer.pcap\"}"),
        "sorted by name: {files:?}"
    );
    let verdicts: Vec<&str> = ["dead-peer", "alive", "no-keepalive"].to_vec();
    for (flow, v) in out
        .lines()
        .filter(|l| l.contains("\"type\":\"flow\""))
        .zip(verdicts)
    {
        assert!(flow.contains(&format!("\"verdict\":\"{v}\"")), "{flow}");
    }
    let glob = format!("{}/*-*.pcap", dir.display());
    let out = text(&["-r", &glob, "--summary"]);
    assert_eq!(out.matches("==> ").count(), 2, "{out}");
}

#[test]
fn a_bad_file_among_several_is_reported_once_and_exits_2() {
    let out = kacap()
        .args([
            "-r",
            fixture("healthy.pcap").to_str().unwrap(),
            "-r",
            "/nonexistent/x.pcap",
            "--summary",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("alive"));
}
