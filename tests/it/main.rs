//! kacap's integration tests: one binary, helpers here, one module per area.

use kacap::craft;
mod annotate;
mod app;
mod crafted;
mod docs;
mod errors;
mod fastread;
mod field;
mod fixtures;
mod fleet;
mod frag;
mod hostile;
mod html;
mod http;
mod identity;
mod inputs;
mod lab;
mod live;
mod middlebox;
mod parity;
mod parquet;
mod props;
mod regressions;
mod rotation;
mod sockets;
mod structure;
mod teach;
mod terminal;
mod thirdparty;
mod threads;
mod watch;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Tests on real kernel timers (live captures of keepalive traffic) and the
/// heaviest ones (real browsers, several processes each) take turns: a
/// browser starting beside a live test could delay its traffic thread past
/// a 2-second keepalive timer and change what the kernel does.
pub fn take_turns() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every real capture in fixtures/, in name order.
pub fn all_fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 20);
    fixtures
}

/// A real capture in fixtures/.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The kacap binary with a fixed time zone and no color.
pub fn kacap() -> Command {
    let mut cmd = Command::cargo_bin("kacap").unwrap();
    cmd.env("TZ", "UTC").env_remove("NO_COLOR");
    cmd
}

/// kacap run in this process (the binary's own entry, `command::entry`),
/// its output and messages into buffers, not a terminal: the exit status,
/// stdout and stderr. For what a subprocess adds (argv as the shell gives
/// it, signals, exit statuses of a real process, live captures) tests use
/// [`kacap`].
pub fn in_process<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (u8, Vec<u8>, Vec<u8>) {
    static TZ: std::sync::Once = std::sync::Once::new();
    // SAFETY: set once, before any run in this process reads the time zone
    // (every in-process run comes through here first).
    TZ.call_once(|| unsafe { std::env::set_var("TZ", "UTC") });
    let argv = std::iter::once("kacap".as_ref())
        .chain(args.iter().map(|a| a.as_ref()))
        .map(std::ffi::OsString::from)
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let term = kacap::command::plan::Terminal::default();
    let status = kacap::command::entry::run_argv(argv, &term, &mut out, &mut err);
    (status, out, err)
}

/// kacap's text output for `args`; it must succeed.
pub fn text(args: &[&str]) -> String {
    let (status, out, err) = in_process(args);
    assert!(
        status == 0,
        "kacap {args:?} failed: {}",
        String::from_utf8_lossy(&err)
    );
    String::from_utf8(out).unwrap()
}

/// The records of `kacap --json`, split by type.
pub struct Json {
    pub packets: Vec<Value>,
    pub flows: Vec<Value>,
    /// `revise` records: earlier packets read differently now.
    pub revisions: Vec<Value>,
    pub summary: Value,
}

impl Json {
    /// The kinds of all packet records, in order.
    pub fn kinds(&self) -> Vec<&str> {
        self.packets
            .iter()
            .map(|p| p["kind"].as_str().unwrap())
            .collect()
    }

    /// The only flow record.
    pub fn flow(&self) -> &Value {
        assert_eq!(self.flows.len(), 1, "expected one flow: {:?}", self.flows);
        &self.flows[0]
    }
}

pub fn json(path: &Path, extra: &[&str]) -> Json {
    let mut args: Vec<&std::ffi::OsStr> = vec!["-r".as_ref(), path.as_os_str(), "--json".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (status, out, err) = in_process(&args);
    assert!(
        status == 0,
        "kacap failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&err)
    );
    let mut j = Json {
        packets: Vec::new(),
        flows: Vec::new(),
        revisions: Vec::new(),
        summary: Value::Null,
    };
    for line in String::from_utf8(out).unwrap().lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("invalid JSON line {line:?}: {e}"));
        match v["type"].as_str().unwrap() {
            "packet" => j.packets.push(v),
            "flow" => j.flows.push(v),
            "revise" => j.revisions.push(v),
            "summary" => j.summary = v,
            other => panic!("unknown record type {other}"),
        }
    }
    assert!(j.summary.is_object(), "no summary record");
    j
}

/// Asserts `v` is within `tol` of `want`.
pub fn approx(v: &Value, want: f64, tol: f64) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("expected a number near {want}, got {v}"));
    assert!(
        (got - want).abs() <= tol,
        "expected {want} ± {tol}, got {got}"
    );
}

/// Runs kacap without privileges: as nobody with no capabilities (through
/// setpriv) when the tests run as root. `None`, with the reason printed,
/// when that cannot be arranged here.
pub fn unprivileged(args: &[&str]) -> Option<std::process::Output> {
    let bin = assert_cmd::cargo::cargo_bin("kacap");
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin);
        c
    } else {
        std::process::Command::new(&bin)
    };
    let Ok(out) = cmd.args(args).output() else {
        eprintln!("skipped: setpriv is not installed");
        return None;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("setpriv") {
        eprintln!("skipped: nobody cannot run {}: {err}", bin.display());
        return None;
    }
    Some(out)
}
