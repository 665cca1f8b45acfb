//! kacap's benchmark harness: writes a deterministic capture of many TCP
//! connections with keepalive traffic, then times kacap (`--summary`,
//! `--json`, the text timeline), a bare libpcap read loop (the floor), and
//! tcpdump / tshark when installed, all on the same file, and prints packets
//! per second, the ratio to the floor and peak RSS as a table.
//!
//! Run it with `bench/run.sh [--flows N] [--runs N] [--keep]` (see bench/README.md).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use kacap::craft::{self, ACK, FIN, PSH, RST, SYN};

/// A tiny deterministic PRNG (xorshift64*), so the capture is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One packet to write: time in microseconds, flow, direction and header fields.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pkt {
    t_us: u64,
    flow: u32,
    seq_in_flow: u16,
    from_server: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u16,
}

/// How each generated connection behaves after its data exchange.
enum Fate {
    /// Probes answered, then FIN.
    Alive,
    /// Probes unanswered, then the client's RST.
    Dead,
    /// The first probe answered by RST.
    Reset,
    /// No keepalive: data and FIN only.
    Plain,
}

/// All packets of flow `i`, in order.
fn flow_packets(i: u32, start_us: u64, rng: &mut Rng, out: &mut Vec<Pkt>) {
    let mut t = start_us;
    let mut n = 0u16;
    let (mut c_seq, mut s_seq) = (rng.next() as u32, rng.next() as u32);
    let mut push =
        |out: &mut Vec<Pkt>, t: u64, from_server: bool, flags: u8, seq: u32, ack: u32, len: u16| {
            out.push(Pkt {
                t_us: t,
                flow: i,
                seq_in_flow: n,
                from_server,
                flags,
                seq,
                ack,
                len,
            });
            n += 1;
        };
    let rtt = 200 + rng.below(2000);
    push(out, t, false, SYN, c_seq, 0, 0);
    c_seq = c_seq.wrapping_add(1);
    t += rtt / 2;
    push(out, t, true, SYN | ACK, s_seq, c_seq, 0);
    s_seq = s_seq.wrapping_add(1);
    t += rtt / 2;
    push(out, t, false, ACK, c_seq, s_seq, 0);
    // Requests and responses.
    for _ in 0..(5 + rng.below(6)) {
        t += 1000 + rng.below(50_000);
        let q = (50 + rng.below(400)) as u16;
        push(out, t, false, PSH | ACK, c_seq, s_seq, q);
        c_seq = c_seq.wrapping_add(u32::from(q));
        t += rtt / 2;
        let r = (300 + rng.below(1100)) as u16;
        push(out, t, true, PSH | ACK, s_seq, c_seq, r);
        s_seq = s_seq.wrapping_add(u32::from(r));
        t += rtt / 2;
        push(out, t, false, ACK, c_seq, s_seq, 0);
    }
    let fate = match rng.below(10) {
        0..=4 => Fate::Alive,
        5 | 6 => Fate::Dead,
        7 => Fate::Reset,
        _ => Fate::Plain,
    };
    let idle_us = (5 + rng.below(25)) * 1_000_000;
    let intvl_us = (1 + rng.below(5)) * 1_000_000;
    match fate {
        Fate::Alive => {
            for _ in 0..2 {
                t += idle_us;
                push(out, t, false, ACK, c_seq.wrapping_sub(1), s_seq, 0);
                t += rtt / 2;
                push(out, t, true, ACK, s_seq, c_seq, 0);
            }
            t += 1_000_000;
            push(out, t, false, FIN | ACK, c_seq, s_seq, 0);
            c_seq = c_seq.wrapping_add(1);
            t += rtt / 2;
            push(out, t, true, FIN | ACK, s_seq, c_seq, 0);
            t += rtt / 2;
            push(out, t, false, ACK, c_seq, s_seq.wrapping_add(1), 0);
        }
        Fate::Dead => {
            t += idle_us;
            for _ in 0..3 {
                push(out, t, false, ACK, c_seq.wrapping_sub(1), s_seq, 0);
                t += intvl_us;
            }
            push(out, t, false, RST | ACK, c_seq, s_seq, 0);
        }
        Fate::Reset => {
            t += idle_us;
            push(out, t, false, ACK, c_seq.wrapping_sub(1), s_seq, 0);
            t += rtt / 2;
            push(out, t, true, RST, s_seq, 0, 0);
        }
        Fate::Plain => {
            t += 1_000_000;
            push(out, t, true, FIN | ACK, s_seq, c_seq, 0);
            s_seq = s_seq.wrapping_add(1);
            t += rtt / 2;
            push(out, t, false, FIN | ACK, c_seq, s_seq, 0);
            t += rtt / 2;
            push(out, t, true, ACK, s_seq, c_seq.wrapping_add(1), 0);
        }
    }
}

/// Writes the capture: Ethernet + IPv4 + TCP with timestamps options, the
/// payload zero-filled. Flows start evenly over `spread_s` seconds.
fn generate(path: &Path, flows: u32, spread_s: u64) -> std::io::Result<(u64, u64)> {
    let mut rng = Rng(0x6b61_6361_7021);
    // Merge the flows' packet lists by time with a heap, flow by flow, so
    // memory stays at one list per started-but-unfinished flow.
    let mut lists: Vec<Vec<Pkt>> = Vec::with_capacity(flows as usize);
    for i in 0..flows {
        let start = u64::from(i) * spread_s * 1_000_000 / u64::from(flows.max(1));
        let mut v = Vec::new();
        flow_packets(i, start, &mut rng, &mut v);
        lists.push(v);
    }
    let mut heap: BinaryHeap<Reverse<(u64, u32, u16)>> = lists
        .iter()
        .enumerate()
        .map(|(i, v)| Reverse((v[0].t_us, i as u32, 0)))
        .collect();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(&craft::pcap_header(1, craft::PcapOpts::default()))?;
    let base_s = 1_700_000_000u64;
    let mut frame = vec![0u8; 14 + 20 + 32 + 1600];
    let (mut packets, mut bytes) = (0u64, 24u64);
    while let Some(Reverse((_, fi, k))) = heap.pop() {
        let p = lists[fi as usize][k as usize];
        if let Some(next) = lists[fi as usize].get(k as usize + 1) {
            heap.push(Reverse((next.t_us, fi, k + 1)));
        } else {
            lists[fi as usize] = Vec::new();
        }
        let client = [
            10,
            (p.flow >> 16) as u8 | 0x40,
            (p.flow >> 8) as u8,
            p.flow as u8,
        ];
        let server = [10, 0, 0, 1];
        let cport = 32768 + (p.flow % 28000) as u16;
        let sport = 5432u16;
        let (src, dst, sp, dp) = if p.from_server {
            (server, client, sport, cport)
        } else {
            (client, server, cport, sport)
        };
        let tcp_len = 32 + usize::from(p.len);
        let total = 20 + tcp_len;
        let f = &mut frame[..14 + total];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(p.seq_in_flow).to_be_bytes());
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let c = craft::checksum(&[ip]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let tcp = &mut f[34..34 + 32];
        tcp[0..2].copy_from_slice(&sp.to_be_bytes());
        tcp[2..4].copy_from_slice(&dp.to_be_bytes());
        tcp[4..8].copy_from_slice(&p.seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&p.ack.to_be_bytes());
        tcp[12] = 8 << 4;
        tcp[13] = p.flags;
        tcp[14..16].copy_from_slice(
            &(if p.flags & RST != 0 && p.flags & ACK == 0 {
                0u16
            } else {
                512
            })
            .to_be_bytes(),
        );
        tcp[16..20].copy_from_slice(&[0, 0, 0, 0]);
        tcp[20..24].copy_from_slice(&[1, 1, 8, 10]);
        tcp[24..28].copy_from_slice(&((p.t_us / 1000) as u32).to_be_bytes());
        tcp[28..32].copy_from_slice(&((p.t_us / 1000) as u32 ^ 0x5555).to_be_bytes());
        let ts_s = base_s + p.t_us / 1_000_000;
        let ts_us = p.t_us % 1_000_000;
        w.write_all(&(ts_s as u32).to_le_bytes())?;
        w.write_all(&(ts_us as u32).to_le_bytes())?;
        w.write_all(&((14 + total) as u32).to_le_bytes())?;
        w.write_all(&((14 + total) as u32).to_le_bytes())?;
        w.write_all(f)?;
        packets += 1;
        bytes += 16 + 14 + total as u64;
    }
    w.flush()?;
    Ok((packets, bytes))
}

/// The floor: count packets with a bare libpcap loop.
fn floor(path: &Path) -> u64 {
    let mut cap = pcap::Capture::from_file(path).expect("open capture");
    let mut n = 0u64;
    let mut bytes = 0u64;
    while let Ok(p) = cap.next_packet() {
        n += 1;
        bytes += u64::from(p.header.caplen);
    }
    std::hint::black_box(bytes);
    n
}

/// How the fast path could read a classic pcap file, bare: each record's
/// header and the first bytes of its frame touched (as a reader must, to
/// find the next record and its connection), read by `pread` into a
/// reused 256 KiB buffer (what `src/input/fastread.rs` does) or from a
/// `mmap` of the whole file (the zero-copy read #18 asked about). Prints
/// the records and a checksum; time it with `farm-bench`.
fn walk(path: &Path, mapped: bool) -> (u64, u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).expect("open capture");
    let size = file.metadata().expect("stat").len() as usize;
    let (mut n, mut sum) = (0u64, 0u64);
    let mut visit = |rec: &[u8]| -> Option<usize> {
        let caplen = u32::from_le_bytes(rec.get(8..12)?.try_into().ok()?) as usize;
        let frame = rec.get(16..16 + caplen)?;
        n += 1;
        sum += u64::from(*frame.get(23).unwrap_or(&0)) + u64::from(*frame.get(47).unwrap_or(&0));
        Some(16 + caplen)
    };
    if mapped {
        use std::os::fd::AsRawFd;
        // SAFETY: a private read-only mapping of a file nobody truncates
        // while the benchmark runs; unmapped before returning.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert!(map != libc::MAP_FAILED, "mmap failed");
        let bytes = unsafe { std::slice::from_raw_parts(map.cast::<u8>(), size) };
        let mut at = 24;
        while let Some(len) = visit(&bytes[at..]) {
            at += len;
        }
        unsafe { libc::munmap(map, size) };
    } else {
        let mut buf = vec![0u8; 256 << 10];
        let (mut start, mut end, mut base) = (24usize, 24usize, 0u64);
        loop {
            match visit(&buf[start..end]) {
                Some(len) => start += len,
                None => {
                    buf.copy_within(start..end, 0);
                    base += start as u64;
                    end -= start;
                    start = 0;
                    match file.read_at(&mut buf[end..], base + end as u64) {
                        Ok(0) | Err(_) => break,
                        Ok(got) => end += got,
                    }
                }
            }
        }
    }
    (n, sum)
}

struct Measure {
    secs: f64,
    max_rss_kib: i64,
    ok: bool,
}

/// Runs a command with stdout to /dev/null; wall time and peak RSS (wait4).
fn measure(cmd: &mut Command) -> Measure {
    let start = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let Ok(child) = child else {
        return Measure {
            secs: 0.0,
            max_rss_kib: 0,
            ok: false,
        };
    };
    let mut status = 0;
    // SAFETY: waiting for our own child with a zeroed rusage to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    Measure {
        secs: start.elapsed().as_secs_f64(),
        max_rss_kib: ru.ru_maxrss,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

fn best_of(runs: usize, mut make: impl FnMut() -> Command) -> Measure {
    let mut best: Option<Measure> = None;
    for _ in 0..runs {
        let m = measure(&mut make());
        if best.as_ref().is_none_or(|b| m.secs < b.secs) {
            best = Some(m);
        }
    }
    best.unwrap()
}

/// The CPU model and the date, for the table's caption.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}; {date}")
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--floor") {
        println!("{}", floor(Path::new(&args[2])));
        return;
    }
    if let Some(mode @ ("--walk-pread" | "--walk-mmap")) = args.get(1).map(String::as_str) {
        let (n, sum) = walk(Path::new(&args[2]), mode == "--walk-mmap");
        println!("{n} records, checksum {sum}");
        return;
    }
    if args.get(1).map(String::as_str) == Some("--generate") {
        // In a process of its own: the harness must stay small, or every
        // child it forks would start with (and report) its memory.
        let (packets, bytes) = generate(
            Path::new(&args[2]),
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
        )
        .expect("write capture");
        println!("{packets} {bytes}");
        return;
    }
    let get = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let flows = get("--flows", 100_000) as u32;
    let runs = get("--runs", 3) as usize;
    let spread = get("--spread", 600);
    let keep = args.iter().any(|a| a == "--keep");
    let slow = args.iter().any(|a| a == "--with-tcpdump");
    let me = std::env::current_exe().unwrap();
    let target = me.parent().unwrap().parent().unwrap().to_path_buf();
    let kacap = target.join("kacap");
    let path: PathBuf = target.join(format!("bench-{flows}.pcap"));
    let t = Instant::now();
    let (packets, bytes) = if keep && path.exists() {
        let n = floor(&path);
        (n, std::fs::metadata(&path).unwrap().len())
    } else {
        let out = Command::new(&me)
            .args([
                "--generate",
                path.to_str().unwrap(),
                &flows.to_string(),
                &spread.to_string(),
            ])
            .output()
            .expect("run the generator");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    eprintln!(
        "capture: {} ({packets} packets, {flows} flows, {:.2} GB), ready in {:.1}s",
        path.display(),
        bytes as f64 / 1e9,
        t.elapsed().as_secs_f64()
    );
    let p = path.to_str().unwrap().to_string();
    let mut rows: Vec<(String, Measure)> = Vec::new();
    let floor_m = best_of(runs, || {
        let mut c = Command::new(&me);
        c.args(["--floor", &p]);
        c
    });
    rows.push(("libpcap read loop (floor)".into(), floor_m));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all = format!("kacap --summary, default ({cores} cores)");
    for (name, extra) in [
        (
            "kacap --summary --threads 1",
            vec!["--summary", "--threads", "1"],
        ),
        (all.as_str(), vec!["--summary"]),
        (
            "kacap --summary --readers 2 (range readers)",
            vec!["--summary", "--readers", "2"],
        ),
        ("kacap --json --threads 1", vec!["--json", "--threads", "1"]),
        ("kacap --json, default threads", vec!["--json"]),
        (
            "kacap --json --readers 2 (range readers)",
            vec!["--json", "--readers", "2"],
        ),
        ("kacap (text timeline) --threads 1", vec!["--threads", "1"]),
        ("kacap (text timeline), default", vec![]),
    ] {
        let m = best_of(runs, || {
            let mut c = Command::new(&kacap);
            c.args(["-r", &p]).args(&extra).env("TZ", "UTC");
            c
        });
        rows.push((name.into(), m));
    }
    if have("tshark") {
        let m = best_of(1, || {
            let mut c = Command::new("tshark");
            c.args([
                "-n",
                "-r",
                &p,
                "-Y",
                "tcp.analysis.keep_alive || tcp.analysis.keep_alive_ack",
            ]);
            c
        });
        rows.push(("tshark -Y keep_alive".into(), m));
    }
    if slow && have("tcpdump") {
        let m = best_of(1, || {
            let mut c = Command::new("tcpdump");
            c.args(["-n", "-r", &p]);
            c
        });
        rows.push(("tcpdump -n -r".into(), m));
    }
    let floor_secs = rows[0].1.secs;
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::ASCII_MARKDOWN)
        .set_header(vec![
            "command",
            "seconds",
            "packets/s",
            "× floor",
            "peak RSS",
        ]);
    for (name, m) in &rows {
        table.add_row(vec![
            if m.ok {
                name.clone()
            } else {
                format!("{name} (FAILED)")
            },
            format!("{:.2}", m.secs),
            format!("{:.2} M", packets as f64 / m.secs / 1e6),
            format!("{:.2}", m.secs / floor_secs),
            format!("{:.1} MiB", m.max_rss_kib as f64 / 1024.0),
        ]);
    }
    println!("{table}");
    println!(
        "{packets} packets, {flows} flows, {:.2} GB; best of {runs} runs; {cores} cores; {}",
        bytes as f64 / 1e9,
        machine()
    );
    println!("Live capture under load (root): sudo bench/live.sh");
    if !keep {
        let _ = std::fs::remove_file(&path);
    }
}
