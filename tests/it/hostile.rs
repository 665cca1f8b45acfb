//! Hostile captures: each has a defined outcome — no panic, a warning or a
//! skip counter, a documented exit status.

use crate::craft::*;
use crate::crafted::dead_peer;
use crate::kacap;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Runs `kacap -r path --json`; returns exit code, records, stderr.
fn run(path: &Path, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let out = kacap()
        .arg("-r")
        .arg(path)
        .arg("--json")
        .args(extra)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{}: {err}", path.display());
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    (out.status.code().unwrap_or(-1), records, err)
}

fn summary(records: &[Value]) -> &Value {
    records
        .last()
        .filter(|r| r["type"] == "summary")
        .expect("a summary record last")
}

/// A classic little-endian pcap file header.
fn pcap_header(snaplen: u32, linktype: u32) -> Vec<u8> {
    let mut h = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    h.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&snaplen.to_le_bytes());
    h.extend_from_slice(&linktype.to_le_bytes());
    h
}

/// One Ethernet frame carrying `ip`.
fn eth(ip: &[u8]) -> Vec<u8> {
    frame(
        Link::Ethernet,
        ip.first().is_some_and(|b| b >> 4 == 6),
        ip,
        false,
        false,
    )
}

fn write_frames(dir: &TempDir, name: &str, frames: Vec<Vec<u8>>) -> PathBuf {
    let path = dir.path().join(name);
    let frames: Vec<(f64, Vec<u8>)> = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| (1_700_000_000.0 + i as f64, f))
        .collect();
    write_pcap(&path, 1, &frames, PcapOpts::default());
    path
}

/// A valid IPv4 + TCP packet to corrupt.
fn good_ipv4() -> Vec<u8> {
    let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:5432", Link::Raw);
    c.handshake(1, 2);
    c.frames[0].1.clone()
}

#[test]
fn every_snaplen_from_1_to_60_is_survived() {
    let dir = TempDir::new().unwrap();
    let conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    for snaplen in 1..=60 {
        let path = dir.path().join(format!("s{snaplen}.pcap"));
        conn.write_pcap(
            &path,
            PcapOpts {
                snaplen: Some(snaplen),
                ..PcapOpts::default()
            },
        );
        let (code, records, err) = run(&path, &[]);
        assert_eq!(code, 0, "snaplen {snaplen}: {err}");
        let s = summary(&records);
        assert_eq!(s["frames"], 10, "snaplen {snaplen}");
        let (tcp, skipped) = (
            s["tcp_segments"].as_u64().unwrap(),
            s["skipped"].as_u64().unwrap(),
        );
        assert_eq!(tcp + skipped, 10, "snaplen {snaplen}");
        // 14 Ethernet + 20 IPv4 + the 16 TCP bytes kacap needs.
        if snaplen >= 50 {
            assert_eq!(tcp, 10, "snaplen {snaplen}");
            let f = records.iter().find(|r| r["type"] == "flow").unwrap();
            assert_eq!(f["verdict"], "dead-peer", "snaplen {snaplen}");
        } else {
            assert_eq!(tcp, 0, "snaplen {snaplen}");
        }
    }
}

#[test]
fn bad_ip_and_tcp_header_lengths_are_skipped() {
    let dir = TempDir::new().unwrap();
    let good = good_ipv4();
    let mut cases = Vec::new();
    for ihl in [0u8, 1, 4, 15] {
        let mut p = good.clone();
        p[0] = 0x40 | ihl;
        cases.push(p);
    }
    for total in [0u16, 10, 39, 2000] {
        let mut p = good.clone();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        cases.push(p);
    }
    for offset in [0u8, 1, 4, 15] {
        let mut p = good.clone();
        p[20 + 12] = offset << 4;
        cases.push(p);
    }
    let n = cases.len();
    let path = write_frames(
        &dir,
        "bad-headers.pcap",
        cases.iter().map(|p| eth(p)).collect(),
    );
    let (code, records, err) = run(&path, &[]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&records);
    assert_eq!(s["frames"], n);
    assert_eq!(
        s["tcp_segments"].as_u64().unwrap() + s["skipped"].as_u64().unwrap(),
        n as u64
    );
    assert!(s["skipped"].as_u64().unwrap() >= 10, "{s}");
}

#[test]
fn caplen_above_len_and_zero_length_records() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("lengths.pcap");
    let good = eth(&good_ipv4());
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&pcap_header(65535u32, 1u32));
    // caplen > len, then caplen = len = 0, then a good packet.
    for (cap, len, data) in [
        (good.len(), 20usize, &good[..]),
        (0, 0, &[][..]),
        (good.len(), good.len(), &good[..]),
    ] {
        bytes.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&(cap as u32).to_le_bytes());
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
        bytes.extend_from_slice(data);
    }
    std::fs::write(&path, bytes).unwrap();
    let (code, records, err) = run(&path, &[]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&records);
    assert_eq!(s["frames"], 3);
    assert_eq!(s["tcp_segments"], 2);
    assert_eq!(s["skipped"], 1);
}

#[test]
fn absurd_record_length_stops_reading_with_a_warning() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("4g.pcap");
    let good = eth(&good_ipv4());
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&pcap_header(262_144u32, 1u32));
    for cap in [good.len() as u32, u32::MAX] {
        bytes.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&cap.to_le_bytes());
        bytes.extend_from_slice(&cap.to_le_bytes());
        bytes.extend_from_slice(&good);
    }
    std::fs::write(&path, bytes).unwrap();
    let (code, records, err) = run(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("warning") && err.contains("analyzed the 1 packets before it"),
        "{err}"
    );
    assert_eq!(summary(&records)["tcp_segments"], 1);
}

#[test]
fn snaplen_zero_in_the_file_header_is_read() {
    let dir = TempDir::new().unwrap();
    let conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    let path = dir.path().join("snap0.pcap");
    conn.write_pcap(&path, PcapOpts::default());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[16..20].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let (code, records, err) = run(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&records)["tcp_segments"], 10);
}

#[test]
fn header_only_file_is_an_empty_analysis() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("header-only.pcap");
    write_pcap(&path, 1, &[], PcapOpts::default());
    let (code, records, err) = run(&path, &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(summary(&records)["frames"], 0);
}

#[test]
fn long_and_self_repeating_ipv6_extension_chains() {
    let dir = TempDir::new().unwrap();
    let tcp = &good_ipv6()[40..];
    let mut frames = Vec::new();
    for count in [1usize, 8, 64, 200] {
        // `count` destination-options headers, each pointing to the next.
        let mut ext = Vec::new();
        for i in 0..count {
            let next = if i + 1 == count { 6 } else { 60 };
            ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        frames.push(eth(&v6_packet(60, &ext, tcp)));
    }
    // A chain that never reaches TCP: every header says another follows,
    // until the packet ends.
    let endless: Vec<u8> = std::iter::repeat_n([60u8, 0, 1, 4, 0, 0, 0, 0], 100)
        .flatten()
        .collect();
    frames.push(eth(&v6_packet(60, &endless, &[])));
    let path = write_frames(&dir, "v6-chains.pcap", frames);
    let (code, records, err) = run(&path, &[]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&records);
    assert_eq!(s["frames"], 5);
    assert_eq!(
        s["tcp_segments"].as_u64().unwrap() + s["skipped"].as_u64().unwrap(),
        5
    );
    assert!(s["tcp_segments"].as_u64().unwrap() >= 1, "{s}");
}

fn good_ipv6() -> Vec<u8> {
    let mut c = Conn::new("[2001:db8::2]:40000", "[2001:db8::1]:5432", Link::Raw);
    c.handshake(1, 2);
    c.frames[0].1.clone()
}

fn v6_packet(first: u8, ext: &[u8], tcp: &[u8]) -> Vec<u8> {
    let mut p = good_ipv6()[..40].to_vec();
    p[4..6].copy_from_slice(&((ext.len() + tcp.len()) as u16).to_be_bytes());
    p[6] = first;
    p.extend_from_slice(ext);
    p.extend_from_slice(tcp);
    p
}

#[test]
fn ip_fragments_that_cannot_be_reassembled_are_counted() {
    let dir = TempDir::new().unwrap();
    let mut first = good_ipv4();
    first[6] = 0x20; // more fragments
    let mut second = good_ipv4();
    second[6] = 0x00;
    second[7] = 0x03; // offset 24 bytes
    let path = write_frames(
        &dir,
        "frags.pcap",
        vec![eth(&first), eth(&second), eth(&good_ipv4())],
    );
    let (code, records, err) = run(&path, &[]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&records);
    assert_eq!(s["skipped"], 2);
    assert_eq!(s["tcp_segments"], 1);
    // The second starts inside the first: the datagram is dropped.
    assert_eq!(s["fragments"]["frames"], 2);
    assert_eq!(s["fragments"]["dropped"]["overlap"], 2);
    assert_eq!(s["fragments"]["reassembled"], 0);
}

#[test]
fn pcapng_with_unknown_blocks_is_read() {
    // write_pcapng puts a custom block between the interface and the packets.
    let dir = TempDir::new().unwrap();
    let conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    let path = dir.path().join("custom.pcapng");
    write_pcapng(&path, 1, &conn.frames, false);
    let (code, records, err) = run(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&records)["tcp_segments"], 10);
}

#[test]
fn a_file_still_being_written_is_read_up_to_its_end() {
    let dir = TempDir::new().unwrap();
    let conn = dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2);
    let full = dir.path().join("full.pcap");
    conn.write_pcap(&full, PcapOpts::default());
    let bytes = std::fs::read(&full).unwrap();
    // Cut inside a record header, then inside a record's data.
    // (the last record is 16 + 54 bytes)
    for cut in [bytes.len() - 66, bytes.len() - 20] {
        let path = dir.path().join("growing.pcap");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let (code, records, err) = run(&path, &[]);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("warning") && err.contains("still being written"),
            "{err}"
        );
        assert_eq!(summary(&records)["tcp_segments"], 9);
    }
}

#[test]
fn unwritable_w_target_exits_1_with_one_line() {
    let out = kacap()
        .args([
            "-r",
            crate::fixture("healthy.pcap").to_str().unwrap(),
            "-w",
            "/nonexistent-dir/x.pcap",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent-dir/x.pcap"), "{err}");
}

#[test]
fn full_disk_on_w_exits_1() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let out = kacap()
        .args([
            "-r",
            crate::fixture("dead-peer.pcap").to_str().unwrap(),
            "-w",
            "/dev/full",
            "--summary",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/dev/full"), "{err}");
}

#[test]
fn full_disk_on_stdout_exits_1() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .args(["-r", crate::fixture("dead-peer.pcap").to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn non_utf8_w_file_name_works() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new().unwrap();
    let name = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"sortie-\xe9.pcap"));
    let out = kacap()
        .arg("-r")
        .arg(crate::fixture("healthy.pcap"))
        .arg("-w")
        .arg(&name)
        .arg("--summary")
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, records, _) = run(&name, &[]);
    assert_eq!(code, 0);
    assert_eq!(summary(&records)["tcp_segments"], 15);
}

#[test]
fn a_million_short_flows_stay_in_bounded_memory() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("million.pcap");
    // Each connection: SYN, then RST from the server; 2,000 start per second.
    let mut bytes = Vec::with_capacity(130 << 20);
    bytes.extend_from_slice(&pcap_header(262_144u32, 101u32));
    let flows = 1_000_000u32;
    let mut syn = good_ipv4();
    let mut rst = syn.clone();
    rst[12..16].copy_from_slice(&syn[16..20]);
    rst[16..20].copy_from_slice(&syn[12..16]);
    rst[20..22].copy_from_slice(&5432u16.to_be_bytes());
    rst[20 + 13] = 0x14;
    for i in 0..flows {
        let t_us = u64::from(i) * 500;
        for (k, p) in [&mut syn, &mut rst].into_iter().enumerate() {
            let a = if k == 0 { 12 } else { 16 };
            p[a..a + 4].copy_from_slice(&(0x0a00_0000 | (i & 0x00ff_ffff)).to_be_bytes());
            let port = if k == 0 { 20 } else { 22 };
            p[port..port + 2].copy_from_slice(&(1024 + (i >> 24) as u16).to_be_bytes());
            bytes.extend_from_slice(&((1_700_000_000 + t_us / 1_000_000) as u32).to_le_bytes());
            bytes.extend_from_slice(&((t_us % 1_000_000) as u32 + k as u32).to_le_bytes());
            bytes.extend_from_slice(&(p.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&(p.len() as u32).to_le_bytes());
            bytes.extend_from_slice(p);
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    drop(bytes);
    // Peak RSS after 300k flows and after all 1M: the same plateau, since
    // finished flows are freed after 60 s of linger (120k at 2,000/s).
    let part = peak_rss_mib(&path, &["-c", "600000", "--threads", "1"]);
    let all = peak_rss_mib(&path, &["--threads", "1"]);
    eprintln!("short flows: peak RSS {part:.1} MiB after 300k, {all:.1} MiB after 1M");
    assert!(
        all <= part * 1.25,
        "memory grew with flows: {part:.1} → {all:.1} MiB"
    );
    assert!(all < 192.0, "peak RSS {all:.1} MiB");
    // On two shards: each holds its connections, the whole a little more
    // (two tables growing, the numbering, summaries between shards and
    // output), and no more after 1M than after 300k.
    let part = peak_rss_mib(&path, &["-c", "600000", "--threads", "2"]);
    let all = peak_rss_mib(&path, &["--threads", "2"]);
    eprintln!("two shards: peak RSS {part:.1} MiB after 300k, {all:.1} MiB after 1M");
    assert!(
        all <= part * 1.25,
        "memory grew with flows on two shards: {part:.1} → {all:.1} MiB"
    );
    assert!(all < 256.0, "peak RSS on two shards {all:.1} MiB");
    // Four (the default on two cores).
    let four = peak_rss_mib(&path, &["--threads", "4"]);
    eprintln!("four shards: peak RSS {four:.1} MiB after 1M");
    assert!(four < 256.0, "peak RSS on four shards {four:.1} MiB");
}

/// Peak RSS (MiB) of `kacap -r path --json --summary extra…`. A child's
/// peak RSS includes what its parent had when it forked, so a small python
/// process starts kacap and reports its children's peak, not this test
/// binary (large, and busy with other tests).
pub(crate) fn peak_rss_mib(path: &Path, extra: &[&str]) -> f64 {
    let mut argv = vec![
        assert_cmd::cargo::cargo_bin("kacap").display().to_string(),
        "-r".into(),
        path.display().to_string(),
        "--json".into(),
        "--summary".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let script = "import resource, subprocess, sys\n\
                  subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n\
                  print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&argv)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kib: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    kib / 1024.0
}

/// A capture big enough that reading it takes a while (a busy link:
/// 400 k frames of short connections).
fn big(dir: &TempDir, name: &str) -> PathBuf {
    let p = dir.path().join(name);
    write_pcap(
        &p,
        1,
        &busy_link(1_700_000_000.0, 2000.0, 200.0),
        PcapOpts::default(),
    );
    p
}

/// SIGTERM (or SIGINT) while a file is read: the run says it was cut
/// short, exits 128 + the signal, and the JSON summary says
/// `"complete":false`; with several files, those never started produce
/// nothing.
#[test]
fn an_interrupted_file_analysis_says_so_and_exits_143() {
    use std::process::Stdio;
    let dir = TempDir::new().unwrap();
    let path = big(&dir, "big.pcap");
    let bin = assert_cmd::cargo::cargo_bin("kacap");
    let child = std::process::Command::new(&bin)
        .arg("-r")
        .arg(&path)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(
        err.contains("big.pcap: interrupted after") && err.contains("partial analysis"),
        "{err}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["complete"], false, "{last}");

    // Several files, SIGINT as soon as the first is open (not after a fixed
    // time, nor at the first record: a fast or a loaded machine had
    // finished them all by then): no record for a file never started.
    const COPIES: usize = 16;
    for i in 0..COPIES {
        std::fs::copy(&path, dir.path().join(format!("copy-{i:02}.pcap"))).unwrap();
    }
    std::fs::remove_file(&path).unwrap();
    let child = std::process::Command::new(&bin)
        .arg("-r")
        .arg(dir.path())
        .args(["--json", "--summary"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready: its SIGINT handler is in place (SigCgt in /proc/PID/status) and
    // a capture is open.
    let fds = format!("/proc/{}/fd", child.id());
    let status = format!("/proc/{}/status", child.id());
    let catches_sigint = || {
        std::fs::read_to_string(&status).is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
        })
    };
    let opened = || {
        std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|to| to.to_string_lossy().contains("copy-"))
            })
    };
    let since = std::time::Instant::now();
    while !(catches_sigint() && opened()) && since.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(out.status.code(), Some(130), "{text}");
    let files = text.matches("\"type\":\"file\"").count();
    assert!(files < COPIES, "files never started were reported: {text}");
    assert!(text.contains("\"complete\":false"), "{text}");
}

/// Frames the test sink saw, in order: `true` for a packet, `false` for a
/// flow record.
#[derive(Default)]
struct Order(Vec<bool>, u64);

impl kacap::pipeline::event::Sink for Order {
    fn packet(&mut self, _: &kacap::pipeline::event::PacketEvent) -> std::io::Result<()> {
        self.0.push(true);
        Ok(())
    }
    fn flow(&mut self, _: &kacap::pipeline::summary::FlowSummary) -> std::io::Result<()> {
        self.0.push(false);
        Ok(())
    }
    fn finish(&mut self, stats: &kacap::pipeline::event::Stats) -> std::io::Result<()> {
        self.1 = stats.time_outliers;
        Ok(())
    }
}

impl Order {
    /// Flow records that came before the last packet: flows were expired
    /// and freed while reading, not kept to the end.
    fn reported_early(&self) -> usize {
        let last_packet = self.0.iter().rposition(|&p| p).unwrap_or(0);
        self.0[..last_packet].iter().filter(|&&p| !p).count()
    }
}

/// `count` connections of one SYN each, `step` seconds apart, after an
/// optional first frame stamped `first`.
fn syns(count: u32, step: f64, first: Option<f64>) -> Vec<(kacap::core::time::Timestamp, Vec<u8>)> {
    use kacap::core::time::Timestamp;
    let t0 = Timestamp::new(1_700_000_000, 0);
    let syn = |i: u32| {
        let c: std::net::SocketAddr = format!(
            "10.1.{}.{}:{}",
            i >> 16 & 255,
            i >> 8 & 255,
            1024 + (i & 255)
        )
        .parse()
        .unwrap();
        let s: std::net::SocketAddr = "10.2.0.1:5432".parse().unwrap();
        tcp_packet(c, s, SYN, i, 0, 65535, &[])
    };
    let mut frames = Vec::new();
    if let Some(at) = first {
        frames.push((t0.plus(at), syn(u32::MAX)));
    }
    for i in 0..count {
        frames.push((t0.plus(step * f64::from(i)), syn(i)));
    }
    frames
}

fn order_of(
    frames: Vec<(kacap::core::time::Timestamp, Vec<u8>)>,
    options: kacap::core::flows::Options,
) -> Order {
    let mut src =
        kacap::pipeline::event::MemorySource::new(kacap::core::decode::LinkType::Raw, frames);
    let mut order = Order::default();
    kacap::pipeline::drive::analyze(
        &mut src,
        options,
        &mut order,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .unwrap();
    order
}

/// One frame stamped ten years ahead no longer stops connections from
/// expiring (it is counted as an outlier); with every frame stamped alike,
/// the table's size bound reports and frees the oldest connections.
#[test]
fn wrong_timestamps_do_not_stop_flows_from_expiring() {
    let options = kacap::core::flows::Options {
        idle_timeout: 3600.0,
        ..kacap::core::flows::Options::default()
    };
    // 20 000 connections over ~11 h, idle ones forgotten after an hour.
    let normal = order_of(syns(20_000, 2.0, None), options);
    let future = order_of(syns(20_000, 2.0, Some(10.0 * 365.0 * 86_400.0)), options);
    assert!(
        normal.reported_early() > 10_000,
        "{}",
        normal.reported_early()
    );
    assert!(
        future.reported_early() >= normal.reported_early(),
        "{} vs {}",
        future.reported_early(),
        normal.reported_early()
    );
    assert_eq!((normal.1, future.1), (0, 1));
    // Every frame stamped alike: nothing ages, the size bound reports.
    let alike = order_of(
        syns(5_000, 0.0, None),
        kacap::core::flows::Options {
            max_open: 1_000,
            ..options
        },
    );
    assert!(
        alike.reported_early() >= 3_000,
        "{}",
        alike.reported_early()
    );
}

/// `--explain`, `--diagram` and `--diagram-svg` tell about at most 200
/// connections, the most telling first, and count the rest: a capture of a
/// busy host does not make them grow without bound.
#[test]
fn explanations_and_diagrams_are_bounded() {
    let dir = TempDir::new().unwrap();
    let mut frames: Vec<(f64, Vec<u8>)> = syns(500, 0.01, None)
        .into_iter()
        .map(|(ts, f)| (ts.sec as f64 + f64::from(ts.nsec) / 1e9, f))
        .collect();
    // One dead peer among them, late: it is kept.
    let dead = dead_peer(Link::Raw, "10.9.0.2:40000", "10.9.0.1:5432", 1, 2);
    frames.extend(dead.frames.iter().map(|(t, f)| (t + 10.0, f.clone())));
    let path = dir.path().join("many.pcap");
    write_pcap(&path, 101, &frames, PcapOpts::default());
    let svg = dir.path().join("many.svg");
    let text = crate::text(&[
        "-r",
        path.to_str().unwrap(),
        "--summary",
        "--explain",
        "--diagram-svg",
        svg.to_str().unwrap(),
    ]);
    let told = text
        .lines()
        .filter(|l| l.starts_with("flow ") && l.contains(" → "))
        .count();
    assert_eq!(told, 200, "{told}");
    assert!(text.contains("— dead-peer"), "the telling one is kept");
    assert!(
        text.contains("(told about the 200 most telling connections; left out: 301 no-keepalive"),
        "{text}"
    );
    let doc = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(doc.matches("class=\"title\"").count(), 200);
}

/// An `nmap -sA`-style scan: every connection one bare ACK, which starts a
/// hold each (is it a probe?). The cost stays linear (it was ~N × 4096
/// frames: 70 s for these 50 k in this debug build, 86 s for 1 M in
/// release). Release, through a pipe, 200 k of them: 2.4–2.8× the time of
/// the same connections as SYNs; this debug build allocates more slowly,
/// hence 4× here.
#[test]
fn a_bare_ack_scan_costs_about_what_syns_cost() {
    use kacap::core::time::Timestamp;
    let t0 = Timestamp::new(1_700_000_000, 0);
    let scan = |flags: u8| -> Vec<(Timestamp, Vec<u8>)> {
        (0..50_000u32)
            .map(|i| {
                let c: std::net::SocketAddr = format!(
                    "10.3.{}.{}:{}",
                    i >> 16 & 255,
                    i >> 8 & 255,
                    1024 + (i & 255)
                )
                .parse()
                .unwrap();
                let s: std::net::SocketAddr = "10.4.0.1:80".parse().unwrap();
                (
                    t0.plus(f64::from(i) * 0.000_02),
                    tcp_packet(c, s, flags, i, 7, 1024, &[]),
                )
            })
            .collect()
    };
    // This thread's CPU time (not wall time: other tests and other work on
    // the machine do not inflate it), the least of three runs.
    let cpu = || {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid timespec for the call to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    };
    let time = |flags: u8| {
        (0..3)
            .map(|_| {
                let frames = scan(flags);
                let start = cpu();
                order_of(frames, kacap::core::flows::Options::default());
                cpu() - start
            })
            .fold(f64::INFINITY, f64::min)
    };
    let (syn, ack) = (time(SYN), time(ACK));
    assert!(
        ack <= 4.0 * syn.max(0.05),
        "bare ACKs {ack:.2} s, SYNs {syn:.2} s"
    );
}

/// Hash flooding (a red-team shape): IPv6 sources whose last half is the
/// one constant that made FxHash's 16-byte mix multiply by zero (its
/// second seed, read little-endian: 30,000 took 5.2 s against 0.03 s with
/// the table of 5c6cb15's parent), with
/// equal ports, so that every connection collided. Against as many
/// random sources, the chosen ones may cost at most about 3× (170× with
/// FxHash; 40,000 took 13.6 s against 0.04 s), on one thread and
/// sharded. A ratio of the best of three runs each, not a time limit.
#[test]
fn chosen_tuples_cost_about_what_random_ones_cost() {
    use std::net::{Ipv6Addr, SocketAddr};
    let dir = TempDir::new().unwrap();
    let dst: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
    let write = |name: &str, low: &dyn Fn(u64) -> u64| {
        let frames: Vec<(f64, Vec<u8>)> = (0..30_000u64)
            .map(|i| {
                let a = Ipv6Addr::from((u128::from(i + 1) << 64) | u128::from(low(i)));
                let src = SocketAddr::new(a.into(), 40_000);
                (
                    1_700_000_000.0 + i as f64 * 1e-5,
                    tcp_packet(src, dst, SYN, 1, 0, 65535, &[]),
                )
            })
            .collect();
        let path = dir.path().join(name);
        write_pcap(&path, 101, &frames, PcapOpts::default());
        path
    };
    let chosen = write("chosen.pcap", &|_| 0x4473_7003_2e8a_1913);
    let random = write("random.pcap", &|i| {
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d
    });
    for threads in ["1", "2"] {
        let best = |p: &Path| {
            (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    let out = crate::in_process(&[
                        "-r",
                        p.to_str().unwrap(),
                        "--summary",
                        "--threads",
                        threads,
                    ]);
                    assert_eq!(out.0, 0);
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        let (c, r) = (best(&chosen), best(&random));
        assert!(
            c < 3.0 * r + 0.05,
            "--threads {threads}: chosen tuples {c:.3} s, random {r:.3} s"
        );
    }
}
