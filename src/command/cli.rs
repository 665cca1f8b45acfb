//! The command line, tcpdump-style.

use crate::core::flows::Options;
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  sudo kacap -i lo port 2333                    watch keepalive live on loopback
  sudo kacap -i any --json tcp port 5432 | jq . live JSON Lines
  sudo kacap -i eth0 -w ka.pcap port 6379       analyze and keep the packets
  kacap -D                                      list interfaces
  sudo kacap lab dead-peer                      the walkthrough, live, in 5 seconds
  sudo kacap sockets port 5432                  which sockets have keepalive on, and why
  sudo kacap --netns $(pidof envoy) sockets     a container's sockets and sysctls
  sudo kacap -i any --summary --metrics 127.0.0.1:9733 Prometheus metrics, this host only
  kacap -r capture.pcap --log-format zeek        a Zeek log (zeek-cut) with Community IDs
  kacap -r capture.pcap --summary --parquet c.parquet   a row per connection, for DuckDB/Spark
  kacap -r fixtures/dead-peer.pcap              annotated timeline + flow table
  kacap -r capture.pcapng tcp port 5432          only PostgreSQL connections
  kacap -r capture.pcap --summary                the flow table only
  kacap -r 'caps/*.pcap' --summary               many files in parallel
  kacap -r capture.pcap --json | jq 'select(.kind==\"keepalive\")'
  tcpdump -i any -w - port 6379 | kacap -r -     analyze while tcpdump captures
  kill -USR1 $(pidof kacap)                      the table so far, on stderr

Live capture needs privileges: sudo, or once
  sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v kacap)\"
Ctrl-C stops it: the flow table and the packet counts are printed, -w is closed.

Exit status: 0 success (also when the output pipe closes), 1 output error
(stdout or the -w file) or a lab scenario that failed, 2 bad usage, an
unreadable capture, a live capture that cannot start, or a network
namespace (--netns) or socket table that cannot be read, 130/143 a file
whose reading Ctrl-C/SIGTERM cut short (a partial analysis).";

/// Packet-level TCP keepalive analyzer: reads a capture, rebuilds every TCP
/// connection, labels keepalive probes, their ACKs and RSTs, infers
/// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT and says whether the peer is alive.
#[derive(Debug, Parser)]
#[command(
    name = "kacap",
    version,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Read packets from FILE (pcap or pcapng; `-` for stdin). Repeat it, or
    /// give a directory or a quoted glob ('caps/*.pcap'), to analyze several
    /// files in parallel on all cores; their output comes in the order given.
    #[arg(short = 'r', value_name = "FILE", conflicts_with = "interface",
          required_unless_present_any = ["interface", "list_interfaces"],
          action = ArgAction::Append)]
    pub read: Vec<PathBuf>,

    /// Read the -r files as one capture, packets in time order (as
    /// mergecap): the pieces of a rotated capture (tcpdump -C, -G, -W), so
    /// that a connection spanning files is one connection.
    #[arg(long, requires = "read")]
    pub merge: bool,

    /// Capture live on IFACE (lo, any, eth0, …).
    #[arg(short = 'i', value_name = "IFACE")]
    pub interface: Option<String>,

    /// Live: serve Prometheus metrics on ADDR:PORT (GET /metrics):
    /// connections by verdict, probes, time to detect a dead peer, inferred
    /// timers and middlebox bounds per server, capture counters. For kacap
    /// as a long-running monitor (a systemd unit, a DaemonSet). With
    /// `kacap watch`: connection ends by cause, from the kernel.
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub metrics: Option<std::net::SocketAddr>,

    /// Live: join this host's socket table to the capture — each
    /// connection's owning process and its keepalive configuration (as
    /// `kacap sockets` shows it) on its first line, in the table and the
    /// JSON flow record, checked against what the packets show. Keeps root
    /// unless -Z is given (reading other processes' sockets needs it).
    #[arg(long, requires = "interface")]
    pub sockets: bool,

    /// Live captures and `kacap lab` (root): the kernel's own account of
    /// each connection's end (its tracepoints, as `kacap watch` reads
    /// them) beside the packet verdict, and whether they agree.
    #[arg(long, global = true)]
    pub kernel: bool,

    /// Enter a network namespace first (root): a named one (ip netns add
    /// NAME), a process's (a container's or a pod's: its PID), or a
    /// bind-mounted PATH. For -i and `kacap sockets`.
    #[arg(long, value_name = "NAME|PID|PATH", global = true)]
    pub netns: Option<String>,

    /// List the interfaces kacap can capture on, as tcpdump -D.
    #[arg(short = 'D', long = "list-interfaces")]
    pub list_interfaces: bool,

    /// Also write the raw packets to FILE (pcap), to replay with -r.
    #[arg(short = 'w', value_name = "FILE", global = true)]
    pub write: Option<PathBuf>,

    /// Stop after COUNT packets.
    #[arg(short = 'c', value_name = "COUNT")]
    pub count: Option<u64>,

    /// Live: capture at most SNAPLEN bytes of each packet (0: 262144, the
    /// default; headers are what kacap needs).
    #[arg(short = 's', value_name = "SNAPLEN", value_parser = clap::value_parser!(u32).range(0..=262_144))]
    pub snaplen: Option<u32>,

    /// Live: the kernel buffer, in KiB (default 16384; libpcap's is 2 MiB).
    #[arg(short = 'B', value_name = "BUFFER_KIB", value_parser = clap::value_parser!(u32).range(1..=4_194_304))]
    pub buffer_kib: Option<u32>,

    /// Live: only packets received (in), sent (out), or both (inout).
    #[arg(short = 'Q', value_enum, value_name = "DIRECTION")]
    pub direction: Option<Direction>,

    /// Live: after opening the capture (and the -w and SVG files), become
    /// USER and drop every capability, as tcpdump -Z (default: nobody; -Z
    /// root keeps root).
    #[arg(short = 'Z', value_name = "USER")]
    pub run_as: Option<String>,

    /// Flush every output line (as tcpdump -l; live captures and pipes
    /// always do).
    #[arg(short = 'l', global = true)]
    pub line_buffered: bool,

    /// Don't put the interface into promiscuous mode (accepted for tcpdump
    /// habits: kacap never does).
    #[arg(short = 'p')]
    pub no_promiscuous: bool,

    /// Read the filter expression from FILE (as tcpdump -F; `#` starts a
    /// comment to the end of the line).
    #[arg(short = 'F', value_name = "FILE")]
    pub filter_file: Option<PathBuf>,

    /// Output JSON Lines (one record per packet, per flow, and a summary).
    #[arg(long, global = true, conflicts_with_all = ["explain", "diagram", "quiet", "link_header", "hex", "hex_ascii", "ascii"])]
    pub json: bool,

    /// One record per connection as a Zeek log (kacap.log): `zeek` (TSV
    /// with #fields/#types headers, for zeek-cut) or `zeek-json`; each with
    /// its Community ID, to join Zeek's conn.log, Suricata or Arkime.
    #[arg(long, value_enum, value_name = "FORMAT", global = true,
          conflicts_with_all = ["json", "explain", "diagram", "diagram_svg", "quiet", "verbose", "link_header", "hex", "hex_ascii", "ascii"])]
    pub log_format: Option<LogFormat>,

    /// Print only the flow table (with --json: only flow and summary records).
    #[arg(long, global = true)]
    pub summary: bool,

    /// After the timeline, explain each connection in plain words (with its diagram).
    #[arg(long, global = true)]
    pub explain: bool,

    /// After the timeline, draw a sequence diagram of each connection.
    #[arg(long, global = true)]
    pub diagram: bool,

    /// Also write the sequence diagrams as an SVG file (open it in a browser).
    #[arg(long, value_name = "FILE", global = true)]
    pub diagram_svg: Option<PathBuf>,

    /// Also write a report as one self-contained HTML file (no network):
    /// counts by verdict, every connection as a lane on one zoomable time
    /// axis, a sortable table, each connection's explanation and sequence
    /// diagram a click away. Written when the analysis ends.
    #[arg(long, value_name = "FILE", global = true)]
    pub html: Option<PathBuf>,

    /// Also write one row per connection to a Parquet file (typed columns:
    /// times, endpoints, community ID, verdict, probes, inferred settings,
    /// HTTP and application keepalive fields), for DuckDB, ClickHouse,
    /// Spark or Trino over many captures' files. Written as connections
    /// end; closed when the analysis ends.
    #[arg(long, value_name = "FILE", global = true)]
    pub parquet: Option<PathBuf>,

    /// Also write the capture again as pcapng with kacap's words as packet
    /// comments, for Wireshark (`frame.comment contains "keepalive probe"`):
    /// every frame, the timeline's words on each TCP segment, the verdict
    /// and inferred settings on each connection's last frame. Written when
    /// the analysis ends.
    #[arg(long, value_name = "FILE", global = true)]
    pub annotate: Option<PathBuf>,

    /// Timestamp format, as tcpdump: -t none, -tt epoch, -ttt delta from the
    /// previous line, -tttt date and time, -ttttt delta from the first packet.
    #[arg(short = 't', action = ArgAction::Count, global = true)]
    pub t: u8,

    /// Quick output, as tcpdump -q: time, endpoints and `tcp LENGTH`, then
    /// what the segment is.
    #[arg(short = 'q', global = true)]
    pub quiet: bool,

    /// Verbose, as tcpdump -v: the IP header's fields (ttl, id, flags,
    /// length) and the TCP checksum; -vv also the sequence number of every
    /// segment. With --json: every packet record carries its connection's
    /// Community ID.
    #[arg(short = 'v', action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Print the link-level header (MAC addresses, ethertype, VLAN tags,
    /// cooked header), as tcpdump -e.
    #[arg(short = 'e', global = true)]
    pub link_header: bool,

    /// After each line, the packet in hex from the IP header on, as tcpdump
    /// -x (-xx: from the link-level header).
    #[arg(short = 'x', action = ArgAction::Count, global = true)]
    pub hex: u8,

    /// After each line, the packet in hex and ASCII, as tcpdump -X (-XX:
    /// from the link-level header).
    #[arg(short = 'X', action = ArgAction::Count, global = true)]
    pub hex_ascii: u8,

    /// After each line, the packet in ASCII, as tcpdump -A (-AA: from the
    /// link-level header).
    #[arg(short = 'A', action = ArgAction::Count, global = true)]
    pub ascii: u8,

    /// Print absolute TCP sequence numbers (as tcpdump -S).
    #[arg(short = 'S', long = "absolute-tcp-sequence-numbers", global = true)]
    pub absolute: bool,

    /// Don't convert addresses to names (always the case; accepted for tcpdump habits).
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,

    /// Print timestamps with nanosecond precision.
    #[arg(long, global = true)]
    pub nano: bool,

    /// Timestamp precision, as tcpdump --time-stamp-precision: micro (the
    /// default) or nano (as --nano).
    #[arg(
        long = "time-stamp-precision",
        value_enum,
        value_name = "PRECISION",
        global = true
    )]
    pub precision: Option<Precision>,

    /// Lines and table at their full width even on a terminal (by default,
    /// on a terminal, the table fits its width and a packet's words go on
    /// their own line when the line would wrap; pipes always get full width).
    #[arg(long, global = true)]
    pub wide: bool,

    /// When to color the output (auto: only on a terminal, and not when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", global = true)]
    pub color: ColorChoice,

    /// Analyze one capture file on N analyzer threads beside one reader
    /// (0 or unset: two per core, at most 8; one on a single core).
    /// Used for the summary table, the text timeline written to a file or
    /// a pipe, `--json` (packet records in capture order) and Zeek logs;
    /// results are those of one thread. A timeline on a terminal (folded to
    /// its width), --explain and --html use one. Several files are already
    /// analyzed in parallel, one thread each.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: Option<u16>,

    /// With --threads: read the file on N threads, each a byte range at a
    /// time, instead of one (0 or unset: one per three cores, at least
    /// one; no effect with --threads 1). Classic pcap files only, and not
    /// with -w; each range is taken only once proven to start where the
    /// one before ended, so the results are those of one reader.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=64))]
    pub readers: Option<u16>,

    /// Every SECS seconds, print the flow table so far (open connections
    /// included) to stderr without stopping, as SIGUSR1 does (like dd).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = stats_every_secs)]
    pub stats_every: Option<f64>,

    /// Seconds a finished connection keeps absorbing late segments
    /// (retransmitted FINs, RSTs) before it is reported (0 to 86400).
    #[arg(long, default_value_t = Options::LINGER, value_name = "SECS", allow_negative_numbers = true, value_parser = linger_secs)]
    pub linger: f64,

    /// Seconds of silence after which an open connection is reported as
    /// still open and forgotten (default 3 h: longer than Linux's 2 h
    /// keepalive time; 1 to 2592000).
    #[arg(long, default_value_t = Options::IDLE_TIMEOUT, value_name = "SECS", allow_negative_numbers = true, value_parser = idle_timeout_secs)]
    pub idle_timeout: f64,

    /// BPF filter expression (pcap-filter syntax), e.g. `tcp port 2333`.
    #[arg(value_name = "FILTER EXPRESSION", trailing_var_arg = true)]
    pub filter: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reproduce the keepalive walkthrough live in a few seconds (root): a
    /// private network namespace, a server on 127.0.0.1:2333, a keepalive
    /// client, captured and explained as it happens. The host's firewall and
    /// network are not touched.
    #[command(
        after_help = "Examples:\n  sudo kacap lab dead-peer\n  sudo kacap lab peer-reboot --idle 1 -w reboot.pcap\n  sudo kacap lab healthy --json\n  kacap lab dead-peer --replay          without root: the capture shipped inside kacap"
    )]
    Lab(LabArgs),
    /// List TCP sockets with their keepalive configuration: SO_KEEPALIVE,
    /// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT and where each comes from
    /// (set on the socket, or the namespace's sysctl), TCP_USER_TIMEOUT, the
    /// running timer, the owning process — and why probes will or will not
    /// come. Exact values need root (or CAP_SYS_PTRACE); without, they are
    /// inferred and marked.
    #[command(
        help_template = SOCKETS_HELP,
        after_help = "Filter: port N, src port N, dst port N, host ADDR, state NAME (established, listen, time-wait, …), joined by 'and'.\n\nExamples:\n  sudo kacap sockets port 5432\n  sudo kacap sockets state established --json\n  sudo kacap --netns $(pidof envoy) sockets port 5432     a container's sockets and sysctls\n  sudo kacap --netns blue sockets                        a named namespace (ip netns add blue)"
    )]
    Sockets(SocketsArgs),
    /// Name why each TCP connection on this host ends, from the kernel's
    /// own tracepoints — no packet capture (root): keepalive-timeout,
    /// retransmit-timeout, user-timeout, zero-window-timeout, peer-reset, local-abort, refused;
    /// with -v every
    /// end, clean closes too. Until Ctrl-C.
    #[command(
        help_template = WATCH_HELP,
        after_help = "Filter: port N (local or remote).\n\nExamples:\n  sudo kacap watch\n  sudo kacap watch port 5432 --json\n  sudo kacap watch -v                 clean closes too\n  sudo kacap --netns $(pidof envoy) watch   one container's connections only"
    )]
    Watch(WatchArgs),
    /// Print shell completions for SHELL on stdout.
    #[command(
        after_help = "Install, for example:\n  kacap completions bash | sudo tee /usr/share/bash-completion/completions/kacap\n  kacap completions zsh > ~/.zfunc/_kacap\n  kacap completions fish > ~/.config/fish/completions/kacap.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print kacap's man page (roff) on stdout.
    #[command(
        after_help = "Install, for example:\n  kacap man | sudo tee /usr/local/share/man/man1/kacap.1 && man kacap"
    )]
    Man,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Which connections: port N.
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct SocketsArgs {
    /// Which sockets: port N, src port N, dst port N, host ADDR, state NAME.
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LabArgs {
    /// What happens to the connection.
    #[arg(value_enum)]
    pub scenario: LabScenario,

    /// TCP_KEEPIDLE: seconds of silence before the first probe (1 to 300).
    #[arg(long, value_name = "SECS", default_value_t = 2, allow_negative_numbers = true,
          value_parser = |s: &str| whole_within(s, 1, 300, "seconds"))]
    pub idle: u32,

    /// TCP_KEEPINTVL: seconds between unanswered probes (1 to 60).
    #[arg(long, value_name = "SECS", default_value_t = 1, allow_negative_numbers = true,
          value_parser = |s: &str| whole_within(s, 1, 60, "seconds"))]
    pub interval: u32,

    /// TCP_KEEPCNT: unanswered probes before the kernel gives up (1 to 20).
    #[arg(long, value_name = "N", default_value_t = 3, allow_negative_numbers = true,
          value_parser = |s: &str| whole_within(s, 1, 20, "probes"))]
    pub count: u32,

    /// Without root: replay the capture of this scenario shipped inside
    /// kacap (recorded by kacap lab with --idle 2 --interval 1 --count 2),
    /// explained as the live lab would.
    #[arg(long, conflicts_with_all = ["idle", "interval", "count", "capture_after"])]
    pub replay: bool,

    /// Start capturing SECS seconds after the connection went idle, as when
    /// tcpdump is started on a connection that is already idle (no
    /// handshake in the capture, the silence began before it; 0 to 300).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true,
          value_parser = |s: &str| whole_within(s, 0, 300, "seconds"))]
    pub capture_after: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LabScenario {
    /// The peer answers every probe. Teaches: alive.
    Healthy,
    /// The peer is silenced after the handshake: probes go unanswered, then
    /// RST. Teaches: dead-peer.
    DeadPeer,
    /// The peer's socket vanishes: the next probe is answered by RST.
    /// Teaches: peer-reset.
    PeerReboot,
    /// Keepalive on the server's side; the client answers. Teaches: alive,
    /// probed by the server.
    ServerSide,
    /// The server answers every probe, but the answers are dropped before
    /// the client's socket: it keeps probing and gives up. Teaches:
    /// acks-dropped.
    AcksDropped,
    /// No keepalive: data is sent to a silenced server, retransmitted with
    /// backoff until TCP_USER_TIMEOUT (interval × count seconds) runs out.
    /// Teaches: retransmit-timeout.
    RetransmitTimeout,
    /// HTTP/1.1 keep-alive: the server closes a connection idle for its
    /// keep-alive timeout (--idle), the client's pool reuses it a second
    /// later, the request is answered by RST, the client retries on a new
    /// connection. Teaches: stale-connection.
    StalePool,
    /// A NAT between client and server (three namespaces, conntrack) forgets
    /// a connection idle for --idle seconds; the client pauses half that and
    /// lives, then longer and its next data is dropped. Needs iproute2 and
    /// iptables. Teaches: idle-timeout.
    IdleTimeout,
}

/// `--time-stamp-precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    Micro,
    Nano,
}

/// `-Q`: which direction of a live capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Direction {
    In,
    Out,
    Inout,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Zeek,
    ZeekJson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl Args {
    /// Nanosecond timestamps: `--nano` or `--time-stamp-precision nano`.
    pub fn nano(&self) -> bool {
        self.nano || self.precision == Some(Precision::Nano)
    }

    /// The filter words joined as tcpdump does, or `None`.
    pub fn filter_expr(&self) -> Option<String> {
        (!self.filter.is_empty()).then(|| self.filter.join(" "))
    }
}

/// A number of seconds within `lo..=hi` (finite: `nan` and `inf` are not).
fn secs_within(s: &str, lo: f64, hi: f64) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is out of range: give {lo} to {hi} seconds"))
    }
}

/// A whole number within `lo..=hi` (the lab's timers), said plainly.
fn whole_within(s: &str, lo: u32, hi: u32, unit: &str) -> Result<u32, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if (i64::from(lo)..=i64::from(hi)).contains(&v) => Ok(v as u32),
        Ok(_) => Err(format!("{s} is out of range: give {lo} to {hi} {unit}")),
        Err(_) => Err(format!("'{s}' is not a whole number of {unit}")),
    }
}

fn linger_secs(s: &str) -> Result<f64, String> {
    secs_within(s, 0.0, 86_400.0)
}

fn stats_every_secs(s: &str) -> Result<f64, String> {
    secs_within(s, 0.1, 86_400.0)
}

fn idle_timeout_secs(s: &str) -> Result<f64, String> {
    secs_within(s, 1.0, 30.0 * 86_400.0)
}

/// `kacap sockets --help`: its own options only. The capture options are
/// global (so `kacap lab dead-peer -v` takes them) and clap would list them
/// all under every subcommand; these four are the ones `sockets` reads
/// (`-w` and `--diagram-svg` are refused, the rest do nothing there).
const SOCKETS_HELP: &str = "\
{about-with-newline}
{usage-heading} kacap [--netns <NAME|PID|PATH>] sockets [--json] [--wide] [--color <WHEN>] [FILTER]...

Arguments:
{positionals}

Options:
      --netns <NAME|PID|PATH>
          Enter a network namespace first (root): a named one (ip netns add NAME), a
          process's (a container's or a pod's: its PID), or a bind-mounted PATH
      --json
          JSON Lines: the namespace's sysctls, then one record per socket
      --wide
          The table at its full width even on a terminal
      --color <WHEN>
          When to color the output: auto (only on a terminal, and not when NO_COLOR
          is set), always, never
  -h, --help
          Print help{after-help}";

/// `kacap watch --help`: only the options it takes (the capture options
/// are global to the command line, and do not apply).
const WATCH_HELP: &str = "\
{about-with-newline}
{usage-heading} kacap [--netns <NAME|PID|PATH>] watch [--json] [-v] [--metrics <ADDR:PORT>] [FILTER]...

Arguments:
{positionals}

Options:
      --netns <NAME|PID|PATH>
          Only that network namespace's connections (joined through its
          socket table; the tracepoints are the host's)
      --json
          JSON Lines: one object per end (type, ts, cause, reason, errno, local,
          remote, retransmissions, age)
  -v
          Every end, clean closes too
      --metrics <ADDR:PORT>
          Serve Prometheus metrics (GET /metrics): ends by cause, and the
          keepalive settings of the sockets that died
  -h, --help
          Print help{after-help}";
