//! Long captures as users hand them over: compressed (gzip, zstd, xz,
//! bzip2: told by magic bytes, not by name), from FIFOs and process
//! substitution, and rotated by tcpdump -C / -G into pieces that `--merge`
//! reads as one capture.

use crate::craft::*;
use crate::{fixture, json, kacap};
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn compress(data: &[u8], how: &str) -> Vec<u8> {
    match how {
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(data, 3).unwrap(),
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        _ => unreachable!(),
    }
}

fn stdout_of(args: &[&std::ffi::OsStr]) -> String {
    let out = kacap().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn compressed_captures_read_as_the_plain_file() {
    let plain = fixture("dead-peer.pcap");
    let data = std::fs::read(&plain).unwrap();
    let want = stdout_of(&["-r".as_ref(), plain.as_os_str(), "--json".as_ref()]);
    let dir = TempDir::new().unwrap();
    for how in ["gz", "zst", "xz", "bz2"] {
        // Named without the extension: the magic bytes tell.
        let p = dir.path().join(format!("capture-{how}"));
        std::fs::write(&p, compress(&data, how)).unwrap();
        let got = stdout_of(&["-r".as_ref(), p.as_os_str(), "--json".as_ref()]);
        assert_eq!(got, want, "{how}");
    }
    // Two gzip members one after the other are one stream, as gzip -d reads them.
    let (a, b) = data.split_at(24 + 16 + 74);
    let mut two = compress(a, "gz");
    two.extend(compress(b, "gz"));
    let p = dir.path().join("two-members.pcap.gz");
    std::fs::write(&p, two).unwrap();
    assert_eq!(
        stdout_of(&["-r".as_ref(), p.as_os_str(), "--json".as_ref()]),
        want
    );
    // A directory lists compressed captures by their names (here the one
    // named like a capture: the others have no capture extension).
    std::fs::copy(&plain, dir.path().join("plain.pcap")).unwrap();
    let listed = stdout_of(&["-r".as_ref(), dir.path().as_os_str(), "--summary".as_ref()]);
    assert!(listed.contains("two-members.pcap.gz <=="), "{listed}");
    assert!(listed.contains("plain.pcap <=="), "{listed}");
    assert!(!listed.contains("capture-gz"), "{listed}");
}

#[test]
fn a_damaged_or_foreign_compressed_file_says_which() {
    let dir = TempDir::new().unwrap();
    let data = compress(&std::fs::read(fixture("dead-peer.pcap")).unwrap(), "gz");
    let cut = dir.path().join("cut.pcap.gz");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let out = kacap()
        .arg("-r")
        .arg(&cut)
        .arg("--summary")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the compressed file is damaged: gzip data is damaged"),
        "{err}"
    );
    let foreign = dir.path().join("notes.gz");
    std::fs::write(&foreign, compress(b"not a capture at all\n", "gz")).unwrap();
    let out = kacap().arg("-r").arg(&foreign).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("gzip-compressed, but what it holds is not a pcap"),
        "{err}"
    );
    // /dev/zero: a character device, no magic number.
    let out = kacap().args(["-r", "/dev/zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pcap, pcapng, gzip"));
}

#[test]
fn fifos_and_dev_stdin_are_read_as_streams() {
    let dir = TempDir::new().unwrap();
    let fifo = dir.path().join("capture.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let data = std::fs::read(fixture("dead-peer.pcap")).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .unwrap()
                .write_all(&data)
                .unwrap();
        })
    };
    let got = stdout_of(&["-r".as_ref(), fifo.as_os_str(), "--summary".as_ref()]);
    writer.join().unwrap();
    assert!(got.contains("┆ dead-peer"), "{got}");
    let out = kacap()
        .args(["-r", "/dev/stdin", "--summary"])
        .pipe_stdin(fixture("dead-peer.pcap"))
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("┆ dead-peer"));
}

/// A Linux-default dead peer (7200 s idle, 9 probes 75 s apart) captured
/// with `tcpdump -G 3600 -w ka-%H%M.pcap`: the handshake in the first piece,
/// the silence across the second, the probes and the RST in the third.
fn rotated(dir: &Path) -> Vec<PathBuf> {
    let mut c = Conn::new("10.0.0.2:51000", "10.0.0.1:5432", Link::Ethernet);
    c.t = 1_700_000_000.0;
    c.handshake(1000, 2000)
        .exchange(Client, b"SELECT 1")
        .wait(7200.0);
    for i in 0..9 {
        if i > 0 {
            c.wait(75.0);
        }
        c.probe(Client, 0);
    }
    c.wait(75.0).give_up(Client);
    let busy = busy_link(1_700_000_000.0, 7200.0 + 700.0, 2.0);
    let all = merge(vec![c.frames, busy]);
    let mut paths = Vec::new();
    for (i, hour) in ["1000", "1100", "1200"].iter().enumerate() {
        let (lo, hi) = (
            1_700_000_000.0 + 3600.0 * i as f64,
            1_700_000_000.0 + 3600.0 * (i + 1) as f64,
        );
        let part: Vec<(f64, Vec<u8>)> = all
            .iter()
            .filter(|(t, _)| *t >= lo && (*t < hi || i == 2))
            .cloned()
            .collect();
        let p = dir.join(format!("ka-{hour}.pcap"));
        write_pcap(&p, 1, &part, PcapOpts::default());
        paths.push(p);
    }
    paths
}

#[test]
fn merge_reads_a_rotation_set_as_one_capture() {
    let dir = TempDir::new().unwrap();
    let parts = rotated(dir.path());
    // Given in any order, or as a quoted glob: one connection, one verdict.
    let glob = dir.path().join("ka-*.pcap");
    let out = kacap()
        .args(["--merge", "--json", "-r"])
        .arg(&parts[2])
        .arg("-r")
        .arg(&parts[0])
        .arg("-r")
        .arg(&parts[1])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let flows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "flow" && v["server"] == "10.0.0.1:5432")
        .collect();
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!(flows[0]["verdict"], "dead-peer");
    assert_eq!(flows[0]["handshake"], "complete");
    crate::approx(&flows[0]["keepalive"]["idle"], 7200.0, 0.01);
    crate::approx(&flows[0]["keepalive"]["interval"], 75.0, 0.01);
    assert_eq!(flows[0]["keepalive"]["count"], 9);
    // -w keeps the merged capture, which reads back the same.
    let merged = dir.path().join("merged.pcap");
    let out = kacap()
        .args(["--merge", "--summary", "-r"])
        .arg(&glob)
        .arg("-w")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = json(&merged, &[]);
    let flow = again
        .flows
        .iter()
        .find(|f| f["server"] == "10.0.0.1:5432")
        .unwrap();
    assert_eq!(flow["verdict"], "dead-peer");
    // Without --merge: three half connections, and a note that says so.
    let out = kacap()
        .arg("-r")
        .arg(&glob)
        .arg("--summary")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("look like pieces of one rotated capture") && err.contains("--merge"),
        "{err}"
    );
}

#[test]
fn merge_refuses_mixed_link_types_and_pipes_in_one_line() {
    let dir = TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:51000", "10.0.0.1:5432", Link::Raw);
    c.handshake(1, 2);
    let raw = dir.path().join("raw.pcap");
    c.write_pcap(&raw, PcapOpts::default());
    let out = kacap()
        .args(["--merge", "-r"])
        .arg(fixture("dead-peer.pcap"))
        .arg("-r")
        .arg(&raw)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("one link type"), "{err}");
    let out = kacap()
        .args(["--merge", "-r", "-", "-r"])
        .arg(fixture("dead-peer.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--merge reads files"));
}

/// Three weeks of hourly `tcpdump -G 3600` pieces is 504 files: with the
/// default soft limit of 1,024 open files `--merge` stopped at the 509th
/// ("not a readable pcap"); mergecap merges 1,000. Pieces read on the fast
/// path now hold no descriptor between their chunks: 1,003 pieces merge
/// under a hard limit of 1,024. Compressed pieces do hold descriptors
/// (the decompressor's pipe): running out names the limit, in one line.
#[test]
fn merge_takes_a_thousand_pieces_under_the_default_open_file_limit() {
    let dir = TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:50000", "10.0.0.1:5432", Link::Ethernet);
    c.handshake(10, 20);
    for _ in 0..500 {
        c.exchange(Client, b"ping");
    }
    assert_eq!(c.frames.len(), 1003);
    for (i, frame) in c.frames.iter().enumerate() {
        let path = dir.path().join(format!("p-{i:04}.pcap"));
        write_pcap(&path, 1, std::slice::from_ref(frame), PcapOpts::default());
        if i < 300 {
            let bytes = std::fs::read(&path).unwrap();
            let gz = dir.path().join(format!("z-{i:04}.pcap.gz"));
            std::fs::write(gz, compress(&bytes, "gz")).unwrap();
        }
    }
    let bin = assert_cmd::cargo::cargo_bin("kacap");
    let run = |limits: &str, glob: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{limits} && exec \"$0\" --merge --json --summary -r \"$1\""
            ))
            .arg(&bin)
            .arg(dir.path().join(glob))
            .output()
            .unwrap()
    };
    let out = run("ulimit -n 1024", "p-*.pcap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flows = String::from_utf8(out.stdout).unwrap();
    // One connection, every piece's packet in it.
    let records: Vec<&str> = flows
        .lines()
        .filter(|l| l.contains("\"type\":\"flow\""))
        .collect();
    assert_eq!(records.len(), 1, "{flows}");
    assert!(records[0].contains("\"packets\":1003"), "{flows}");
    let out = run("ulimit -n 256", "z-*.pcap.gz");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--merge: out of open files at file")
            && err.contains("of 300 (limit 256")
            && err.lines().count() == 1,
        "{err}"
    );
}
