//! `--threads N` (`src/pipeline/shard/`): one file analyzed on N shards gives what
//! one analyzer gives — the text timeline and the summary table byte for
//! byte, JSON packet
//! records in capture order with the connections reported between them,
//! every JSON flow record and Zeek log line (in another order), the same
//! status and messages — on every fixture and on field-shaped crafted captures: many
//! connections on a busy link, captures started mid-connection (the shared
//! lookahead pass), a 4-tuple reused, a stamp years off (the shared clock),
//! connections expiring in the middle (the shared sweep), non-TCP frames, a
//! filter, `-c`, and a file cut in the middle of a record — read by one
//! reader and by range readers (`--readers`), with payloads that look like
//! pcap records.

use crate::craft::*;
use crate::kacap;
use std::path::Path;
use tempfile::TempDir;

/// The seed of the shard choice in these runs, so that tests can place
/// connections on given shards (`shard`); any seed gives the same output.
const SHARD_SEED: u64 = 7;

fn run(path: &Path, args: &[&str], threads: u32) -> (Option<i32>, String, String) {
    run_ranged(path, args, threads, None)
}

/// `run`, the file read by range readers (`--readers N`, ranges of so
/// many bytes) when `ranged` says.
fn run_ranged(
    path: &Path,
    args: &[&str],
    threads: u32,
    ranged: Option<(u32, u64)>,
) -> (Option<i32>, String, String) {
    let mut cmd = kacap();
    if let Some((readers, bytes)) = ranged {
        cmd.env("KACAP_RANGE_BYTES", bytes.to_string())
            .args(["--readers", &readers.to_string()]);
    }
    let out = cmd
        .env("KACAP_SHARD_SEED", SHARD_SEED.to_string())
        .arg("-r")
        .arg(path)
        .args(args)
        .arg("--threads")
        .arg(threads.to_string())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Lines in a canonical order (flow records come as connections end) —
/// but the table and the summary record stay where they are.
fn canonical(args: &[&str], out: &str) -> String {
    if !args.contains(&"--json") && !args.contains(&"--log-format") {
        // The text timeline and the table: byte for byte.
        return out.to_string();
    }
    if args.contains(&"--json") && !args.contains(&"--summary") {
        // Packet records in capture order, exactly; connections reported
        // at the same point (one sweep, the end) in any order among
        // themselves.
        let mut out_lines: Vec<&str> = Vec::new();
        let mut run: Vec<&str> = Vec::new();
        for l in out.lines() {
            if l.starts_with("{\"type\":\"flow\"") {
                run.push(l);
            } else {
                run.sort_unstable();
                out_lines.append(&mut run);
                out_lines.push(l);
            }
        }
        run.sort_unstable();
        out_lines.append(&mut run);
        return out_lines.join("\n");
    }
    // Connection records only (`--summary`, Zeek logs): in one thread's
    // order exactly, those still open at the end too.
    out.lines()
        // Zeek's header says when the log was opened.
        .filter(|l| !l.starts_with("#open") && !l.starts_with("#close"))
        .collect::<Vec<_>>()
        .join("\n")
}

const FLAGS: [&[&str]; 9] = [
    &[],
    &["-ttt", "-S", "-v"],
    &["-x", "--color", "always", "-ttttt", "--nano"],
    &["--summary"],
    &["--json", "--summary"],
    &["--log-format", "zeek-json"],
    &["--summary", "--wide", "tcp"],
    &["--json"],
    &["--json", "-v", "--nano"],
];

fn same(path: &Path, args: &[&str]) {
    let one = run(path, args, 1);
    {
        // The same bytes from run to run, however the threads are
        // scheduled (but Zeek's header stamps).
        let (a, b) = (run(path, args, 2), run(path, args, 2));
        let (a, b) = (canonical(args, &a.1), canonical(args, &b.1));
        assert!(
            a == b,
            "{} {args:?}: two runs on 2 threads differ",
            path.display()
        );
    }
    // One reader, and range readers with a range boundary every few
    // records (each range proven where the one before ended, or parsed
    // again: `input::ranges`).
    for (n, ranged) in [
        (2, None),
        (3, None),
        (3, Some((3, 300))),
        (2, Some((2, 4096))),
    ] {
        let many = run_ranged(path, args, n, ranged);
        let what = format!(
            "{} {args:?} --threads {n}, range readers {ranged:?}",
            path.display()
        );
        assert_eq!(one.0, many.0, "{what}: exit status");
        assert_eq!(one.2, many.2, "{what}: stderr");
        assert!(
            canonical(args, &one.1) == canonical(args, &many.1),
            "{what}: output differs\none thread:\n{}\n{n} threads:\n{}",
            one.1,
            many.1
        );
    }
}

#[test]
fn every_fixture_gives_what_one_thread_gives() {
    for f in &crate::all_fixtures() {
        for flags in FLAGS {
            same(f, flags);
        }
    }
}

const T0: f64 = 1_700_000_000.0;

/// A connection seen mid-connection (no handshake, idle since before the
/// capture) probing with Linux's defaults into a dead peer.
fn dead_mid_connection(client: &str, server: &str, start: f64) -> Vec<(f64, Vec<u8>)> {
    let mut c = Conn::new(client, server, Link::Ethernet);
    c.next = [0x8000_0000, 0x1234_5678];
    c.t = start;
    c.wait(30.0).probe(Dir::Client, 0);
    for _ in 1..9 {
        c.wait(75.0).probe(Dir::Client, 0);
    }
    c.wait(75.0).give_up(Dir::Client);
    c.frames
}

/// A healthy mid-connection keepalive (answered probes), Windows-style.
fn windows_alive(client: &str, server: &str, start: f64) -> Vec<(f64, Vec<u8>)> {
    let mut c = Conn::new(client, server, Link::Ethernet);
    c.next = [0x1000, 0x2000];
    c.t = start;
    for _ in 0..4 {
        c.wait(60.0).probe(Dir::Client, 1);
        c.seg(Dir::Server, ACK, &[]);
    }
    c.frames
}

/// The same 4-tuple twice: a connection reset, then a new one on it.
fn reused(client: &str, server: &str, start: f64) -> Vec<(f64, Vec<u8>)> {
    let mut c = Conn::new(client, server, Link::Ethernet);
    c.t = start;
    c.handshake(100, 200).exchange(Dir::Client, b"hello");
    c.seg(Dir::Client, RST | ACK, &[]);
    c.wait(5.0)
        .handshake(9000, 9100)
        .exchange(Dir::Client, b"again");
    c.wait(20.0).probe(Dir::Client, 0);
    c.frames
}

fn field_capture() -> Vec<(f64, Vec<u8>)> {
    let mut parts = vec![busy_link(T0, 760.0, 150.0)];
    for i in 0..12 {
        parts.push(dead_mid_connection(
            &format!("10.1.0.{}:{}", i + 1, 40000 + i),
            "10.0.0.1:5432",
            T0 + f64::from(i) * 3.0,
        ));
        parts.push(windows_alive(
            &format!("10.2.0.{}:{}", i + 1, 50000 + i),
            "10.0.0.2:1433",
            T0 + f64::from(i),
        ));
        parts.push(reused(
            &format!("10.3.0.{}:{}", i + 1, 41000 + i),
            "10.0.0.3:6379",
            T0 + 100.0 + f64::from(i) * 40.0,
        ));
    }
    let mut all = merge(parts);
    // A stamp years ahead, and a frame that is not IP, in the middle.
    let mid = all.len() / 2;
    let (t, f) = all[mid].clone();
    all.insert(mid, (t + 3.0e8, f));
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.resize(60, 0);
    all.insert(mid + 10, (t, arp));
    all
}

#[test]
fn a_busy_field_capture_gives_what_one_thread_gives() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("field.pcap");
    write_pcap(&path, 1, &field_capture(), PcapOpts::default());
    for flags in FLAGS {
        same(&path, flags);
    }
    same(&path, &["--summary", "-c", "5000"]);
    // Connections forgotten while the capture goes on (reported at the
    // sweep, with the clock then), and finished ones lingering.
    same(
        &path,
        &[
            "--json",
            "--summary",
            "--idle-timeout",
            "100",
            "--linger",
            "2",
        ],
    );
    same(
        &path,
        &["--json", "--summary", "port", "5432", "or", "port", "1433"],
    );
    // The capture is what it is meant to be: dead peers found mid-connection.
    let (_, out, _) = run(&path, &["--json", "--summary"], 2);
    let dead = out.matches("\"verdict\":\"dead-peer\"").count();
    assert!(dead >= 12, "{dead} dead peers:\n{out}");
}

#[test]
fn a_cut_file_gives_what_one_thread_gives() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("cut.pcap");
    write_pcap(&path, 1, &field_capture(), PcapOpts::default());
    let bytes = std::fs::read(&path).unwrap();
    // In the middle of a record, two thirds in.
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    for flags in FLAGS {
        same(&path, flags);
    }
}

#[test]
fn a_connection_forgotten_while_its_shard_is_quiet_is_reported_as_one_thread_does() {
    // Few connections: most shards see nothing for minutes while another
    // keeps the clock moving; the quiet ones still expire on time.
    let mut parts = vec![busy_link(T0, 900.0, 2.0)];
    for i in 0..3 {
        let mut c = Conn::new(
            &format!("10.4.0.{}:{}", i + 1, 42000 + i),
            "10.0.0.4:5432",
            Link::Ethernet,
        );
        c.next = [0x10, 0x20];
        c.t = T0 + f64::from(i);
        c.wait(10.0).probe(Dir::Client, 0);
        c.wait(30.0).probe(Dir::Client, 0);
        parts.push(c.frames);
    }
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("quiet.pcap");
    write_pcap(&path, 1, &merge(parts), PcapOpts::default());
    for flags in FLAGS {
        same(&path, flags);
    }
    same(&path, &["--json", "--summary", "--idle-timeout", "120"]);
    same(&path, &["--json", "--idle-timeout", "120", "--linger", "1"]);
}

#[test]
fn thousands_of_connections_still_open_at_the_end_come_as_one_thread_reports_them() {
    // 6,000 connections within the linger at the end: each shard reports
    // its own in several chunks, which must not overtake each other.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("many-open.pcap");
    write_pcap(&path, 1, &busy_link(T0, 30.0, 2000.0), PcapOpts::default());
    same(&path, &["--json"]);
    same(&path, &["--summary"]);
    same(&path, &["-tttt"]);
    let one = run(&path, &["--json"], 1).1;
    let two = run(&path, &["--json"], 2).1;
    assert!(
        one == two,
        "--json: not byte for byte what one thread writes"
    );
}

#[test]
fn merged_and_compressed_inputs_give_what_one_thread_gives() {
    // `--merge` (several files as one capture: frames copied, not shared)
    // and a gzip-compressed file (read through a pipe from a decompressing
    // thread, with a lookahead pass of its own).
    let fx = |n: &str| crate::fixture(n).display().to_string();
    let dir = TempDir::new().unwrap();
    let gz = dir.path().join("idle-start-dead.pcap.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c '{}' > '{}'",
            fx("idle-start-dead.pcap"),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let merged = [
        "--merge",
        &fx("dead-peer.pcap"),
        &fx("idle-mixed.pcap"),
        &fx("http.pcap"),
    ];
    for flags in FLAGS {
        let out = |threads: &str, input: &[&str]| {
            let o = kacap()
                .args(input)
                .args(flags)
                .args(["--threads", threads])
                .output()
                .unwrap();
            (
                o.status.code(),
                String::from_utf8(o.stdout).unwrap(),
                o.stderr,
            )
        };
        for input in [&merged[..], &["-r", gz.to_str().unwrap()][..]] {
            let (one, two) = (out("1", input), out("2", input));
            assert_eq!(one.0, two.0, "{input:?} {flags:?}: status");
            assert_eq!(one.2, two.2, "{input:?} {flags:?}: stderr");
            assert!(
                canonical(flags, &one.1) == canonical(flags, &two.1),
                "{input:?} {flags:?}: output differs"
            );
        }
    }
}

#[test]
fn sigusr1_on_several_threads_says_how_far_the_reading_got_and_changes_nothing() {
    use std::io::{BufRead, Read};
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("long.pcap");
    write_pcap(&path, 1, &busy_link(T0, 60.0, 2000.0), PcapOpts::default());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kacap"))
        .arg("-r")
        .arg(&path)
        .args(["--threads", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A first timeline line: the handler is in place and the reading has
    // begun; the pipe, unread, soon holds the reader back mid-file.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    out.read_line(&mut text).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    out.read_to_string(&mut text).unwrap();
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    assert!(
        err.contains("kacap: so far: ") && err.contains("frames read"),
        "{err}"
    );
    let one = run(&path, &[], 1);
    assert!(one.1 == text, "the timeline differs from one thread's");
}

#[test]
fn a_connection_alone_on_its_shard_expires_when_one_thread_expires_it() {
    // A goes quiet and must be forgotten after --idle-timeout while B, on
    // another shard, keeps the clock moving: A's shard sees no frame after
    // A's last, so only the reader's sweep can expire it in time (without
    // the sweep it would be reported at the end, its record in another
    // place among the packet records).
    let mut b = Conn::new("10.5.0.2:41000", "10.0.0.5:5432", Link::Ethernet);
    b.t = T0;
    b.handshake(100, 200);
    let mut a = (0..1000)
        .map(|p| {
            let mut a = Conn::new(
                &format!("10.5.0.1:{}", 42000 + p),
                "10.0.0.5:6379",
                Link::Ethernet,
            );
            a.t = T0;
            a.handshake(300, 400);
            a
        })
        .find(|a| (2..=3).all(|n| shard(a, n) != shard(&b, n)))
        .expect("some port puts A on another shard than B");
    a.wait(1.0).exchange(Dir::Client, b"PING\r\n");
    for _ in 0..150 {
        b.wait(2.0).exchange(Dir::Client, b"SELECT 1");
    }
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("alone.pcap");
    write_pcap(
        &path,
        1,
        &merge(vec![a.frames, b.frames]),
        PcapOpts::default(),
    );
    same(&path, &["--json", "--idle-timeout", "100"]);
    same(&path, &["--idle-timeout", "100", "-tttt"]);
}

/// Where a connection's first frame lands among `n` shards.
fn shard(c: &Conn, n: usize) -> usize {
    let seg = kacap::core::decode::decode(kacap::core::decode::LinkType::Ethernet, &c.frames[0].1)
        .unwrap();
    let state = kacap::core::keyed::KeyedState::with_seed(SHARD_SEED);
    kacap::pipeline::shard::shard_of_keyed(&seg, n, &state)
}

/// A connection from `client_ip` (some port) to `server` whose first frame
/// lands on another shard than `other`'s, for 2 and 3 shards.
fn elsewhere(client_ip: &str, server: &str, other: &Conn) -> Conn {
    (0..1000)
        .map(|p| {
            let mut c = Conn::new(
                &format!("{client_ip}:{}", 43000 + p),
                server,
                Link::Ethernet,
            );
            c.t = T0;
            c.handshake(500, 600);
            c
        })
        .find(|c| (2..=3).all(|n| shard(c, n) != shard(other, n)))
        .expect("some port puts it on another shard")
}

#[test]
fn a_connection_that_lingers_longer_holds_back_no_other() {
    // Found by the `threads` fuzz target. A finished connection waits
    // `--linger` (60 s) for late segments, one whose FIN is still
    // unacknowledged 130 s; C finishes after A's first 60 s. C must be
    // reported when its own linger ends, whichever connections share its
    // table: one thread once queued C behind A and reported it only after
    // A, a shard without A reported it 9 s earlier.
    let mut a = Conn::new("10.6.0.1:41000", "10.0.0.6:5432", Link::Ethernet);
    a.t = T0;
    a.handshake(100, 200).exchange(Dir::Client, b"Q");
    a.seg(Dir::Client, FIN | ACK, &[])
        .seg(Dir::Server, FIN | ACK, &[]);
    let mut c = elsewhere("10.6.0.2", "10.0.0.6:5432", &a);
    c.wait(62.0).seg(Dir::Client, FIN | ACK, &[]);
    c.seg(Dir::Server, FIN | ACK, &[])
        .seg(Dir::Client, ACK, &[]);
    let mut b = Conn::new("10.6.0.3:41000", "10.0.0.6:6379", Link::Ethernet);
    b.t = T0;
    b.handshake(300, 400);
    for _ in 0..120 {
        b.wait(2.0).exchange(Dir::Client, b"PING\r\n");
    }
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("orphan.pcap");
    let frames = merge(vec![a.frames, b.frames, c.frames]);
    write_pcap(&path, 1, &frames, PcapOpts::default());
    same(&path, &["--json"]);
    same(&path, &["-tttt"]);

    // The same with A's last FIN stamped 48 days late (a flipped bit): the
    // clock does not follow it, so neither does A's place in the queue.
    let mut a = Conn::new("10.7.0.1:41000", "10.0.0.7:5432", Link::Ethernet);
    a.t = T0;
    a.handshake(100, 200).exchange(Dir::Client, b"Q");
    a.wait(5.0).seg(Dir::Client, FIN | ACK, &[]);
    a.seg(Dir::Server, FIN | ACK, &[])
        .seg(Dir::Client, ACK, &[]);
    let late = a.frames.len() - 1;
    a.frames[late].0 += 4_194_304.0;
    let mut c = elsewhere("10.7.0.2", "10.0.0.7:5432", &a);
    c.wait(1.0).seg(Dir::Client, FIN | ACK, &[]);
    c.seg(Dir::Server, FIN | ACK, &[])
        .seg(Dir::Client, ACK, &[]);
    let mut b = Conn::new("10.7.0.3:41000", "10.0.0.7:6379", Link::Ethernet);
    b.t = T0;
    b.handshake(300, 400);
    for _ in 0..40 {
        b.wait(2.0).exchange(Dir::Client, b"PING\r\n");
    }
    // In capture order, the late stamp where the frame was captured.
    let mut frames = merge(vec![a.frames[..late].to_vec(), b.frames, c.frames]);
    let at = frames.partition_point(|f| f.0 <= T0 + 5.1);
    frames.insert(at, a.frames[late].clone());
    let path = dir.path().join("late-stamp.pcap");
    write_pcap(&path, 1, &frames, PcapOpts::default());
    same(&path, &["--json"]);
}

/// Payloads made of what looks like pcap record headers (a chain of
/// plausible ones after every range boundary) fool the range readers'
/// guess of where records start; each such range is parsed again from
/// where the one before ended, and the output is one reader's.
#[test]
fn payloads_that_look_like_pcap_records_change_nothing_with_range_readers() {
    let mut fake = Vec::new();
    for i in 0..60u32 {
        for w in [1_700_000_000 + i, 0, 4, 4, 0] {
            fake.extend_from_slice(&w.to_le_bytes());
        }
    }
    let mut c = Conn::new("10.9.0.1:40000", "10.9.0.2:5432", Link::Ethernet);
    c.t = T0;
    c.handshake(100, 200);
    for _ in 0..40 {
        c.exchange(Dir::Client, &fake[..1200]);
        c.wait(0.5).exchange(Dir::Server, &fake[7..1000]);
    }
    c.wait(60.0).probe(Dir::Client, 0);
    c.seg(Dir::Server, ACK, &[]);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("fake-records.pcap");
    write_pcap(
        &path,
        1,
        &merge(vec![c.frames, busy_link(T0, 30.0, 50.0)]),
        PcapOpts::default(),
    );
    for flags in [&["--json"][..], &["-v"], &["--summary"]] {
        let one = run(&path, flags, 1);
        for bytes in [97, 300, 1024, 5000] {
            let many = run_ranged(&path, flags, 3, Some((3, bytes)));
            assert_eq!(one.0, many.0, "{flags:?} ranges of {bytes}: status");
            assert!(
                canonical(flags, &one.1) == canonical(flags, &many.1),
                "{flags:?} ranges of {bytes}: output differs"
            );
        }
    }
}
