//! IP fragments (`core::frag`): every fragment's line is tcpdump's, and a
//! recording whose TCP datagrams were cut into fragments is analyzed as
//! the same recording whole.

use crate::craft::{fragment, rewrite_pcap, to_v6};
use crate::fixture;
use crate::kacap;
use crate::parity::{assert_parity, tcpdump_available};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// How a recording's datagrams are cut.
#[derive(Clone, Copy)]
enum Cut {
    /// In order.
    InOrder,
    /// Last fragment first, then the others in order.
    LastFirst,
    /// Every fragment twice (a mirror port's copies).
    Twice,
    /// A copy of the second fragment, 8 bytes further on, after it (an
    /// overlap: the datagram is dropped).
    Overlap,
}

/// `ip`, a fragment, moved 8 bytes further into its datagram.
fn moved(ip: &[u8]) -> Vec<u8> {
    let mut ip = ip.to_vec();
    if ip[0] >> 4 == 6 {
        let off = u16::from_be_bytes([ip[42], ip[43]]) + 8;
        ip[42..44].copy_from_slice(&off.to_be_bytes());
    } else {
        let off = u16::from_be_bytes([ip[6], ip[7]]) + 1;
        ip[6..8].copy_from_slice(&off.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let c = crate::craft::checksum(&[&ip[..20]]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    ip
}

/// The recording `name` whole (as IPv6 with `v6`) and with every TCP
/// datagram longer than `size` payload bytes cut into fragments.
fn recording(dir: &TempDir, name: &str, v6: bool, size: usize, cut: Cut) -> (PathBuf, PathBuf) {
    let family = |ip: &[u8]| if v6 { to_v6(ip) } else { ip.to_vec() };
    let whole = dir.path().join(format!("{name}-whole.pcap"));
    let cut_path = dir.path().join(format!("{name}-cut.pcap"));
    rewrite_pcap(&fixture(name), &whole, |_, ip| vec![family(ip)]);
    rewrite_pcap(&fixture(name), &cut_path, |n, ip| {
        let mut parts = fragment(&family(ip), size, 0x1000_0000 + n as u32);
        match cut {
            Cut::InOrder => {}
            Cut::LastFirst => {
                if let Some(last) = parts.pop() {
                    parts.insert(0, last);
                }
            }
            Cut::Twice => {
                if parts.len() > 1 {
                    parts = parts.into_iter().flat_map(|p| [p.clone(), p]).collect();
                }
            }
            Cut::Overlap => {
                if parts.len() > 2 {
                    let odd = moved(&parts[1]);
                    parts.insert(2, odd);
                }
            }
        }
        parts
    });
    (whole, cut_path)
}

/// `kacap -r path args…`, which must succeed: its stdout.
fn run(path: &Path, args: &[&str]) -> String {
    let out = kacap().arg("-r").arg(path).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(path: &Path, more: &[&str]) -> Vec<Value> {
    let mut args = vec!["--json"];
    args.extend_from_slice(more);
    run(path, &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The connections' records (every field), as a whole capture's.
fn flows(path: &Path) -> Vec<Value> {
    json(path, &["--summary"])
        .into_iter()
        .filter(|r| r["type"] == "flow")
        .collect()
}

fn summary(path: &Path) -> Value {
    json(path, &["--summary"])
        .into_iter()
        .find(|r| r["type"] == "summary")
        .unwrap()
}

const RECORDINGS: [&str; 4] = [
    "stale-pool.pcap",
    "http.pcap",
    "tls-bulk.pcap",
    "grpc-keepalive.pcap",
];

#[test]
fn fragmented_recordings_are_analyzed_as_whole_ones() {
    let dir = TempDir::new().unwrap();
    for name in RECORDINGS {
        for v6 in [false, true] {
            for cut in [Cut::InOrder, Cut::LastFirst, Cut::Twice] {
                let (whole, cut_path) = recording(&dir, name, v6, 64, cut);
                let s = summary(&cut_path);
                assert!(
                    s["fragments"]["reassembled"].as_u64().unwrap() > 0,
                    "{name}: {s}"
                );
                assert_eq!(flows(&whole), flows(&cut_path), "{name} v6 {v6}");
            }
        }
    }
}

#[test]
fn every_fragment_line_is_tcpdumps() {
    if !tcpdump_available() {
        eprintln!("skipped: no tcpdump");
        return;
    }
    let dir = TempDir::new().unwrap();
    for name in RECORDINGS {
        for v6 in [false, true] {
            for cut in [Cut::InOrder, Cut::LastFirst, Cut::Twice, Cut::Overlap] {
                let (_, cut_path) = recording(&dir, name, v6, 64, cut);
                for flags in [&[][..], &["-v"], &["-tt", "-S"], &["-e"], &["-q"]] {
                    assert_parity(&cut_path, flags);
                }
            }
        }
    }
}

#[test]
fn two_shards_write_what_one_thread_writes() {
    let dir = TempDir::new().unwrap();
    let mut paths = Vec::new();
    for (name, v6) in [("stale-pool.pcap", false), ("tls-bulk.pcap", true)] {
        paths.push(recording(&dir, name, v6, 64, Cut::LastFirst).1);
    }
    for path in &paths {
        for flags in [
            &["--color=never"][..],
            &["--json"],
            &["-v", "--color=never"],
        ] {
            let run = |threads: &str| {
                let mut args = flags.to_vec();
                args.extend(["--threads", threads]);
                run(path, &args)
            };
            assert_eq!(run("1"), run("3"), "{} {flags:?}", path.display());
        }
    }
}

/// A million fragments that never complete, each its own datagram, within
/// 20 s (no timeout frees them): what is held stays under the bound.
#[test]
fn a_million_fragments_that_never_complete_stay_in_bounded_memory() {
    let dir = TempDir::new().unwrap();
    let write = |name: &str, n: u32| {
        let path = dir.path().join(name);
        let mut bytes = crate::craft::pcap_header(101, crate::craft::PcapOpts::default());
        for i in 0..n {
            let mut ip = vec![0x45, 0, 0, 36];
            ip.extend_from_slice(&(i as u16).to_be_bytes());
            ip.extend_from_slice(&[0x20, 0, 64, 6, 0, 0]);
            ip.extend_from_slice(&[10, (i >> 16) as u8, 0, 1, 10, 0, 0, 2]);
            ip.extend_from_slice(&[0x42; 16]);
            let t = 1_700_000_000.0 + f64::from(i) * 20.0 / f64::from(n);
            bytes.extend(crate::craft::pcap_record(
                t,
                &ip,
                crate::craft::PcapOpts::default(),
            ));
        }
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let small = write("small.pcap", 10_000);
    let big = write("big.pcap", 1_000_000);
    let s = summary(&big);
    let f = &s["fragments"];
    assert_eq!(f["frames"], 1_000_000);
    let (memory, incomplete) = (
        f["dropped"]["memory"].as_u64().unwrap(),
        f["dropped"]["incomplete"].as_u64().unwrap(),
    );
    assert_eq!(memory + incomplete, 1_000_000, "{f}");
    assert!(incomplete < 20_000, "{f}");
    for threads in ["1", "2"] {
        let base = crate::hostile::peak_rss_mib(&small, &["--threads", threads]);
        let peak = crate::hostile::peak_rss_mib(&big, &["--threads", threads]);
        eprintln!(
            "fragments, --threads {threads}: peak RSS {base:.1} MiB for 10k, {peak:.1} MiB for 1M"
        );
        assert!(peak < base + 16.0, "{base:.1} → {peak:.1} MiB");
    }
}

/// Real fragments (`fixtures/make-fragments.sh`: a router's kernel cut the
/// server's segments toward a 576-byte link), and the same connection taken
/// at the server: the same analysis, to the microseconds the two
/// interfaces saw it apart.
#[test]
fn real_fragments_are_analyzed_as_the_same_connection_whole() {
    let (cut, whole) = (
        flows(&fixture("fragments.pcap")),
        flows(&fixture("fragments-whole.pcap")),
    );
    assert_eq!(cut.len(), 1);
    let s = summary(&fixture("fragments.pcap"));
    assert_eq!(s["fragments"]["reassembled"], 6, "{s}");
    assert_eq!(s["fragments"]["frames"], 18, "{s}");
    for (a, b) in cut.iter().zip(&whole) {
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (k, v) in a {
            let near = |x: &Value, y: &Value| match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() < 0.001,
                _ => x == y,
            };
            let same = match (v, &b[k]) {
                (Value::Object(x), Value::Object(y)) => x.iter().all(|(k, v)| near(v, &y[k])),
                (x, y) => near(x, y),
            };
            assert!(same, "{k}: {v} against {}", b[k]);
        }
    }
    assert_eq!(cut[0]["verdict"], "alive");
    if tcpdump_available() {
        for flags in [&[][..], &["-v"], &["-x"]] {
            assert_parity(&fixture("fragments.pcap"), flags);
        }
    }
}

/// Overlaps drop their datagrams (RFC 5722), and say so on their lines.
#[test]
fn an_overlapping_fragment_drops_its_datagram_and_says_so() {
    let dir = TempDir::new().unwrap();
    for v6 in [false, true] {
        let (_, path) = recording(&dir, "tls-bulk.pcap", v6, 64, Cut::Overlap);
        let s = summary(&path);
        assert!(
            s["fragments"]["dropped"]["overlap"].as_u64().unwrap() > 0,
            "{s}"
        );
        let text = run(&path, &["--color=never"]);
        assert!(
            text.contains("overlaps another fragment: the datagram is dropped"),
            "{text}"
        );
    }
}

/// The frames that complete a datagram are those Wireshark's own IP
/// reassembly completes (tshark: `ip.reassembled.length`): on the real
/// fragments, and on nDPI's 9,077 16-byte fragments when the third-party
/// traces were fetched. kacap's side is read from its `--annotate` copy.
#[test]
fn datagrams_complete_where_wireshark_completes_them() {
    let dir = TempDir::new().unwrap();
    let garbage = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/thirdparty/ndpi/ip_fragmented_garbage.pcap");
    let mut traces = vec![fixture("fragments.pcap")];
    if garbage.exists() {
        traces.push(garbage);
    }
    for trace in traces {
        let Some(theirs) = crate::annotate::tshark(
            &trace,
            &[
                "-Y",
                "ip.reassembled.length",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ],
        ) else {
            eprintln!("skipped: no tshark");
            return;
        };
        let copy = dir.path().join("annotated.pcapng");
        run(&trace, &["--summary", "--annotate", copy.to_str().unwrap()]);
        let comments = crate::annotate::tshark(
            &copy,
            &["-T", "fields", "-e", "frame.number", "-e", "frame.comment"],
        )
        .unwrap();
        let ours: Vec<&str> = comments
            .lines()
            .filter(|l| l.contains("(reassembled from") || l.contains("completes its datagram"))
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        let theirs: Vec<&str> = theirs.lines().collect();
        assert!(!theirs.is_empty());
        assert_eq!(ours, theirs, "{}", trace.display());
    }
}
