//! `--html FILE` (#19): one self-contained report, opened in a real
//! headless browser (Debian's chromium; CI installs it): after its scripts
//! ran, every connection has a lane, every probe a mark with its frame
//! number, every verdict its row, and opening a connection reveals its
//! explanation.

use crate::{fixture, json, kacap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn report(name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(name.replace(".pcap", ".html"));
    let run = kacap()
        .args(["-r", fixture(name).to_str().unwrap(), "--summary", "--html"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The DOM after the page's scripts ran, as `chromium --dump-dom` prints it.
fn dom(browser: &str, page: &Path, hash: &str) -> String {
    let profile = tempfile::TempDir::new().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}{hash}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn reports_are_self_contained() {
    let dir = tempfile::TempDir::new().unwrap();
    for name in ["healthy.pcap", "dead-peer.pcap", "http.pcap"] {
        let page = std::fs::read_to_string(report(name, dir.path())).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script src"), "{name}: external script");
        assert!(!page.contains("<link"), "{name}: external stylesheet");
        for url in page.match_indices("http") {
            let rest = &page[url.0..];
            assert!(
                rest.starts_with("http://www.w3.org/2000/svg"),
                "{name}: a URL other than the SVG namespace: {}",
                &rest[..40.min(rest.len())]
            );
        }
    }
}

#[test]
fn in_a_real_browser_every_connection_has_a_lane_every_probe_a_mark_every_verdict_a_row() {
    let must = std::env::var("KACAP_LIVE_TESTS").is_ok_and(|v| v == "1");
    let Some(browser) = chromium() else {
        assert!(!must, "chromium not found (apt-get install chromium)");
        eprintln!("skipped: no chromium");
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    for name in [
        "healthy.pcap",
        "dead-peer.pcap",
        "peer-reboot.pcap",
        "http.pcap",
        "idle-mixed.pcap",
    ] {
        let page = report(name, dir.path());
        let j = json(&fixture(name), &[]);
        let first = j.flows[0]["flow"].as_u64().unwrap();
        let d = dom(browser, &page, &format!("#flow-{first}"));
        for f in &j.flows {
            let id = f["flow"].as_u64().unwrap();
            assert!(
                d.contains(&format!("id=\"lane-{id}\"")),
                "{name}: no lane for flow {id}"
            );
            assert!(
                d.contains(&format!("<tr data-flow=\"{id}\"")),
                "{name}: no row for flow {id}"
            );
            let verdict = f["verdict"].as_str().unwrap();
            assert!(
                d.contains(&format!("class=\"v-{verdict}\">{verdict}</td>")),
                "{name}: no verdict cell {verdict}"
            );
        }
        for p in j.packets.iter().filter(|p| p["kind"] == "keepalive") {
            let n = p["n"].as_u64().unwrap();
            assert!(
                d.contains(&format!("data-frame=\"{n}\"")),
                "{name}: no mark for probe frame {n}"
            );
        }
        // #flow-N opens its account: the explanation and the diagram.
        assert!(
            !d.contains("<section id=\"detail\" aria-label=\"the chosen connection\" hidden"),
            "{name}: detail still hidden"
        );
        let verdict = j.flows[0]["verdict"].as_str().unwrap();
        assert!(
            d.contains(&format!("<pre id=\"explain\">flow {first}: "))
                && d.contains(&format!("— {verdict}\n")),
            "{name}: the explanation is not shown"
        );
        assert!(d.contains("<div id=\"diagram\"><svg"), "{name}: no diagram");
    }
    // A screenshot that is not blank: a rendered report is far larger than
    // an empty page's PNG.
    let shot = dir.path().join("shot.png");
    let profile = tempfile::TempDir::new().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1200,900",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!(
            "file://{}#flow-1",
            report("idle-mixed.pcap", dir.path()).display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a nearly empty screenshot: {} bytes",
        png.len()
    );
}

#[test]
fn the_report_script_parses_and_type_checks() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/report/html/report.js");
    match Command::new("node").arg("--check").arg(&js).output() {
        Ok(out) => assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("skipped: no node (CI type-checks report.js with tsc)"),
    }
}
