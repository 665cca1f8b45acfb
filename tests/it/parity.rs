//! The timeline starts every line with exactly what `tcpdump -n -r` prints.

use crate::craft::*;
use crate::crafted::dead_peer;
use crate::{fixture, kacap};
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

pub(crate) fn tcpdump_available() -> bool {
    Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tcpdump_lines(path: &Path, flags: &[&str]) -> Vec<String> {
    let out = Command::new("tcpdump")
        .env("TZ", "UTC")
        .args(flags)
        .args(["-n", "-r"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "tcpdump failed on {}", path.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

pub(crate) fn assert_parity(path: &Path, flags: &[&str]) {
    let theirs = tcpdump_lines(path, flags);
    let out = kacap()
        .arg("-r")
        .arg(path)
        .args(flags)
        .arg("--color=never")
        .output()
        .unwrap();
    assert!(out.status.success());
    let ours = String::from_utf8(out.stdout).unwrap();
    let ours: Vec<&str> = ours.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "line count differs for {} {flags:?}",
        path.display()
    );
    // A packet's last tcpdump line carries kacap's words; the other lines
    // (`-v`'s IP line, `-x`'s hex lines) are tcpdump's as they are.
    let mut annotated = 0;
    for (t, k) in theirs.iter().zip(&ours) {
        let with_words = k.starts_with(t.as_str())
            && (k[t.len()..].starts_with("  flow ") || k[t.len()..].starts_with("  IP fragment "));
        annotated += usize::from(with_words);
        assert!(
            with_words || k == t,
            "{}:\ntcpdump: {t}\nkacap:   {k}",
            path.display()
        );
    }
    assert!(annotated > 0, "no annotated line for {}", path.display());
}

/// Every Ethernet capture the tests have: the real fixtures and the crafted
/// ones (VLAN, wrap, 1-byte probes, zero window, idle start, snaplen 54,
/// padding, IPv6).
fn ethernet_fixtures(dir: &TempDir) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = [
        "healthy.pcap",
        "dead-peer.pcap",
        "peer-reboot.pcap",
        "http.pcap",
        "idle-drop.pcap",
        "idle-rst.pcap",
        "idle-keepalive.pcap",
        "idle-mixed.pcap",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let mut add = |name: &str, conn: &Conn, opts: PcapOpts| {
        let p = dir.path().join(name);
        conn.write_pcap(&p, opts);
        paths.push(p);
    };
    let d = PcapOpts::default();
    add(
        "eth.pcap",
        &dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2),
        d,
    );
    add(
        "vlan.pcap",
        &dead_peer(Link::Vlan, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2),
        d,
    );
    add(
        "wrap.pcap",
        &dead_peer(
            Link::Ethernet,
            "10.0.0.2:40000",
            "10.0.0.1:5432",
            u32::MAX - 3,
            u32::MAX,
        ),
        d,
    );
    add(
        "v6.pcap",
        &dead_peer(
            Link::Ethernet,
            "[2001:db8::2]:40000",
            "[2001:db8::1]:5432",
            1,
            2,
        ),
        d,
    );
    add(
        "padded.pcap",
        &dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2).padded(),
        d,
    );
    add(
        "snap54.pcap",
        &dead_peer(Link::Ethernet, "10.0.0.2:40000", "10.0.0.1:5432", 1, 2),
        PcapOpts {
            snaplen: Some(54),
            ..d
        },
    );
    let mut one = Conn::new("10.0.0.2:49152", "10.0.0.1:3389", Link::Ethernet);
    one.handshake(100, 200)
        .exchange(Client, b"req")
        .wait(2.0)
        .probe(Client, 1)
        .seg(Server, ACK, &[]);
    add("one-byte.pcap", &one, d);
    let mut idle = Conn::new("10.0.0.2:51000", "10.0.0.1:6379", Link::Ethernet);
    idle.next = [0x8000_0000, 0x1234_5678];
    idle.probe(Client, 0)
        .seg(Server, ACK, &[])
        .wait(2.0)
        .probe(Client, 0)
        .give_up(Client);
    add("idle.pcap", &idle, d);
    paths.push(fixture("http-pool-race.pcap"));
    paths.extend(texts_and_options(dir));
    paths
}

/// What tcpdump prints beyond the TCP header fields: the first line of the
/// text protocols it knows by port (FTP, SSH's banner, HTTP cut by the
/// snaplen) and every `-v` text line, the TCP options it decodes (MPTCP,
/// Fast Open, md5, UTO, unknown ones, a bad length, a timestamp of the
/// wrong size), a TSO frame's IP total length 0 (`bad-len 0`) and a total
/// length longer than the frame (`truncated-ip`).
fn texts_and_options(dir: &TempDir) -> Vec<PathBuf> {
    let d = PcapOpts::default();
    let mut paths = Vec::new();
    let mut add = |name: &str, conn: &Conn, opts: PcapOpts| {
        let p = dir.path().join(name);
        conn.write_pcap(&p, opts);
        paths.push(p);
    };
    let mut ftp = Conn::new("10.0.0.2:40001", "10.0.0.1:21", Link::Ethernet);
    ftp.handshake(1, 2)
        .exchange(Server, b"220 ready\r\n")
        .exchange(Client, b"USER anonymous\r\nPASS x\r\n")
        .exchange(Client, b"NOOP")
        .exchange(Server, b"\x00\x01binary\r\n")
        .exchange(Server, b"226 done\rnot a line end\n");
    add("ftp.pcap", &ftp, d);
    let mut ssh = Conn::new("10.0.0.2:40002", "10.0.0.1:22", Link::Ethernet);
    ssh.handshake(3, 4)
        .exchange(Server, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        .exchange(Client, b"SSH-2.0-Go\r\n")
        .exchange(Client, &[0, 0, 1, 0x14, 7, 20, 1, 2, 3, 4]);
    add("ssh.pcap", &ssh, d);
    let mut http = Conn::new("10.0.0.2:40003", "10.0.0.1:80", Link::Ethernet);
    http.handshake(5, 6)
        .exchange(
            Client,
            b"GET /a/long/path/that/the/snaplen/cuts HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .exchange(Server, b"HTTP/1.1 204 No Content\r\n\r\n");
    add(
        "http-snap80.pcap",
        &http,
        PcapOpts {
            snaplen: Some(80),
            ..d
        },
    );
    add("http.pcap", &http, d);
    let mut o = Conn::new("10.0.0.2:40004", "10.0.0.1:5432", Link::Ethernet);
    let key = [0x9b, 0x59, 0xbe, 0x3d, 0x69, 0x5e, 0x66, 0xa7];
    let mut capable = vec![2, 4, 5, 0xb4, 30, 12, 0x00, 0x81];
    capable.extend(key);
    o.raw(Client, SYN, 1000, 0, 65535, &[], &capable);
    o.raw(
        Server,
        SYN | ACK,
        5000,
        1001,
        65535,
        &[],
        &[254, 4, 0xf9, 0x89, 34, 6, 1, 2, 3, 4, 1, 1],
    );
    let dss = [
        30, 20, 0x20, 0x05, 0xd5, 0x2a, 0xca, 0x2b, 0xd1, 0xb9, 0x7d, 0x71, 0, 0, 0, 1, 0, 4, 0xeb,
        0x29,
    ];
    o.raw(Client, ACK | PSH, 1001, 5001, 512, b"data", &dss);
    let mut md5 = vec![19, 18];
    md5.extend(0..16u8);
    md5.extend([1, 1]);
    o.raw(Server, ACK | PSH, 5001, 1005, 512, b"back", &md5);
    o.raw(
        Client,
        ACK,
        1005,
        5005,
        512,
        &[],
        &[28, 4, 0x01, 0x2d, 99, 2, 253, 4, 1, 2, 1, 1],
    );
    o.raw(Server, ACK, 5005, 1005, 512, &[], &[1, 1, 8, 40]);
    o.raw(
        Client,
        ACK,
        1005,
        5005,
        512,
        &[],
        &[8, 6, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1],
    );
    o.raw(Client, ACK | PSH, 1005, 5005, 512, b"tso", &[]);
    o.frames.last_mut().unwrap().1[16..18].copy_from_slice(&[0, 0]);
    o.raw(Server, ACK | PSH, 5005, 1008, 512, b"cut", &[]);
    let f = &mut o.frames.last_mut().unwrap().1;
    let total = u16::from_be_bytes([f[16], f[17]]) + 100;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    add("options.pcap", &o, d);
    // Records whose header says fewer bytes on the wire than captured
    // (pypacker's cooked captures): tcpdump prints `[Invalid header: …]`
    // and nothing else for them, not even a stamp.
    let p = dir.path().join("invalid-header.pcap");
    http.write_pcap(&p, d);
    let mut bytes = std::fs::read(&p).unwrap();
    let mut at = 24;
    for record in 0.. {
        if at + 16 > bytes.len() {
            break;
        }
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        if record == 3 || record == 4 {
            bytes[at + 12..at + 16].copy_from_slice(&(caplen - 16).to_le_bytes());
        }
        at += 16 + caplen as usize;
    }
    std::fs::write(&p, bytes).unwrap();
    paths.push(p);
    paths
}

#[test]
fn timeline_lines_start_with_tcpdump_output() {
    if !tcpdump_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tcpdump is not installed, but CI must run this test"
        );
        eprintln!("skipped: tcpdump is not installed");
        return;
    }
    let dir = TempDir::new().unwrap();
    if let Some(keep) = std::env::var_os("KACAP_KEEP_PARITY") {
        for p in ethernet_fixtures(&dir) {
            std::fs::copy(&p, Path::new(&keep).join(p.file_name().unwrap())).unwrap();
        }
    }
    for path in ethernet_fixtures(&dir) {
        for flags in [
            &[][..],
            &["-q"],
            &["-e"],
            &["-e", "-q"],
            &["-v"],
            &["-vv"],
            &["-e", "-v"],
            &["-x"],
            &["-xx"],
            &["-X"],
            &["-XX"],
        ] {
            assert_parity(&path, flags);
        }
    }
}

/// `-e` on every link type kacap reads: loopback (BSD and OpenBSD), raw IP,
/// Linux cooked v1 and v2 (`-i any`), Ethernet with a VLAN tag; IPv4 and
/// IPv6.
#[test]
fn link_headers_match_tcpdump_on_every_link_type() {
    if !tcpdump_available() {
        assert!(std::env::var_os("CI").is_none());
        return;
    }
    let dir = TempDir::new().unwrap();
    for link in [
        Link::Null,
        Link::Loop,
        Link::Raw,
        Link::IpOnly,
        Link::Sll,
        Link::Sll2,
        Link::Vlan,
    ] {
        for (client, server) in [
            ("10.0.0.2:40000", "10.0.0.1:5432"),
            ("[2001:db8::2]:40000", "[2001:db8::1]:5432"),
        ] {
            let p = dir.path().join(format!("{link:?}-{}.pcap", client.len()));
            dead_peer(link, client, server, 1, 2).write_pcap(&p, PcapOpts::default());
            for flags in [&["-e"][..], &["-e", "-q"], &["-e", "-v"], &["-xx"]] {
                assert_parity(&p, flags);
            }
        }
    }
}
