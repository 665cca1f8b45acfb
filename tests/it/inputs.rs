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
    let mut captures: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    captures.sort();
    assert_eq!(files.len(), captures.len(), "{out}");
    for (line, name) in files.iter().zip(&captures) {
        assert!(
            line.ends_with(&format!("{name}\"}}")),
            "sorted by name: {files:?}"
        );
    }
    // The dead peer's flow record follows its file record.
    let dead = out
        .lines()
        .skip_while(|l| !l.ends_with("dead-peer.pcap\"}"))
        .nth(1)
        .unwrap();
    assert!(dead.contains("\"verdict\":\"dead-peer\""), "{dead}");
    let glob = format!("{}/*-*.pcap", dir.display());
    let out = text(&["-r", &glob, "--summary"]);
    let dashed = captures.iter().filter(|n| n.contains('-')).count();
    assert_eq!(out.matches("==> ").count(), dashed, "{out}");
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

#[test]
fn an_unquoted_glob_gets_a_hint_not_a_filter_error() {
    let a = fixture("healthy.pcap");
    let b = fixture("dead-peer.pcap");
    let out = kacap()
        .args(["-r", a.to_str().unwrap(), b.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is a file, not a filter word") && err.contains("quoted glob"),
        "{err}"
    );
}

/// A file name with a newline or an escape sequence cannot break JSON
/// Lines nor drive the terminal: escaped in JSON, shown like `ls -b` in text.
#[test]
fn hostile_file_names_are_escaped() {
    let dir = tempfile::TempDir::new().unwrap();
    for name in ["a\nb.pcap", "c\u{1b}[31m.pcap"] {
        std::fs::copy(fixture("healthy.pcap"), dir.path().join(name)).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let json = text(&["-r", d, "--json", "--summary"]);
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        assert!(v.is_object());
    }
    assert!(
        json.contains("a\\nb.pcap") && json.contains("c\\u001b[31m.pcap"),
        "{json}"
    );
    let shown = text(&["-r", d, "--summary"]);
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(
        shown.contains("==> ") && shown.contains("a\\nb.pcap") && shown.contains("c\\e[31m.pcap"),
        "{shown}"
    );
}

/// A filter word that happens to name a file in the current directory is
/// still a filter word when the words make a filter (`touch 2333`).
#[test]
fn a_filter_word_that_names_a_file_is_still_a_filter() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("2333"), b"").unwrap();
    let out = kacap()
        .current_dir(dir.path())
        .arg("-r")
        .arg(fixture("dead-peer.pcap"))
        .args(["tcp", "port", "2333", "--summary"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("┆ dead-peer"));
}

/// Several files into a reader that goes away (`| head -c 200`): every
/// worker stops, also in the middle of a file, and the run ends quietly
/// with status 0 — long before the files could have been analyzed.
#[test]
fn a_closed_output_stops_every_worker_promptly() {
    use crate::craft::*;
    let dir = tempfile::TempDir::new().unwrap();
    let frames = busy_link(1_700_000_000.0, 600.0, 200.0);
    for name in ["a", "b", "c", "d"] {
        write_pcap(
            &dir.path().join(format!("{name}.pcap")),
            1,
            &frames,
            PcapOpts::default(),
        );
    }
    let bin = assert_cmd::cargo::cargo_bin("kacap");
    // CPU seconds of a shell command's processes (bash's `times`: its
    // children's user and system time), which other work on the machine
    // does not inflate as it does wall time.
    let cpu = |script: String| -> (std::process::Output, f64) {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{script}; s=${{PIPESTATUS[0]}}; times >&2; exit $s"
            ))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let children = err.lines().last().unwrap_or("").to_string();
        let secs: f64 = children
            .split_whitespace()
            .map(|t| {
                let (m, s) = t
                    .trim_end_matches('s')
                    .split_once('m')
                    .unwrap_or(("0", "0"));
                m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0)
            })
            .sum();
        (out, secs)
    };
    // One file as each worker reads it (one thread per file).
    let (out, one_file) = cpu(format!(
        "'{}' -r '{}' --json --threads 1 >/dev/null",
        bin.display(),
        dir.path().join("a.pcap").display()
    ));
    assert!(out.status.success());
    let (out, all) = cpu(format!(
        "'{}' -r '{}' --json | head -c 200 >/dev/null",
        bin.display(),
        dir.path().display()
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    eprintln!("closed output: {all:.2} s of CPU, one file {one_file:.2} s");
    // Only `times`' two lines: kacap said nothing.
    assert_eq!(err.lines().count(), 2, "{err}");
    // Four files on two workers would cost four files' CPU; stopping at the
    // closed pipe costs about one or two (the first file must finish to be
    // shown; the other worker stops in the middle of its file).
    assert!(
        all < one_file * 2.6 + 0.2,
        "{all:.2} s of CPU vs one file's {one_file:.2} s"
    );
}
