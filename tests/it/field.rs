//! Field-shaped captures: started after the connection went idle (no
//! handshake, the silence began before the capture), real default timers
//! (Linux 7200 s / 75 s × 9, Windows 1-byte probes 1 s apart × 10), and a
//! busy link (hundreds of frames per second of other connections between
//! two probes). Crafted, since real time is too long for a test.

use crate::craft::*;
use crate::{Json, approx, json};
use serde_json::Value;
use std::path::PathBuf;
use tempfile::TempDir;

const T0: f64 = 1_700_000_000.0;
const CLIENT: &str = "10.0.0.2:51000";
const SERVER: &str = "10.0.0.1:5432";

fn write(dir: &TempDir, name: &str, frames: &[(f64, Vec<u8>)]) -> PathBuf {
    let path = dir.path().join(name);
    write_pcap(&path, 1, frames, PcapOpts::default());
    path
}

/// The records of the connection under test (the one to `SERVER`).
fn ours(j: &Json) -> (Vec<&Value>, &Value) {
    let packets = j
        .packets
        .iter()
        .filter(|p| p["dst"] == SERVER || p["src"] == SERVER)
        .collect();
    let flow = j.flows.iter().find(|f| f["server"] == SERVER).unwrap();
    (packets, flow)
}

/// A connection idle since long before the capture: its next sequence
/// numbers, no handshake.
fn mid_connection() -> Conn {
    let mut c = Conn::new(CLIENT, SERVER, Link::Ethernet);
    c.next = [0x8000_0000, 0x1234_5678];
    c.t = T0;
    c
}

#[test]
fn linux_defaults_dead_peer_seen_mid_connection_on_a_busy_link() {
    // Idle 7200 s, interval 75 s, 9 probes: the capture starts 7170 s into
    // the silence; 200 frames/s of other connections all along.
    let mut c = mid_connection();
    c.wait(30.0).probe(Client, 0);
    for _ in 1..9 {
        c.wait(75.0).probe(Client, 0);
    }
    c.wait(75.0).give_up(Client);
    let busy = busy_link(T0, 710.0, 200.0);
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "linux-dead.pcap", &merge(vec![c.frames, busy]));
    let j = json(&path, &[]);
    let (packets, flow) = ours(&j);
    let kinds: Vec<&str> = packets
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[..9], ["keepalive"; 9]);
    assert_eq!(kinds[9], "rst");
    let numbers: Vec<u64> = packets[..9]
        .iter()
        .map(|p| p["probe"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=9).collect::<Vec<_>>());
    // The silence before probe #1 began before the capture.
    assert_eq!(packets[0]["idle"], Value::Null);
    assert_eq!(flow["verdict"], "dead-peer");
    approx(&flow["keepalive"]["interval"], 75.0, 0.01);
    assert_eq!(flow["keepalive"]["count"], 9);
    assert_eq!(flow["keepalive"]["idle"], Value::Null);
    assert!(j.packets.len() > 100_000, "busy link: {}", j.packets.len());
}

#[test]
fn linux_default_idle_healthy_peer_seen_mid_connection() {
    // Two probes 7200 s apart, each answered; bursts of other traffic
    // (300 frames/s) around each probe.
    let mut c = mid_connection();
    c.wait(100.0)
        .probe(Client, 0)
        .seg(Server, ACK, &[])
        .wait(7200.0)
        .probe(Client, 0)
        .seg(Server, ACK, &[]);
    let busy = merge(vec![
        busy_link(T0 + 95.0, 10.0, 300.0),
        busy_link(T0 + 7295.0, 10.0, 300.0),
    ]);
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "linux-alive.pcap", &merge(vec![c.frames, busy]));
    let j = json(&path, &[]);
    let (packets, flow) = ours(&j);
    let kinds: Vec<&str> = packets
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["keepalive", "keepalive-ack", "keepalive", "keepalive-ack"]
    );
    assert_eq!(flow["verdict"], "alive");
    approx(&flow["keepalive"]["idle"], 7200.0, 0.01);
}

#[test]
fn windows_one_byte_probes_seen_mid_connection_on_a_busy_link() {
    // Windows: one garbage byte, 1 s apart, 10 probes, then the RST.
    let mut c = mid_connection();
    c.wait(5.0).probe(Client, 1);
    for _ in 1..10 {
        c.wait(1.0).probe(Client, 1);
    }
    c.wait(1.0).give_up(Client);
    let busy = busy_link(T0, 20.0, 500.0);
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "windows-dead.pcap", &merge(vec![c.frames, busy]));
    let j = json(&path, &[]);
    let (packets, flow) = ours(&j);
    let kinds: Vec<&str> = packets
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[..10], ["keepalive"; 10], "{kinds:?}");
    assert_eq!(kinds[10], "rst");
    assert_eq!(flow["verdict"], "dead-peer");
    approx(&flow["keepalive"]["interval"], 1.0, 0.01);
    assert_eq!(flow["keepalive"]["count"], 10);
}

#[test]
fn a_first_one_byte_segment_that_is_not_repeated_stays_data() {
    // One byte of new data mid-connection, answered, then other data:
    // nothing says it was a probe.
    let mut c = mid_connection();
    c.wait(1.0)
        .seg(Client, PSH | ACK, b"x")
        .seg(Server, ACK, &[])
        .wait(1.0)
        .exchange(Client, b"more");
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "one-byte-data.pcap", &c.frames);
    let j = json(&path, &[]);
    assert_eq!(j.kinds(), ["data", "ack", "data", "ack"]);
}

// Real kernel captures of the field cases (fixtures/make-fixtures.py, via
// `kacap lab … -w`).

use crate::{fixture, text};

#[test]
fn real_capture_started_after_the_connection_went_idle_dead_peer() {
    // TCP_KEEPIDLE 20, TCP_KEEPINTVL 15, TCP_KEEPCNT 2; tcpdump-like capture
    // started 5 s into the silence: no handshake, probes 15 s apart.
    let j = json(&fixture("idle-start-dead.pcap"), &[]);
    let kinds = j.kinds();
    assert_eq!(kinds[..3], ["keepalive", "keepalive", "rst"], "{kinds:?}");
    assert_eq!(j.packets[0]["probe"], 1);
    assert_eq!(j.packets[0]["idle"], Value::Null);
    assert_eq!(j.packets[1]["probe"], 2);
    let f = j.flow();
    assert_eq!(f["handshake"], "missing");
    assert_eq!(f["verdict"], "dead-peer");
    approx(&f["keepalive"]["interval"], 15.0, 0.2);
    assert_eq!(f["keepalive"]["count"], 2);
    let t = text(&["-r", fixture("idle-start-dead.pcap").to_str().unwrap()]);
    assert!(
        t.contains("keepalive probe #1 from client (idle since before the capture)"),
        "{t}"
    );
}

#[test]
fn real_capture_started_after_the_connection_went_idle_healthy() {
    let j = json(&fixture("idle-start-alive.pcap"), &[]);
    let kinds = j.kinds();
    assert_eq!(
        kinds[..4],
        ["keepalive", "keepalive-ack", "keepalive", "keepalive-ack"],
        "{kinds:?}"
    );
    let f = j.flow();
    assert_eq!(f["verdict"], "alive");
    approx(&f["keepalive"]["idle"], 5.0, 0.25);
    // The silence --explain tells of is the one before probe #2: probe #1's
    // began before the capture.
    let t = crate::text(&[
        "-r",
        fixture("idle-start-alive.pcap").to_str().unwrap(),
        "--explain",
        "--summary",
    ]);
    assert!(t.contains("it sent probe #2: an ACK"), "{t}");
}

#[test]
fn real_capture_probe_acks_dropped_before_the_probers_socket() {
    // SO_ATTACH_FILTER drop-all on the client (the prober): the server
    // answers every probe, the client never hears, probes one interval
    // apart and resets after TCP_KEEPCNT (2) of them.
    let j = json(&fixture("acks-dropped.pcap"), &[]);
    let f = j.flow();
    assert_eq!(f["verdict"], "acks-dropped");
    assert_eq!(f["probes"], 2);
    assert_eq!(f["probes_answered"], 2);
    approx(&f["keepalive"]["idle"], 2.0, 0.1);
    approx(&f["keepalive"]["interval"], 1.0, 0.1);
    assert_eq!(f["keepalive"]["count"], 2);
    let probes: Vec<&Value> = j
        .packets
        .iter()
        .filter(|p| p["kind"] == "keepalive")
        .collect();
    assert_eq!(probes.len(), 2);
    assert_eq!(
        probes[1]["probe"], 2,
        "the unheard answer continues the episode"
    );
    let t = text(&[
        "-r",
        fixture("acks-dropped.pcap").to_str().unwrap(),
        "--explain",
    ]);
    for needle in [
        "although #1 was answered: its TS ecr did not move",
        "2 probes in a row whose answers never reached the client",
        "acks-dropped",
        "iptables -L -v -n",
        "conntrack -S",
        "nstat -az TcpExtTCPKeepAlive",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

#[test]
fn real_capture_death_by_retransmission_on_loopback_is_not_a_middlebox() {
    // TCP_USER_TIMEOUT 2 s, server silenced, the client pauses 2 s and sends:
    // retransmissions with backoff, then silence (Linux sends no RST).
    let j = json(&fixture("retransmit-timeout.pcap"), &[]);
    let f = &j.flows[0];
    assert_eq!(f["verdict"], "retransmit-timeout");
    assert_eq!(f["idle_timeout"]["killed_after"], Value::Null);
    let r = &f["retransmit"];
    assert!(r["count"].as_u64().unwrap() >= 3, "{r}");
    assert!(r["gave_up_after"].as_f64().unwrap() > 1.0, "{r}");
    let t = text(&[
        "-r",
        fixture("retransmit-timeout.pcap").to_str().unwrap(),
        "--explain",
    ]);
    assert!(!t.contains("A middlebox toward"), "{t}");
    for needle in [
        "retransmit-timeout",
        "exponential backoff",
        "TCP_USER_TIMEOUT",
        "net.ipv4.tcp_retries2",
        "no middlebox is involved",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

/// `tcpdump -U -w - | kacap -r -` on an idle connection: each packet comes
/// out within about a second of reaching kacap (a pipe has a clock of its
/// own: the last frame's time plus the wall time since), and the probes
/// shown as ACKs are revised when the RST tells.
#[test]
fn a_pipe_streams_each_packet_in_time_and_revises_it_later() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut c = mid_connection();
    c.probe(Client, 0)
        .wait(75.0)
        .probe(Client, 0)
        .wait(75.0)
        .give_up(Client);
    let opts = PcapOpts::default();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kacap"))
        .args(["-r", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    stdin.write_all(&pcap_header(1, opts)).unwrap();
    let mut records = Vec::new();
    for (i, (t, frame)) in c.frames.iter().enumerate() {
        stdin.write_all(&pcap_record(*t, frame, opts)).unwrap();
        stdin.flush().unwrap();
        if i == 0 {
            // The first probe: shown within a second or so, as an ACK.
            let sent = Instant::now();
            let line = lines.next().unwrap().unwrap();
            assert!(
                sent.elapsed() < Duration::from_millis(2500),
                "{:?}",
                sent.elapsed()
            );
            let r: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(
                (r["type"].as_str(), r["kind"].as_str()),
                (Some("packet"), Some("ack"))
            );
            records.push(r);
        } else {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    drop(stdin);
    for line in lines {
        records.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    assert!(child.wait().unwrap().success());
    let revised: Vec<&Value> = records.iter().filter(|r| r["type"] == "revise").collect();
    assert_eq!(revised.len(), 2, "{records:?}");
    assert_eq!(
        (revised[0]["n"].as_u64(), revised[0]["probe"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (revised[1]["n"].as_u64(), revised[1]["probe"].as_u64()),
        (Some(2), Some(2))
    );
    let flow = records.iter().find(|r| r["type"] == "flow").unwrap();
    assert_eq!(flow["verdict"], "dead-peer");
    approx(&flow["keepalive"]["interval"], 75.0, 0.01);
}

/// `--stats-every`: while a pipe is read, the table so far goes to stderr
/// at that rhythm; stdout keeps its one table.
#[test]
fn stats_every_shows_the_table_so_far_on_stderr() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::Duration;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kacap"))
        .args(["-r", "-", "--stats-every", "0.3", "--color=never"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&std::fs::read(crate::fixture("dead-peer.pcap")).unwrap())
        .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let shown = err.matches("kacap: so far (").count();
    assert!((2..=8).contains(&shown), "{shown}: {err}");
    assert!(err.contains("┆ dead-peer"), "{err}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches('┌').count(), 1, "{text}");
}

/// `tcpdump -w - | kacap -r -`, then Ctrl-C: the table of what came, exit
/// 0, and no warning about an interrupted read.
#[test]
fn a_pipe_stopped_by_sigint_prints_the_table_without_a_warning() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::Duration;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kacap"))
        .args(["-r", "-", "--summary", "--color=never"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&std::fs::read(crate::fixture("dead-peer.pcap")).unwrap())
        .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: signalling our own child; the writer keeps the pipe open.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("warning"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("┆ dead-peer"), "{text}");
}

/// A capture that stops (or rotates) right after a lone probe cannot tell a
/// dead peer from an answer on its way: `undecided`, said plainly. The same
/// probe followed by more capture (other traffic going on) is a dead peer.
#[test]
fn a_lone_probe_at_the_very_end_of_the_capture_is_undecided() {
    let dir = TempDir::new().unwrap();
    let mut c = mid_connection();
    c.exchange(Client, b"ping").wait(7200.0).probe(Client, 0);
    let cut = write(&dir, "cut.pcap", &c.frames);
    let j = json(&cut, &[]);
    let (_, flow) = ours(&j);
    assert_eq!(flow["verdict"], "undecided", "{flow}");
    let t = crate::text(&["-r", cut.to_str().unwrap(), "--explain", "--summary"]);
    assert!(t.contains("too soon to tell"), "{t}");
    // Five more seconds of other traffic after the probe: no answer came.
    let busy = busy_link(T0, 7200.0 + 5.0, 20.0);
    let longer = write(&dir, "longer.pcap", &merge(vec![c.frames.clone(), busy]));
    let j = json(&longer, &[]);
    let (_, flow) = ours(&j);
    assert_eq!(flow["verdict"], "dead-peer", "{flow}");
}
