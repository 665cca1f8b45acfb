//! The fast path for classic pcap files (`src/input/fastread.rs`) against
//! libpcap's own reading (`KACAP_NO_FASTREAD=1`): the same output, status
//! and messages on every fixture, every link type, both byte orders, nano
//! stamps, snaplen-cut frames, filters, `-c`, and files cut in the middle
//! of a record.

use crate::craft::*;
use crate::kacap;
use std::path::Path;

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
    for f in &crate::all_fixtures() {
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

/// A pcapng file, block by block, in either byte order.
struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn new(be: bool) -> Ng {
        let mut ng = Ng {
            be,
            out: Vec::new(),
        };
        let mut shb = ng.u32(0x1a2b_3c4d);
        shb.extend(ng.u16(1));
        shb.extend(ng.u16(0));
        shb.extend_from_slice(&[0xff; 8]);
        ng.block(0x0a0d_0d0a, &shb);
        ng
    }
    fn u32(&self, v: u32) -> Vec<u8> {
        if self.be {
            v.to_be_bytes().to_vec()
        } else {
            v.to_le_bytes().to_vec()
        }
    }
    fn u16(&self, v: u16) -> Vec<u8> {
        if self.be {
            v.to_be_bytes().to_vec()
        } else {
            v.to_le_bytes().to_vec()
        }
    }
    fn block(&mut self, kind: u32, body: &[u8]) {
        let len = (12 + body.len().div_ceil(4) * 4) as u32;
        let (k, l) = (self.u32(kind), self.u32(len));
        self.out.extend(k);
        self.out.extend(l.clone());
        self.out.extend_from_slice(body);
        self.out
            .resize(self.out.len() + (4 - body.len() % 4) % 4, 0);
        self.out.extend(l);
    }
    /// An interface; `tsresol`: the if_tsresol byte, if any; `offset`: an
    /// if_tsoffset.
    fn idb(&mut self, link: u16, snaplen: u32, tsresol: Option<u8>, offset: bool) {
        let mut b = self.u16(link);
        b.extend(self.u16(0));
        b.extend(self.u32(snaplen));
        // A comment first: options the reader must walk past.
        b.extend(self.u16(1));
        b.extend(self.u16(5));
        b.extend_from_slice(b"hello\0\0\0");
        if let Some(r) = tsresol {
            b.extend(self.u16(9));
            b.extend(self.u16(1));
            b.extend_from_slice(&[r, 0, 0, 0]);
        }
        if offset {
            b.extend(self.u16(14));
            b.extend(self.u16(8));
            b.extend_from_slice(&1u64.to_le_bytes());
        }
        b.extend(self.u16(0));
        b.extend(self.u16(0));
        self.block(1, &b);
    }
    fn epb(&mut self, iface: u32, units: u64, data: &[u8], wire: u32) {
        let mut b = self.u32(iface);
        b.extend(self.u32((units >> 32) as u32));
        b.extend(self.u32(units as u32));
        b.extend(self.u32(data.len() as u32));
        b.extend(self.u32(wire));
        b.extend_from_slice(data);
        b.resize(b.len().div_ceil(4) * 4, 0);
        // An option after the data (epb_flags: inbound).
        b.extend(self.u16(2));
        b.extend(self.u16(4));
        b.extend(self.u32(1));
        b.extend(self.u16(0));
        b.extend(self.u16(0));
        self.block(6, &b);
    }
}

/// The frames of a classic pcap file (the fixtures), with their stamps in
/// nanoseconds.
fn frames_of(path: &Path) -> (u16, Vec<(u64, Vec<u8>, u32)>) {
    let b = std::fs::read(path).unwrap();
    let le = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let nano = le(0) == 0xa1b2_3c4d;
    assert!(nano || le(0) == 0xa1b2_c3d4, "{}", path.display());
    let link = le(20) as u16;
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= b.len() {
        let (sec, frac, cap, wire) = (le(at), le(at + 4), le(at + 8) as usize, le(at + 12));
        let ns = u64::from(sec) * 1_000_000_000 + u64::from(frac) * if nano { 1 } else { 1000 };
        out.push((ns, b[at + 16..at + 16 + cap].to_vec(), wire));
        at += 16 + cap;
    }
    (link, out)
}

#[test]
fn pcapng_files_read_as_libpcap_reads_them() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    // Every fixture as pcapng: micro- and nanosecond stamps, both byte
    // orders, a second interface of the same link type, statistics and
    // custom blocks in between.
    for name in [
        "dead-peer",
        "idle-start-dead",
        "http",
        "grpc-keepalive",
        "websocket",
    ] {
        let (link, frames) = frames_of(&dir.join(format!("{name}.pcap")));
        for (k, (be, nano)) in [(false, false), (true, true), (false, true)]
            .into_iter()
            .enumerate()
        {
            let mut ng = Ng::new(be);
            // The same link type and snaplen (libpcap refuses others).
            ng.idb(link, 262_144, nano.then_some(9), false);
            ng.idb(link, 262_144, Some(6), false);
            for (i, (ns, data, wire)) in frames.iter().enumerate() {
                let second = i % 3 == 2;
                let units = if nano && !second { *ns } else { ns / 1000 };
                ng.epb(u32::from(second), units, data, *wire);
                if i == 4 {
                    ng.block(5, &[0; 20]); // interface statistics
                    ng.block(0x0000_0bad, &[0x59, 0x7e, 0, 0, 1, 2, 3, 4]);
                }
            }
            let path = tmp.path().join(format!("{name}-{k}.pcapng"));
            std::fs::write(&path, &ng.out).unwrap();
            for flags in FLAGS {
                same(&path, flags);
            }
            // Cut inside the last block, and inside a block header.
            for cut in [ng.out.len() - 3, ng.out.len() - 70] {
                let short = tmp.path().join(format!("{name}-{k}-cut{cut}.pcapng"));
                std::fs::write(&short, &ng.out[..cut]).unwrap();
                same(&short, &["--json"]);
            }
        }
    }
    // Larger than the fast path's 1 MiB chunks: blocks across their ends.
    let big = busy_link(1_700_000_000.0, 60.0, 2000.0);
    for be in [false, true] {
        let mut ng = Ng::new(be);
        ng.idb(1, 262_144, Some(9), false);
        for (t, data) in &big {
            ng.epb(0, (t * 1e9).round() as u64, data, data.len() as u32);
        }
        assert!(ng.out.len() > 4 << 20, "{} bytes", ng.out.len());
        let path = tmp.path().join(format!("big-{be}.pcapng"));
        std::fs::write(&path, &ng.out).unwrap();
        same(&path, &["--json"]);
        same(&path, &["--summary", "port", "443"]);
    }
    // What the fast path leaves to libpcap, in the middle of a file: an
    // interface of another link type, stamps in milliseconds, a time
    // offset, a simple packet block, a second section, a captured length
    // over the interface's snaplen.
    let (link, frames) = frames_of(&dir.join("dead-peer.pcap"));
    for case in 0..6 {
        let mut ng = Ng::new(false);
        ng.idb(link, 96, None, false);
        for (i, (ns, data, wire)) in frames.iter().enumerate() {
            if i == 5 {
                match case {
                    0 => ng.idb(101, 0, None, false),
                    1 => ng.idb(link, 0, Some(3), false),
                    2 => ng.idb(link, 0, None, true),
                    3 => {
                        let mut b = ng.u32(data.len() as u32);
                        b.extend_from_slice(data);
                        ng.block(3, &b);
                    }
                    4 => {
                        let again = Ng::new(false);
                        ng.out.extend_from_slice(&again.out);
                        ng.idb(link, 0, None, false);
                    }
                    _ => {
                        let mut big = data.clone();
                        big.resize(200, 0);
                        ng.epb(0, ns / 1000, &big, 200);
                    }
                }
            }
            let iface = if (1..=2).contains(&case) && i > 5 {
                1
            } else {
                0
            };
            ng.epb(iface, ns / 1000, &data[..data.len().min(96)], *wire);
        }
        let path = tmp.path().join(format!("odd-{case}.pcapng"));
        std::fs::write(&path, &ng.out).unwrap();
        for flags in FLAGS {
            same(&path, flags);
        }
    }
}

/// An Interface Statistics Block: drops by the interface (`isb_ifdrop`)
/// and by the OS (`isb_osdrop`), in the file's byte order.
fn isb(ng: &mut Ng, iface: u32, ifdrop: u64, osdrop: u64) {
    let mut b = ng.u32(iface);
    b.extend(ng.u32(0));
    b.extend(ng.u32(0));
    for (code, v) in [(5, ifdrop), (7, osdrop)] {
        b.extend(ng.u16(code));
        b.extend(ng.u16(8));
        let (hi, lo) = ((v >> 32) as u32, v as u32);
        if ng.be {
            b.extend(ng.u32(hi));
            b.extend(ng.u32(lo));
        } else {
            b.extend(ng.u32(lo));
            b.extend(ng.u32(hi));
        }
    }
    b.extend(ng.u16(0));
    b.extend(ng.u16(0));
    ng.block(5, &b);
}

#[test]
fn drops_a_pcapng_file_counts_stand_beside_the_verdicts_they_may_touch() {
    let tmp = tempfile::TempDir::new().unwrap();
    let (link, frames) = frames_of(&crate::fixture("dead-peer.pcap"));
    for be in [false, true] {
        let mut ng = Ng::new(be);
        ng.idb(link, 262_144, Some(9), false);
        for (i, (ns, data, wire)) in frames.iter().enumerate() {
            ng.epb(0, *ns, data, *wire);
            if i == 3 {
                isb(&mut ng, 0, 3, 0); // cumulative: the later one counts
            }
        }
        isb(&mut ng, 0, 5, 2);
        let path = tmp.path().join(format!("drops-{be}.pcapng"));
        std::fs::write(&path, &ng.out).unwrap();
        let (code, out, _) = run(&path, &["--json", "--summary"], true);
        assert_eq!(code, Some(0));
        let out = String::from_utf8(out).unwrap();
        let summary = out.lines().last().unwrap();
        assert!(summary.contains("\"capture_dropped\":7}"), "{summary}");
        let (_, text, _) = run(&path, &["--summary"], true);
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("The capture itself dropped 7 packets")
                && text.contains("1 connection's verdict rests on packets not seen (dead-peer)"),
            "{text}"
        );
    }
}
