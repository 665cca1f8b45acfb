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

/// Debian's chromium, or `None` (the test is skipped) when it is missing
/// and `KACAP_LIVE_TESTS=1` (CI) does not require it.
fn chromium_or_skip() -> Option<&'static str> {
    let found = chromium();
    if found.is_none() {
        let must = std::env::var("KACAP_LIVE_TESTS").is_ok_and(|v| v == "1");
        assert!(!must, "chromium not found (apt-get install chromium)");
        eprintln!("skipped: no chromium");
    }
    found
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
    let _turn = crate::take_turns();
    let Some(browser) = chromium_or_skip() else {
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
            // The lane names the client's port: connections to one server
            // are told apart.
            let port = f["client"].as_str().unwrap().rsplit(':').next().unwrap();
            let server = f["server"].as_str().unwrap();
            assert!(
                d.contains(&format!(">{id} :{port} → {server} ")),
                "{name}: lane {id} does not name its client port"
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
        if name == "dead-peer.pcap" {
            assert!(
                d.contains("the client probes after 2.02s idle, every 1.02s, gives up after 2 unanswered — Linux's defaults are 7200 s / 75 s / 9: idle, interval and count differ"),
                "{name}: the settings are not compared with the defaults"
            );
        }
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

/// A page in headless chromium driven through the DevTools protocol over
/// `--remote-debugging-pipe` (fd 3: commands in, fd 4: answers out, each
/// message NUL-terminated): real, trusted key presses and mouse clicks.
struct Browser {
    child: std::process::Child,
    to: std::fs::File,
    from: std::io::BufReader<std::fs::File>,
    next: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(browser: &str, url: &str) -> Browser {
        use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
        use std::os::unix::process::CommandExt;
        let pipe = || {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            // SAFETY: pipe(2) just created both; each is owned once.
            unsafe {
                (
                    std::fs::File::from_raw_fd(fds[0]),
                    std::fs::File::from_raw_fd(fds[1]),
                )
            }
        };
        let (cmd_r, cmd_w) = pipe();
        let (ans_r, ans_w) = pipe();
        let (cr, aw) = (cmd_r.into_raw_fd(), ans_w.into_raw_fd());
        let profile = tempfile::TempDir::new().unwrap();
        let mut c = Command::new(browser);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--window-size=1200,900",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe dup2 between fork and exec.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(cr, 3) < 0 || libc::dup2(aw, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().unwrap();
        // SAFETY: ours since into_raw_fd; the child has its own copies.
        unsafe {
            libc::close(cr);
            libc::close(aw);
        }
        let _ = (cmd_w.as_raw_fd(), ans_r.as_raw_fd());
        let mut b = Browser {
            child,
            to: cmd_w,
            from: std::io::BufReader::new(ans_r),
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", serde_json::json!({ "url": url }));
        let id = target["targetId"].as_str().unwrap().to_string();
        let att = b.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": id, "flatten": true }),
        );
        b.session = att["sessionId"].as_str().unwrap().to_string();
        // The page is ready when its script drew the lanes.
        for _ in 0..100 {
            if b.eval("document.querySelectorAll('.lane').length") != 0 {
                return b;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the report drew no lane in 10 s");
    }

    /// Sends one command (to the page once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::{BufRead, Write};
        self.next += 1;
        let mut msg = serde_json::json!({ "id": self.next, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.from.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "chromium closed the DevTools pipe");
            buf.pop();
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            if v["id"] == self.next {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expr: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expr, "returnByValue": true }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits (up to 5 s) until `expr` has the value `want`: a hash change
    /// is handled asynchronously.
    fn wait_for(&mut self, expr: &str, want: serde_json::Value) {
        for _ in 0..50 {
            if self.eval(expr) == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(self.eval(expr), want, "{expr}");
    }

    fn key(&mut self, key: &str, code: u32) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                serde_json::json!({
                    "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code
                }),
            );
        }
    }

    /// A real mouse click on the middle of the element `selector` finds.
    fn click(&mut self, selector: &str) {
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector('{selector}'); e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                serde_json::json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tcpdump part of each line of kacap's text timeline, by frame number.
fn text_lines(name: &str) -> Vec<String> {
    let out = kacap()
        .args(["-r", fixture(name).to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split("  flow ").next().unwrap().to_string())
        .collect()
}

#[test]
fn a_mark_shows_its_tcpdump_line_and_the_lanes_answer_the_keyboard() {
    let _turn = crate::take_turns();
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    // A capture started on an idle connection (field-shaped): frame numbers
    // count from the capture's start, relative sequence numbers as tcpdump's.
    for name in ["dead-peer.pcap", "idle-start-dead.pcap"] {
        let page = report(name, dir.path());
        let lines = text_lines(name);
        let j = json(&fixture(name), &[]);
        for p in j.packets.iter().filter(|p| p["kind"] == "keepalive") {
            let n = p["n"].as_u64().unwrap();
            let d = dom(browser, &page, &format!("#frame-{n}"));
            let want = lines[n as usize - 1]
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            assert!(
                d.contains(&format!("<code class=\"tcpdump\">{want}</code>")),
                "{name}: frame {n}'s line is not shown as the text timeline prints it:\n{want}"
            );
            assert!(
                d.contains("<div class=\"said\">keepalive probe #"),
                "{name}: frame {n}: no annotation"
            );
        }
    }

    // Mouse: a click on a probe's mark shows its line; on a row, the account.
    let page = report("idle-mixed.pcap", dir.path());
    let url = format!("file://{}", page.display());
    let mut b = Browser::open(browser, &url);
    let probe = b.eval("document.querySelector('.mark.probe-ok').getAttribute('data-frame')");
    let probe = probe.as_str().unwrap().to_string();
    b.click(&format!(".mark.probe-ok[data-frame=\"{probe}\"]"));
    let shown = b.eval("document.querySelector('#mark code.tcpdump').textContent");
    let lines = text_lines("idle-mixed.pcap");
    assert_eq!(
        shown.as_str().unwrap(),
        lines[probe.parse::<usize>().unwrap() - 1]
    );
    b.click("#flows tbody tr[data-flow=\"1\"]");
    b.wait_for("document.getElementById('detail').hidden", false.into());
    assert_eq!(b.eval("location.hash"), "#flow-1");
    assert!(
        b.eval("document.getElementById('explain').textContent")
            .as_str()
            .unwrap()
            .starts_with("flow 1: ")
    );

    // Keyboard: focus the first lane, walk down one lane and into its marks.
    b.eval("document.querySelector('.lane').focus(), 0");
    let first = b.eval("document.activeElement.getAttribute('data-flow')");
    b.key("ArrowDown", 40);
    let second = b.eval("document.activeElement.getAttribute('data-flow')");
    assert_ne!(first, second, "ArrowDown did not move to the next lane");
    b.key("ArrowRight", 39);
    b.key("ArrowRight", 39);
    let frame = b.eval("document.activeElement.getAttribute('data-frame')");
    assert!(frame.is_string(), "ArrowRight did not reach a mark");
    assert!(
        b.eval("document.querySelector('#mark div').textContent")
            .as_str()
            .unwrap()
            .contains(&format!("frame {}", frame.as_str().unwrap())),
        "the focused mark's line is not shown"
    );
    b.key("Escape", 27);
    assert_eq!(
        b.eval("document.activeElement.getAttribute('data-flow')"),
        second
    );
    b.key("Enter", 13);
    b.wait_for(
        "document.getElementById('detail-title').textContent.split(':')[0]",
        format!("flow {}", second.as_str().unwrap()).into(),
    );
    assert_eq!(
        b.eval("location.hash").as_str().unwrap(),
        format!("#flow-{}", second.as_str().unwrap())
    );
    b.key("Escape", 27);
    b.wait_for("document.getElementById('detail').hidden", true.into());
}

/// Firefox (Debian's firefox-esr; CI installs it) renders the report and
/// runs its script: its screenshot of the page is far richer than of the
/// same page with the script taken out (lanes, rows, the explanation).
#[test]
fn firefox_runs_the_report_too() {
    let _turn = crate::take_turns();
    let must = std::env::var("KACAP_LIVE_TESTS").is_ok_and(|v| v == "1");
    let found = Command::new("firefox-esr")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(!must, "firefox-esr not found (apt-get install firefox-esr)");
        eprintln!("skipped: no firefox-esr");
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let page = report("idle-mixed.pcap", dir.path());
    let html = std::fs::read_to_string(&page).unwrap();
    let cut = html.rfind("<script>").unwrap();
    let bare = dir.path().join("bare.html");
    std::fs::write(&bare, format!("{}</body></html>\n", &html[..cut])).unwrap();
    let shot = |p: &Path, name: &str| {
        let home = tempfile::TempDir::new().unwrap();
        let png = dir.path().join(name);
        let out = Command::new("firefox-esr")
            .env("HOME", home.path())
            .env("MOZ_HEADLESS", "1")
            .args(["--headless", "--no-remote", "--window-size=1200,900"])
            .arg("--screenshot")
            .arg(&png)
            .arg(format!("file://{}#flow-1", p.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        bytes.len()
    };
    let (full, without) = (shot(&page, "full.png"), shot(&bare, "bare.png"));
    assert!(
        full > 2 * without,
        "firefox: the report's screenshot ({full} bytes) is not much richer than without its script ({without} bytes)"
    );
}

/// Both ends probing (Docker's 15 s on both sides): the settings note says
/// "both sides probe", not "the both probes".
#[test]
fn the_settings_note_names_both_probing_sides_in_english() {
    use kacap::craft::{ACK, Conn, Dir::*, Link, PcapOpts};
    let dir = tempfile::TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:50000", "10.0.0.1:2375", Link::Ethernet);
    c.handshake(10, 20).exchange(Client, b"ping");
    for _ in 0..2 {
        c.wait(15.0)
            .probe(Client, 0)
            .seg(Server, ACK, &[])
            .wait(0.1)
            .probe(Server, 0)
            .seg(Client, ACK, &[]);
    }
    let path = dir.path().join("both.pcap");
    c.write_pcap(&path, PcapOpts::default());
    assert_eq!(json(&path, &[]).flow()["prober"], "both");
    let page = dir.path().join("both.html");
    let (status, _, err) = crate::in_process(&[
        "-r",
        path.to_str().unwrap(),
        "--summary",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{}", String::from_utf8_lossy(&err));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("both sides probe after"), "no settings note");
    assert!(!html.contains("the both probes"));
}

/// Payload text is data, not markup: a request for `/<!--<script>` once
/// opened an HTML comment inside the data block that swallowed the page's
/// script (no lanes, no table). In the browser the lane and row are there.
#[test]
fn a_request_for_an_html_comment_cannot_blank_the_report() {
    use crate::craft::*;
    let _turn = crate::take_turns();
    let dir = tempfile::TempDir::new().unwrap();
    let mut c = Conn::new("10.0.0.2:50000", "10.0.0.1:80", Link::Ethernet);
    c.handshake(10, 20)
        .exchange(Client, b"GET /<!--<script> HTTP/1.1\r\nHost: x\r\n\r\n")
        .exchange(
            Server,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        );
    let path = dir.path().join("comment.pcap");
    c.write_pcap(&path, PcapOpts::default());
    let page = dir.path().join("comment.html");
    let run = kacap()
        .args(["-r", path.to_str().unwrap(), "--summary", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(run.status.success());
    let html = std::fs::read_to_string(&page).unwrap();
    let data = html.split("<script id=\"data\"").nth(1).unwrap();
    let data = &data[..data.find("</script>").unwrap()];
    assert!(!data[1..].contains('<'), "markup in the data block");
    if let Some(browser) = chromium_or_skip() {
        let d = dom(browser, &page, "");
        assert!(
            d.contains("id=\"lane-1\""),
            "no lane: the script did not run"
        );
        assert!(d.contains("<tr data-flow=\"1\""), "no row");
    }
}

/// Every text field that reaches a report, with markup in it: an HTTP
/// request line and header, HTTP/2 GOAWAY debug data, the capture file's
/// name. The HTML page draws every lane and row and runs no payload; the
/// SVG diagram parses as XML with no element or attribute from a payload.
/// (WebSocket close reasons are not kept, so they reach no report.)
#[test]
fn hostile_payload_text_in_every_field_is_data_in_every_report() {
    use crate::craft::*;
    let _turn = crate::take_turns();
    const HOSTILE: &str = "</script><svg onload=alert(1)><!--<script>";
    let dir = tempfile::TempDir::new().unwrap();
    let mut http = Conn::new("10.0.0.2:50000", "10.0.0.1:80", Link::Ethernet);
    http.handshake(10, 20)
        .exchange(
            Client,
            format!("GET /<!--<script>{HOSTILE} HTTP/1.1\r\nHost: {HOSTILE}\r\nUser-Agent: {HOSTILE}\r\n\r\n").as_bytes(),
        )
        .exchange(Server, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let frame = |kind: u8, flags: u8, payload: &[u8]| {
        let n = payload.len();
        let mut f = vec![
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    };
    let mut h2 = Conn::new("10.0.0.2:50001", "10.0.0.1:50051", Link::Ethernet);
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend(frame(4, 0, &[]));
    let mut goaway = vec![0, 0, 0, 1, 0, 0, 0, 0x0b];
    goaway.extend_from_slice(HOSTILE.as_bytes());
    h2.handshake(30, 40)
        .exchange(Client, &preface)
        .exchange(Server, &frame(4, 0, &[]))
        .exchange(Client, &frame(6, 0, b"00000001"))
        .exchange(Server, &frame(6, 1, b"00000001"))
        .exchange(Server, &frame(7, 0, &goaway));
    let mut frames = http.frames.clone();
    frames.extend(h2.frames.iter().map(|(t, f)| (t + 5.0, f.clone())));
    let path = dir
        .path()
        .join(format!("cap{HOSTILE}.pcap").replace('/', "_"));
    write_pcap(&path, 1, &frames, PcapOpts::default());
    let (page, svg) = (dir.path().join("report.html"), dir.path().join("d.svg"));
    let run = kacap()
        .arg("-r")
        .arg(&path)
        .args(["--json", "--summary", "--html"])
        .arg(&page)
        .arg("--diagram-svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = String::from_utf8(run.stdout).unwrap();
    assert!(
        out.contains("</script><svg onload"),
        "the GOAWAY debug text in the JSON: {out}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let data = html.split("<script id=\"data\"").nth(1).unwrap();
    let data = &data[..data.find("</script>").unwrap()];
    assert!(!data[1..].contains('<'), "markup in the data block");
    assert!(
        !html.contains("<svg onload"),
        "markup from a payload in the page"
    );
    let doc = std::fs::read_to_string(&svg).unwrap();
    let xml = roxmltree::Document::parse(&doc).expect("the SVG parses");
    for node in xml.descendants().filter(|n| n.is_element()) {
        assert!(
            node.attributes().all(|a| a.name() != "onload"),
            "an onload attribute in the SVG"
        );
        assert_ne!(
            node.tag_name().name(),
            "script",
            "a script element in the SVG"
        );
    }
    if let Some(browser) = chromium_or_skip() {
        let d = dom(browser, &page, "");
        for flow in [1, 2] {
            assert!(
                d.contains(&format!("id=\"lane-{flow}\"")),
                "no lane {flow}: the script did not run"
            );
            assert!(
                d.contains(&format!("<tr data-flow=\"{flow}\"")),
                "no row {flow}"
            );
        }
        assert!(!d.contains("<svg onload"), "a payload became markup");
    }
}
