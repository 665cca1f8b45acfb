//! The fast path for classic pcap files (`src/fastread.rs`) against
//! libpcap's own reading (`KACAP_NO_FASTREAD=1`): the same output, status
//! and messages on every fixture, every link type, both byte orders, nano
//! stamps, snaplen-cut frames, filters, `-c`, and files cut in the middle
//! of a record.

use crate::craft::*;
use crate::kacap;
use std::path::{Path, PathBuf};

fn run(path: &Path, args: &[&str], fast: bool) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let mut cmd = kacap();
    if !fast {
        cmd.env("KACAP_NO_FASTREAD", "1");
    }
    let out = cmd.arg("-r").arg(path).args(args).output().unwrap();
    (out.status.code(), out.stdout, out.stderr)
}

fn same(path: &Path, args: &[&str]) {
    let a = run(path, args, true);
    let b = run(path, args, false);
    assert_eq!(a.0, b.0, "{} {args:?}: exit status", path.display());
    assert!(
        a.1 == b.1,
        "{} {args:?}: stdout differs\nfast:\n{}\nlibpcap:\n{}",
        path.display(),
        String::from_utf8_lossy(&a.1),
        String::from_utf8_lossy(&b.1)
    );
    assert_eq!(
        String::from_utf8_lossy(&a.2),
        String::from_utf8_lossy(&b.2),
        "{} {args:?}: stderr",
        path.display()
    );
}

const FLAGS: [&[&str]; 5] = [
    &["--json"],
    &["-e", "-xx", "-vv"],
    &["--summary"],
    &["--json", "tcp", "port", "2333"],
    &["-c", "7", "--json"],
];

#[test]
fn the_fast_path_reads_every_fixture_as_libpcap_does() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 20);
    for f in &fixtures {
        for flags in FLAGS {
            same(f, flags);
        }
    }
}

#[test]
fn every_link_type_byte_order_stamp_precision_and_cut_file() {
    let tmp = tempfile::TempDir::new().unwrap();
    let links = [
        Link::Ethernet,
        Link::Raw,
        Link::Sll,
        Link::Sll2,
        Link::Vlan,
        Link::IpOnly,
        Link::Null,
        Link::Loop,
    ];
    for (i, link) in links.into_iter().enumerate() {
        for (j, opts) in [
            PcapOpts::default(),
            PcapOpts {
                big_endian: true,
                ..PcapOpts::default()
            },
            PcapOpts {
                nano: true,
                ..PcapOpts::default()
            },
            PcapOpts {
                snaplen: Some(54),
                ..PcapOpts::default()
            },
        ]
        .into_iter()
        .enumerate()
        {
            let mut c = Conn::new("10.0.0.2:40000", "10.0.0.1:2333", link);
            c.handshake(100, 900)
                .exchange(Client, b"hello")
                .wait(7200.0)
                .probe(Client, 0)
                .seg(Server, ACK, &[])
                .wait(75.0)
                .seg(Client, FIN | ACK, &[])
                .seg(Server, FIN | ACK, &[])
                .seg(Client, ACK, &[]);
            let path = tmp.path().join(format!("l{i}-{j}.pcap"));
            c.write_pcap(&path, opts);
            for flags in FLAGS {
                same(&path, flags);
            }
            // Cut in the middle of the last record, and inside a header.
            let bytes = std::fs::read(&path).unwrap();
            for cut in [bytes.len() - 3, bytes.len() - 40] {
                let short = tmp.path().join(format!("l{i}-{j}-cut{cut}.pcap"));
                std::fs::write(&short, &bytes[..cut]).unwrap();
                same(&short, &["--json"]);
                same(&short, &["--json", "tcp", "port", "2333"]);
            }
        }
    }
}
