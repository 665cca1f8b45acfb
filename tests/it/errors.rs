//! Errors a user can cause: one clear line, a documented exit status, no panic.

use crate::craft::*;
use crate::crafted::dead_peer;
use crate::{fixture, kacap};
use std::io::Read;
use std::process::Stdio;
use tempfile::TempDir;

/// Runs kacap on `path`; returns (exit code, stdout, stderr).
fn run_on(path: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let out = kacap().arg("-r").arg(path).args(extra).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line_error(stderr: &str, needle: &str) {
    assert_eq!(stderr.lines().count(), 1, "want one line, got: {stderr}");
    assert!(stderr.starts_with("kacap: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_empty_foreign_and_header_truncated_files_exit_2() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope.pcap");
    let (code, out, err) = run_on(&missing, &[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_one_line_error(&err, "nope.pcap: no such file");

    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, err) = run_on(&empty, &[]);
    assert_eq!(code, 2);
    assert_one_line_error(&err, "empty.pcap: empty file");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a capture file, just some words\n").unwrap();
    let (code, _, err) = run_on(&text, &[]);
    assert_eq!(code, 2);
    assert_one_line_error(&err, "notes.txt: not a readable pcap or pcapng capture");

    let cut = dir.path().join("cut.pcap");
    let whole = std::fs::read(fixture("healthy.pcap")).unwrap();
    std::fs::write(&cut, &whole[..10]).unwrap();
    let (code, _, err) = run_on(&cut, &[]);
    assert_eq!(code, 2);
    assert_one_line_error(&err, "cut.pcap: ");

    let sub = dir.path().join("no-captures");
    std::fs::create_dir(&sub).unwrap();
    let (code, _, err) = run_on(&sub, &[]);
    assert_eq!(code, 2);
    assert_one_line_error(&err, "directory holds no .pcap");
}

#[test]
fn unsupported_link_type_exits_2() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("wifi.pcap");
    write_pcap(&path, 105, &[(1.0, vec![0; 30])], PcapOpts::default());
    let (code, _, err) = run_on(&path, &[]);
    assert_eq!(code, 2);
    assert_one_line_error(&err, "link type 105");
}

#[test]
fn bad_filter_expression_exits_2() {
    let (code, _, err) = run_on(&fixture("healthy.pcap"), &["port", "banana", "and"]);
    assert_eq!(code, 2);
    assert_one_line_error(&err, "bad filter expression 'port banana and'");
}

#[test]
fn file_cut_mid_packet_is_analyzed_up_to_the_cut_with_a_warning() {
    let dir = TempDir::new().unwrap();
    let whole = std::fs::read(fixture("dead-peer.pcap")).unwrap();
    let cut = dir.path().join("killed.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 30]).unwrap();
    let (code, out, err) = run_on(&cut, &["--json"]);
    assert_eq!(code, 0);
    assert_one_line_error(&err, "warning: ");
    assert!(err.contains("killed.pcap"), "{err}");
    let packets = out
        .lines()
        .filter(|l| l.contains("\"type\":\"packet\""))
        .count();
    assert_eq!(packets, 19);
    assert!(out.contains("\"verdict\":\"dead-peer\""));
}

#[test]
fn stdin_is_read_with_dash() {
    let data = std::fs::read(fixture("peer-reboot.pcap")).unwrap();
    let out = kacap()
        .args(["-r", "-", "--json", "--summary"])
        .write_stdin(data)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"verdict\":\"peer-reset\""));
}

#[test]
fn closed_pipe_ends_quietly_with_status_0() {
    // Enough output that the pipe fills after the reader has gone.
    let dir = TempDir::new().unwrap();
    let mut frames = Vec::new();
    for i in 0..3000u16 {
        let client = format!("10.0.{}.{}:40000", i / 250, i % 250 + 2);
        let conn = dead_peer(Link::Ethernet, &client, "10.0.0.1:5432", 1, 2);
        frames.extend(conn.frames);
    }
    frames.sort_by(|a, b| a.0.total_cmp(&b.0));
    let path = dir.path().join("many.pcap");
    write_pcap(&path, 1, &frames, PcapOpts::default());
    let bin = assert_cmd::cargo::cargo_bin("kacap");
    let mut child = std::process::Command::new(bin)
        .arg("-r")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert_eq!(err, "");
}

#[test]
fn help_has_examples_and_exit_statuses() {
    let out = kacap().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Examples:"));
    assert!(help.contains("Exit status"));
    let out = kacap().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // `kacap sockets --help` lists what sockets takes, not the capture
    // options (global for `kacap lab`).
    let out = kacap().args(["sockets", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0));
    for takes in ["--netns", "--json", "--wide", "--color", "Examples:"] {
        assert!(help.contains(takes), "{takes} missing:\n{help}");
    }
    for not in ["-w <FILE>", "--html", "--summary", "-v...", "--threads"] {
        assert!(!help.contains(not), "{not} listed:\n{help}");
    }
}

#[test]
fn non_utf8_file_names_work() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.pcap");
    let path = dir.path().join(name);
    std::fs::copy(fixture("healthy.pcap"), &path).unwrap();
    let (code, out, _) = run_on(&path, &["--summary"]);
    assert_eq!(code, 0);
    assert!(out.contains("alive"));
}

#[test]
fn color_only_when_asked_or_on_a_terminal_and_never_with_no_color() {
    let path = fixture("healthy.pcap");
    let run = |args: &[&str], no_color: bool| {
        let mut cmd = kacap();
        cmd.arg("-r").arg(&path).args(args);
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    // Not a terminal: no escapes by default.
    assert!(!run(&[], false).contains('\x1b'));
    assert!(run(&["--color=always"], false).contains("\x1b["));
    assert!(!run(&["--color=never"], false).contains('\x1b'));
    // NO_COLOR only affects the automatic choice.
    assert!(!run(&[], true).contains('\x1b'));
}

#[test]
fn use_color_honors_no_color_on_a_terminal() {
    use kacap::command::cli::ColorChoice;
    // SAFETY: this test binary's other tests do not read NO_COLOR in-process.
    unsafe { std::env::set_var("NO_COLOR", "1") };
    assert!(!kacap::command::plan::use_color(ColorChoice::Auto, true));
    unsafe { std::env::remove_var("NO_COLOR") };
    assert!(kacap::command::plan::use_color(ColorChoice::Auto, true));
    assert!(!kacap::command::plan::use_color(ColorChoice::Auto, false));
}

/// Every option is checked before any side effect: a rejected command leaves
/// an existing `-w` file as it was (it used to be truncated to a pcap header).
#[test]
fn a_rejected_command_leaves_an_existing_w_file_untouched() {
    let dir = TempDir::new().unwrap();
    let keep = dir.path().join("existing.pcap");
    let before = std::fs::read(fixture("dead-peer.pcap")).unwrap();
    std::fs::write(&keep, &before).unwrap();
    let rejected: [&[&str]; 3] = [
        &["--json", "--explain"],
        &["--json", "--diagram"],
        &["-r", "also-a-second-input.pcap"],
    ];
    for extra in rejected {
        let out = kacap()
            .arg("-r")
            .arg(fixture("healthy.pcap"))
            .arg("-w")
            .arg(&keep)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(out.stdout.is_empty(), "{extra:?}");
        assert_eq!(
            std::fs::read(&keep).unwrap(),
            before,
            "{extra:?} touched -w"
        );
    }
}

/// A usage error is printed once, however many inputs there are.
#[test]
fn a_usage_error_is_printed_once_with_several_inputs() {
    let out = kacap()
        .arg("-r")
        .arg(fixture("healthy.pcap"))
        .arg("-r")
        .arg(fixture("dead-peer.pcap"))
        .args(["--json", "--explain"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("kacap: the argument '--json' cannot be used with '--explain'"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// Every command-line error is one line, with what to do: no clap tip to
/// pass a negative number after `--`, possible values named.
#[test]
fn command_line_errors_are_one_line() {
    for (args, says) in [
        (
            &["lab", "dead-peer", "--idle", "-1"][..],
            "-1 is out of range: give 1 to 300 seconds",
        ),
        (
            &["lab", "dead-peer", "--count", "1.5"],
            "'1.5' is not a whole number of probes",
        ),
        (&["lab", "nosuch"], "[possible values: healthy, dead-peer"),
        (
            &["-r", "x.pcap", "--linger", "-1"],
            "give 0 to 86400 seconds",
        ),
        (
            &["-r", "x.pcap", "--lingr", "5"],
            "a similar argument exists: '--linger'",
        ),
    ] {
        let out = kacap().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(says) && !err.contains("'-- "),
            "{args:?}: {err}"
        );
    }
}

/// Option values are checked when parsed: `--linger nan` used to loop
/// forever, negative or zero timeouts split one connection into several.
#[test]
fn timeouts_must_be_finite_and_in_range() {
    for (opt, value) in [
        ("--linger", "nan"),
        ("--linger", "-1"),
        ("--linger", "inf"),
        ("--idle-timeout", "0"),
        ("--idle-timeout", "-5"),
        ("--idle-timeout", "soon"),
    ] {
        let out = kacap()
            .arg("-r")
            .arg(fixture("healthy.pcap"))
            .arg(format!("{opt}={value}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{opt} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(opt) && err.contains("seconds"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

/// `-r X -w X` (or a link to X) would overwrite the input while reading it.
#[test]
fn writing_over_the_input_is_refused_before_anything_is_written() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in.pcap");
    std::fs::copy(fixture("healthy.pcap"), &input).unwrap();
    let link = dir.path().join("link.pcap");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let before = std::fs::read(&input).unwrap();
    for w in [&input, &link] {
        let out = kacap()
            .arg("-r")
            .arg(&input)
            .arg("-w")
            .arg(w)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is the file being read"), "{err}");
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }
}

/// tcpdump habits: options after the filter, unknown options named.
#[test]
fn options_may_follow_the_filter_and_unknown_ones_are_named() {
    let f = fixture("dead-peer.pcap");
    let f = f.to_str().unwrap();
    for args in [
        vec!["-r", f, "port", "2333", "--summary"],
        vec!["port", "2333", "-r", f, "--summary"],
    ] {
        let out = kacap().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("dead-peer") && !text.contains("probe #1"),
            "{text}"
        );
    }
    for unknown in ["-k", "--frobnicate"] {
        let out = kacap().args([unknown, "-r", f]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(unknown) && !err.contains("bad filter"),
            "{err}"
        );
    }
}

/// Bare `kacap`: a short usage naming -r, -i and lab, exit 2.
#[test]
fn bare_kacap_names_the_three_ways_in() {
    let out = kacap().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["kacap -r FILE", "kacap -i IFACE", "kacap lab"] {
        assert!(err.contains(needle), "{err}");
    }
}

/// Completions and the man page come from the clap definition.
#[test]
fn completions_and_man_page_are_generated() {
    for (shell, needle) in [
        ("bash", "_kacap()"),
        ("zsh", "#compdef kacap"),
        ("fish", "complete -c kacap"),
        ("elvish", "kacap"),
        ("powershell", "kacap"),
    ] {
        let out = kacap().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(needle), "{shell}: {text}");
        assert!(
            text.contains("idle-timeout"),
            "{shell} completes the options"
        );
    }
    let out = kacap().arg("man").output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8(out.stdout).unwrap();
    assert!(
        man.contains(".TH kacap 1") && man.contains("keepalive"),
        "{man}"
    );
    // The synopsis names the options' values (clap_mangen's own printed
    // `[-r ] [-c ]`).
    let synopsis = man.split(".SH SYNOPSIS").nth(1).unwrap();
    let synopsis = synopsis.split(".SH").next().unwrap();
    assert!(
        synopsis.contains("FILE") && synopsis.contains("IFACE"),
        "{synopsis}"
    );
    assert!(!synopsis.contains("\\-r \\fR]"), "{synopsis}");
}

#[test]
fn version_names_the_libpcap() {
    let out = kacap().arg("--version").output().unwrap();
    assert!(out.status.success());
    let v = String::from_utf8(out.stdout).unwrap();
    assert!(
        v.starts_with("kacap ") && v.contains("libpcap version"),
        "{v}"
    );
}

/// `-F FILE`: the filter from a file, comments removed, as tcpdump -F.
#[test]
fn filter_from_a_file() {
    let dir = TempDir::new().unwrap();
    let keep = dir.path().join("keep.bpf");
    std::fs::write(&keep, "# the lab's port\ntcp port 2333   # keepalive\n").unwrap();
    let other = dir.path().join("other.bpf");
    std::fs::write(&other, "tcp port 9\n").unwrap();
    let f = fixture("dead-peer.pcap");
    let run = |filter: &std::path::Path, extra: &[&str]| {
        kacap()
            .arg("-r")
            .arg(&f)
            .arg("-F")
            .arg(filter)
            .arg("--summary")
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&keep, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 flow"));
    let out = run(&other, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 flows"));
    let out = run(&dir.path().join("missing.bpf"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the filter file"));
    let out = run(&keep, &["tcp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"));
}

/// tcpdump's flags: the ones kacap takes are accepted, the others get one
/// line that says what they are and that kacap does not take them.
#[test]
fn tcpdump_flags_are_taken_or_refused_by_name() {
    let f = fixture("healthy.pcap");
    let f = f.to_str().unwrap();
    for flags in [
        vec!["-p"],
        vec!["-l"],
        vec!["-q"],
        vec!["-s", "96"],
        vec!["-B", "4096"],
        vec!["-Q", "in"],
        vec!["-nn"],
        vec!["-tttt"],
        vec!["-S"],
        vec!["-v"],
        vec!["-nnvvS"],
        vec!["-e"],
        vec!["-x"],
        vec!["-XX"],
        vec!["-A"],
    ] {
        let out = kacap().args(["-r", f]).args(&flags).output().unwrap();
        assert!(
            out.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (flag, what) in [("-C", "rotating"), ("-y", "data link type")] {
        let out = kacap().args(["-r", f, flag]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("not supported by kacap") && err.contains(what),
            "{flag}: {err}"
        );
    }
}

/// A missing argument is named, and the help to read is the subcommand's
/// (`kacap lab` alone used to print "were not provided:" and nothing).
#[test]
fn a_missing_argument_is_named_with_the_subcommands_help() {
    let (status, _, err) = crate::in_process(&["lab"]);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(status, 2);
    assert_eq!(
        err,
        "kacap: the following required arguments were not provided: <SCENARIO> (see 'kacap lab --help')\n"
    );
    let (status, _, err) = crate::in_process(&["sockets", "--bogus"]);
    assert_eq!(status, 2);
    assert!(
        String::from_utf8(err)
            .unwrap()
            .ends_with("(see 'kacap sockets --help')\n"),
        "the sockets subcommand's help"
    );
}
