//! In a real terminal (tmux, `capture-pane`): the table fits 80 and 120
//! columns, and a packet's words go on their own line when its line would
//! wrap. Pipes keep one line per packet (see `parity`).

use crate::fixture;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What a `width`-column terminal shows after `kacap ARGS` (wrapped lines
/// joined back, as `capture-pane -J` does).
fn screen(width: u16, args: &str) -> String {
    let socket = format!("kacap-test-{}-{width}", std::process::id());
    let bin = assert_cmd::cargo::cargo_bin("kacap");
    let script = format!(
        "TZ=UTC NO_COLOR=1 {} {args}; echo __END__; sleep 60",
        bin.display()
    );
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    };
    let started = tmux(&[
        "new-session",
        "-d",
        "-x",
        &width.to_string(),
        "-y",
        "400",
        "sh",
        "-c",
        &script,
    ]);
    assert!(started.status.success(), "{started:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let out = tmux(&["capture-pane", "-p", "-J", "-S", "-", "-E", "-"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("__END__") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    tmux(&["kill-server"]);
    assert!(text.contains("__END__"), "kacap did not finish:\n{text}");
    text
}

fn table_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with(['┌', '│', '╞', '└']))
        .collect()
}

#[test]
fn table_and_timeline_fit_80_and_120_columns() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is not installed, but CI must run this test"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let files = format!(
        "-r {} -r {} -r {}",
        fixture("dead-peer.pcap").display(),
        fixture("http.pcap").display(),
        fixture("idle-mixed.pcap").display()
    );
    for width in [80u16, 120] {
        let text = screen(width, &files);
        let table = table_lines(&text);
        assert!(table.len() > 10, "{text}");
        for line in &table {
            assert!(
                line.chars().count() <= usize::from(width),
                "{width} columns: table line too wide:\n{line}"
            );
        }
        // The full table (143 columns) does not fit: the compact layout,
        // addresses whole.
        assert!(text.contains("prober s/a/u/r"), "{text}");
        assert!(text.contains("→ 127.0.0.1:2333"), "{text}");
        // The words of a packet whose line would wrap are on their own line.
        let probe = text
            .lines()
            .find(|l| l.contains("keepalive probe #1 from client"))
            .unwrap();
        assert!(probe.starts_with("    flow 1: "), "{width}: {probe}");
        // Prose folds at spaces, within the width.
        for line in text.lines().filter(|l| l.contains("evidence:")) {
            assert!(line.chars().count() <= usize::from(width), "{line}");
        }
    }
    // Given room, the full table.
    let wide = screen(
        200,
        &format!("-r {} --summary", fixture("dead-peer.pcap").display()),
    );
    assert!(wide.contains("probes sent/ans/unans/rst"), "{wide}");
}
