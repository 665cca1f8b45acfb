//! Records that join the logs people keep (#17): the Community ID on flow
//! records, and Zeek logs (`--log-format zeek|zeek-json`) read back the way
//! zeek-cut reads them.

use crate::{fixture, json, text};
use serde_json::Value;

/// zeek-cut's reading of a Zeek ASCII log (zeek/zeek-aux, zeek-cut.c):
/// `#separator \xNN` sets the separator, `#unset_field` the unset marker,
/// `#fields` names the columns and must be followed by `#types`; other
/// lines are records, split on the separator, selected by column name.
/// (Zeek is not in Debian's archive, so CI cannot run the real zeek-cut;
/// this follows its C source rule by rule.)
fn zeek_cut(log: &str, columns: &[&str]) -> Vec<Vec<String>> {
    let mut sep = '\t';
    let mut fields: Vec<String> = Vec::new();
    let mut expect_types = false;
    let mut rows = Vec::new();
    for line in log.lines() {
        if expect_types {
            assert!(
                line.starts_with("#types"),
                "bad log header (missing #types line)"
            );
            expect_types = false;
        }
        if let Some(rest) = line.strip_prefix("#separator ") {
            let hex = rest.strip_prefix("\\x").expect("#separator \\xNN");
            sep = u8::from_str_radix(hex, 16).unwrap() as char;
        } else if let Some(rest) = line.strip_prefix("#fields") {
            fields = rest
                .trim_start_matches(sep)
                .split(sep)
                .map(String::from)
                .collect();
            expect_types = true;
        } else if line.starts_with('#') {
            continue;
        } else {
            let cells: Vec<&str> = line.split(sep).collect();
            assert_eq!(
                cells.len(),
                fields.len(),
                "a record with a field count unlike #fields: {line}"
            );
            rows.push(
                columns
                    .iter()
                    .map(|c| {
                        let i = fields
                            .iter()
                            .position(|f| f == c)
                            .unwrap_or_else(|| panic!("no column {c}"));
                        cells[i].to_string()
                    })
                    .collect(),
            );
        }
    }
    rows
}

#[test]
fn community_id_on_flow_records_matches_the_reference_implementation() {
    // Computed by the spec's reference implementation (PyPI communityid,
    // CommunityID().calc(FlowTuple.make_tcp("127.0.0.1", "127.0.0.1",
    // 52430, 2333))); the spec's own vectors are unit tests in
    // src/report/community_id.rs.
    let j = json(&fixture("dead-peer.pcap"), &["--summary"]);
    assert_eq!(j.flow()["community_id"], "1:ziMyAAj18nhLGibPSE65eYFFWts=");
}

#[test]
fn the_zeek_log_reads_back_with_zeek_cut_rules() {
    let path = fixture("http-pool-race.pcap");
    let log = text(&["-r", path.to_str().unwrap(), "--log-format", "zeek"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "#separator \\x09");
    assert_eq!(lines[4], "#path\tkacap");
    assert!(lines.last().unwrap().starts_with("#close\t"));
    let rows = zeek_cut(
        &log,
        &[
            "id.orig_h",
            "id.resp_p",
            "community_id",
            "verdict",
            "closed_by",
            "ka_idle",
        ],
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], "127.0.0.1");
    assert_eq!(rows[0][1], "8080");
    assert!(rows[0][2].starts_with("1:"));
    assert_eq!(rows[0][3], "stale-connection");
    assert_eq!(rows[0][5], "-", "unset fields are '-'");
    assert_eq!(rows[1][3], "no-keepalive");
    // The same connections as the JSON flow records, joined by community_id.
    let j = json(&path, &["--summary"]);
    for (row, flow) in rows.iter().zip(&j.flows) {
        assert_eq!(flow["community_id"], row[2].as_str());
        assert_eq!(flow["verdict"], row[3].as_str());
    }

    let dead = text(&[
        "-r",
        fixture("dead-peer.pcap").to_str().unwrap(),
        "--log-format",
        "zeek",
    ]);
    let rows = zeek_cut(
        &dead,
        &[
            "verdict",
            "prober",
            "ka_interval",
            "ka_count",
            "probes_unanswered",
        ],
    );
    assert_eq!(rows[0][0], "dead-peer");
    assert_eq!(rows[0][1], "client");
    assert!(rows[0][2].starts_with("1.02"), "{:?}", rows[0]);
    assert_eq!((rows[0][3].as_str(), rows[0][4].as_str()), ("2", "2"));
}

#[test]
fn the_zeek_json_log_has_zeeks_flat_keys() {
    let log = text(&[
        "-r",
        fixture("dead-peer.pcap").to_str().unwrap(),
        "--log-format",
        "zeek-json",
    ]);
    let rec: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(rec["id.orig_h"], "127.0.0.1");
    assert_eq!(rec["id.resp_p"], 2333);
    assert_eq!(rec["verdict"], "dead-peer");
    assert!(rec["uid"].as_str().unwrap().starts_with('K'));
    assert!(
        rec.get("app_keepalive").is_none(),
        "unset fields are left out"
    );
}

/// docs/fleet.md's recipe, as written there: JSON flow records loaded into
/// SQLite by its `load.py`, then queried per server and joined by
/// Community ID.
#[test]
fn the_fleet_recipe_loads_json_into_sqlite_and_joins_by_community_id() {
    use std::io::Write;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/fleet.md")).unwrap();
    let load = doc
        .split("with `load.py`:\n\n```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("load.py in docs/fleet.md");
    let dir = tempfile::TempDir::new().unwrap();
    let script = dir.path().join("load.py");
    std::fs::write(&script, load).unwrap();
    let db = dir.path().join("flows.db");
    // The same capture seen from two hosts, and another capture.
    for (host, name) in [
        ("client-a", "dead-peer.pcap"),
        ("server-b", "dead-peer.pcap"),
        ("web", "http.pcap"),
    ] {
        let records = text(&["-r", fixture(name).to_str().unwrap(), "--json", "--summary"]);
        let mut p = std::process::Command::new("python3")
            .arg(&script)
            .arg(&db)
            .arg(host)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        p.stdin
            .take()
            .unwrap()
            .write_all(records.as_bytes())
            .unwrap();
        assert!(p.wait().unwrap().success());
    }
    let query = |sql: &str| -> String {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall())"])
            .arg(&db)
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let per_server =
        query("select server, verdict, count(*) from flows group by 1, 2 order by 3 desc");
    assert!(
        per_server.contains("('127.0.0.1:8000', 'no-keepalive', 4)"),
        "{per_server}"
    );
    assert!(
        per_server.contains("('127.0.0.1:2333', 'dead-peer', 2)"),
        "{per_server}"
    );
    let joined = query(
        "select a.host, b.host, a.verdict, b.verdict from flows a join flows b using (community_id) where a.host < b.host",
    );
    assert_eq!(
        joined.trim(),
        "[('client-a', 'server-b', 'dead-peer', 'dead-peer')]"
    );
}

#[test]
fn with_v_every_json_packet_record_carries_the_community_id() {
    let j = json(&fixture("healthy.pcap"), &["-v"]);
    let id = j.flow()["community_id"].clone();
    assert!(j.packets.iter().all(|p| p["community_id"] == id));
    let plain = json(&fixture("healthy.pcap"), &[]);
    assert!(
        plain
            .packets
            .iter()
            .all(|p| p.get("community_id").is_none())
    );
}
