//! `--explain`, `--diagram` and `--diagram-svg` on every fixture.

use crate::craft::*;
use crate::{fixture, json, text};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const REAL: [&str; 8] = [
    "healthy",
    "dead-peer",
    "peer-reboot",
    "http",
    "idle-drop",
    "idle-rst",
    "idle-keepalive",
    "idle-mixed",
];

/// The crafted captures worth explaining: a capture starting during idle,
/// keepalive on the server side, 1-byte probes, no keepalive at all.
fn crafted(dir: &TempDir) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, conn: &Conn| {
        let p = dir.path().join(format!("{name}.pcap"));
        conn.write_pcap(&p, PcapOpts::default());
        out.push((name, p));
    };
    add("idle-start-dead", &crate::crafted::idle_start_dead());
    let mut server = Conn::new("10.0.0.2:40000", "10.0.0.1:5432", Link::Ethernet);
    server
        .handshake(1, 2)
        .exchange(Client, b"q")
        .wait(3.0)
        .probe(Server, 0)
        .seg(Client, ACK, &[])
        .wait(0.5)
        .seg(Client, FIN | ACK, &[])
        .seg(Server, FIN | ACK, &[])
        .seg(Client, ACK, &[]);
    add("server-side", &server);
    let mut windows = Conn::new("10.0.0.2:49152", "10.0.0.1:3389", Link::Ethernet);
    windows
        .handshake(100, 200)
        .exchange(Client, b"req")
        .wait(2.0)
        .probe(Client, 1)
        .seg(Server, ACK, &[]);
    add("one-byte", &windows);
    let mut plain = Conn::new("10.0.0.2:49152", "10.0.0.1:80", Link::Ethernet);
    plain
        .handshake(100, 200)
        .exchange(Client, b"GET / HTTP/1.1\r\n\r\n")
        .exchange(Server, b"HTTP/1.1 200 OK\r\n\r\n");
    add("no-keepalive-http", &plain);
    out
}

fn teach(path: &Path, flag: &str) -> String {
    text(&["-r", path.to_str().unwrap(), "--summary", flag])
}

#[test]
fn explain_snapshots() {
    for name in REAL {
        let out = teach(&fixture(&format!("{name}.pcap")), "--explain");
        insta::assert_snapshot!(format!("explain-{name}"), out);
    }
    let dir = TempDir::new().unwrap();
    for (name, path) in crafted(&dir) {
        insta::assert_snapshot!(format!("explain-{name}"), teach(&path, "--explain"));
    }
}

#[test]
fn diagram_snapshots() {
    for name in REAL {
        let out = teach(&fixture(&format!("{name}.pcap")), "--diagram");
        insta::assert_snapshot!(format!("diagram-{name}"), out);
    }
    let dir = TempDir::new().unwrap();
    for (name, path) in crafted(&dir) {
        insta::assert_snapshot!(format!("diagram-{name}"), teach(&path, "--diagram"));
    }
}

#[test]
fn dead_peer_explanation_ties_the_timing_to_the_three_knobs() {
    let out = teach(&fixture("dead-peer.pcap"), "--explain");
    for needle in [
        "The client had SO_KEEPALIVE on",
        "(its TCP_KEEPIDLE; the Linux default tcp_keepalive_time is 7200 s)",
        "Probes #1 and #2, 1.02 s apart (TCP_KEEPINTVL",
        "One interval after probe #2 its kernel gave up (TCP_KEEPCNT = 2",
        "ETIMEDOUT",
        "Time to detect the dead peer: 4.06 s = idle + count × interval (2.02 s + 2 × 1.02 s)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(
        out.contains("✗"),
        "unanswered probes are crossed out:\n{out}"
    );
}

#[test]
fn svg_is_well_formed_and_holds_every_packet() {
    let dir = TempDir::new().unwrap();
    let mut inputs: Vec<PathBuf> = REAL.iter().map(|n| fixture(&format!("{n}.pcap"))).collect();
    inputs.extend(crafted(&dir).into_iter().map(|(_, p)| p));
    for input in inputs {
        let svg_path = dir.path().join("out.svg");
        text(&[
            "-r",
            input.to_str().unwrap(),
            "--summary",
            "--diagram-svg",
            svg_path.to_str().unwrap(),
        ]);
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        let doc = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("{}: SVG is not well-formed: {e}", input.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let mut ns: Vec<u64> = doc
            .descendants()
            .filter(|n| {
                n.attribute("class")
                    .is_some_and(|c| c.starts_with("packet"))
            })
            .map(|n| n.attribute("data-n").unwrap().parse().unwrap())
            .collect();
        ns.sort();
        let want: Vec<u64> = json(&input, &[])
            .packets
            .iter()
            .map(|p| p["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, want, "{}", input.display());
    }
}

#[test]
fn explain_is_for_text_output() {
    let out = crate::kacap()
        .args([
            "-r",
            fixture("healthy.pcap").to_str().unwrap(),
            "--json",
            "--explain",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn svg_remarks_fit_and_an_injected_rst_starts_at_the_middlebox() {
    let dir = TempDir::new().unwrap();
    let svg_path = dir.path().join("rst.svg");
    text(&[
        "-r",
        fixture("idle-rst.pcap").to_str().unwrap(),
        "--summary",
        "--diagram-svg",
        svg_path.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let width: f64 = doc
        .root_element()
        .attribute("width")
        .unwrap()
        .parse()
        .unwrap();
    for remark in doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("remark"))
    {
        let x: f64 = remark.attribute("x").unwrap().parse().unwrap();
        let chars = remark.text().unwrap_or("").chars().count() as f64;
        assert!(
            x + chars * 8.0 <= width,
            "clipped at {width}: {:?}",
            remark.text()
        );
    }
    let injected = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("packet rst injected"))
        .expect("the injected RST is marked");
    let line = injected
        .children()
        .find(|n| n.has_tag_name("line"))
        .unwrap();
    let x1: f64 = line.attribute("x1").unwrap().parse().unwrap();
    assert!(x1 > 190.0 && x1 < 610.0, "drawn from a lifeline: {x1}");
    assert!(
        injected
            .descendants()
            .any(|n| n.text() == Some("⚡ middlebox"))
    );
}

#[test]
fn svg_beside_json_and_a_bad_svg_path_refused_before_anything() {
    let dir = TempDir::new().unwrap();
    let from_json = dir.path().join("json.svg");
    let from_text = dir.path().join("text.svg");
    let input = fixture("dead-peer.pcap");
    let out = crate::kacap()
        .arg("-r")
        .arg(&input)
        .arg("--json")
        .arg("--diagram-svg")
        .arg(&from_json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"type\":\"summary\""));
    text(&[
        "-r",
        input.to_str().unwrap(),
        "--diagram-svg",
        from_text.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&from_json).unwrap(),
        std::fs::read_to_string(&from_text).unwrap()
    );
    let out = crate::kacap()
        .arg("-r")
        .arg(&input)
        .args(["--diagram-svg", "/nonexistent/x.svg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "analysis ran before the error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no directory /nonexistent"), "{err}");
}
