//! `--annotate FILE.pcapng`: the capture handed on with kacap's words as
//! packet comments, read back by a real reader (tshark) and by tcpdump.

use crate::craft::*;
use crate::crafted::dead_peer;
use crate::{fixture, kacap};
use std::path::Path;
use std::process::Command;
use tempfile::TempDir;

/// `tshark ARGS` on `file`, its stdout; `None` when tshark is missing
/// (CI installs it: there the test must not skip).
pub(crate) fn tshark(file: &Path, args: &[&str]) -> Option<String> {
    let out = match Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            assert!(
                !std::env::var("KACAP_LIVE_TESTS").is_ok_and(|v| v == "1"),
                "tshark not found (apt-get install tshark)"
            );
            return None;
        }
    };
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// Frame number → its comments (tshark joins several with commas).
fn comments(file: &Path) -> Option<Vec<(u32, String)>> {
    let text = tshark(
        file,
        &["-T", "fields", "-e", "frame.number", "-e", "frame.comment"],
    )?;
    Some(
        text.lines()
            .map(|l| {
                let (n, c) = l.split_once('\t').unwrap_or((l, ""));
                (n.parse().unwrap(), c.to_string())
            })
            .collect(),
    )
}

/// `tcpdump -nn -tt -r FILE` (it reads pcapng): the frames, stamps and
/// bytes as a line each.
fn tcpdump(file: &Path) -> String {
    let out = Command::new("tcpdump")
        .args(["-nn", "-tt", "-x", "-r"])
        .arg(file)
        .output()
        .expect("tcpdump");
    String::from_utf8(out.stdout).unwrap()
}

/// `kacap -r INPUT EXTRA… --annotate OUT`.
fn annotated(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    kacap()
        .arg("-r")
        .arg(input)
        .args(extra)
        .arg("--annotate")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn every_frame_carries_kacaps_words_and_the_last_its_verdict() {
    let dir = TempDir::new().unwrap();
    // A dead peer with a UDP datagram and an ARP frame among its segments.
    let mut conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    let udp = ip_packet_proto(
        "10.0.0.2".parse().unwrap(),
        "10.0.0.1".parse().unwrap(),
        17,
        &[0, 53, 0, 53, 0, 8, 0, 0],
        false,
    );
    let t = conn.t;
    conn.frames
        .insert(4, (t, frame(Link::Ethernet, false, &udp, false, false)));
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    conn.frames.push((t + 0.1, arp));
    let input = dir.path().join("mixed.pcap");
    conn.write_pcap(&input, PcapOpts::default());
    let out = dir.path().join("mixed.pcapng");
    let run = annotated(&input, &out, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Every frame, its stamp and bytes as they were.
    assert_eq!(tcpdump(&out), tcpdump(&input));
    let Some(all) = comments(&out) else { return };
    assert_eq!(all.len(), 12, "{all:#?}");
    // The skipped frames (UDP, ARP) keep no comment; every TCP segment has one.
    assert_eq!(all[4].1, "", "{all:#?}");
    assert_eq!(all[11].1, "", "{all:#?}");
    for (n, c) in all.iter().filter(|(n, _)| *n != 5 && *n != 12) {
        assert!(c.starts_with("flow 1: "), "frame {n}: {c:?}");
    }
    // The probes, by Wireshark's own filter on the comments.
    let probes = tshark(
        &out,
        &[
            "-Y",
            "frame.comment contains \"keepalive probe\"",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )
    .unwrap();
    let marked: Vec<&str> = probes.lines().collect();
    let flagged = tshark(
        &out,
        &[
            "-Y",
            "tcp.analysis.keep_alive",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )
    .unwrap();
    assert_eq!(marked, flagged.lines().collect::<Vec<_>>());
    assert_eq!(marked.len(), 2);
    assert!(
        all[9]
            .1
            .contains("keepalive probe #2 from client: #1 went unanswered"),
        "{all:#?}"
    );
    // The last TCP segment: its words, then the verdict and the settings.
    let last = &all[10].1;
    assert!(
        last.contains("flow 1 ended: dead-peer after 2 unanswered probes (RST by client)"),
        "{last}"
    );
    assert!(
        last.contains("keepalive by client: idle 2.00s, interval 1.00s, count 2"),
        "{last}"
    );
}

#[test]
fn a_revision_is_a_second_comment_on_the_frames_it_relabels() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("grpc.pcapng");
    let run = annotated(&fixture("grpc-tls-keepalive.pcap"), &out, &["--summary"]);
    assert!(run.status.success());
    let Some(all) = comments(&out) else { return };
    let revised: Vec<&(u32, String)> = all
        .iter()
        .filter(|(_, c)| c.contains("were the client's first two keepalive exchanges"))
        .collect();
    assert!(!revised.is_empty(), "{all:#?}");
    // Each keeps what was said first, before the revision.
    for (n, c) in revised {
        // (tshark joins a frame's comments with commas)
        let at = c.find(",flow 2: frames ").unwrap_or(0);
        assert!(at > 0 && c.starts_with("flow 2: "), "frame {n}: {c}");
    }
}

#[test]
fn annotate_never_overwrites_its_input_and_wants_one_file() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in.pcap");
    std::fs::copy(fixture("dead-peer.pcap"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let run = annotated(&input, &input, &[]);
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("--annotate") && err.contains("is the file being read"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(std::fs::read(&input).unwrap(), before);
    let run = kacap()
        .args(["-r"])
        .arg(&input)
        .arg("-r")
        .arg(fixture("healthy.pcap"))
        .arg("--annotate")
        .arg(dir.path().join("x.pcapng"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("single input file"));
    assert!(!dir.path().join("x.pcapng").exists());
    let same = dir.path().join("same.pcapng");
    let run = kacap()
        .arg("-r")
        .arg(&input)
        .arg("-w")
        .arg(&same)
        .arg("--annotate")
        .arg(&same)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("the same file"));
}

#[test]
fn a_live_capture_is_annotated_with_its_interface() {
    if !crate::live::live_allowed("annotate live") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("lab.pcapng");
    let run = kacap()
        .args([
            "lab",
            "dead-peer",
            "--idle",
            "1",
            "--interval",
            "1",
            "--count",
            "2",
            "--annotate",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let Some(text) = tshark(
        &out,
        &[
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "frame.comment",
        ],
    ) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().all(|l| l.starts_with("lo\tflow 1: ")),
        "{text}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("keepalive probe #"))
            .count(),
        2,
        "{text}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.contains("flow 1 ended: dead-peer after 2 unanswered probes"),
        "{text}"
    );
    assert!(last.contains("keepalive by client: idle 1."), "{text}");
}
