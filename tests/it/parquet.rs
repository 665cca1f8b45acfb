//! `--parquet FILE`: one typed row per connection, read back by DuckDB (its
//! Python package: CI installs it), which answers a fleet question over a
//! glob of outputs with one query.

use crate::{fixture, kacap};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use tempfile::TempDir;

/// Runs `sql` in DuckDB (Python), rows as JSON arrays; `None` without the
/// package (CI installs it: there the test must not skip).
fn duckdb(sql: &str) -> Option<Vec<Value>> {
    let script = "import duckdb, json, sys\n\
                  for row in duckdb.sql(sys.argv[1]).fetchall():\n\
                  \x20   print(json.dumps(row, default=str))";
    let out = Command::new("python3")
        .args(["-c", script, sql])
        .output()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named 'duckdb'") {
            assert!(
                !std::env::var("KACAP_LIVE_TESTS").is_ok_and(|v| v == "1"),
                "duckdb missing (python3 -m pip install duckdb)"
            );
            return None;
        }
        panic!("duckdb: {err}");
    }
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

fn write(input: &Path, out: &Path, more: &[&str]) -> Vec<Value> {
    let run = kacap()
        .arg("-r")
        .arg(input)
        .args(["--json", "--summary", "--parquet"])
        .arg(out)
        .args(more)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "flow")
        .collect()
}

const FIXTURES: [&str; 14] = [
    "healthy.pcap",
    "dead-peer.pcap",
    "peer-reboot.pcap",
    "http.pcap",
    "http-pool-race.pcap",
    "idle-drop.pcap",
    "retransmit-timeout.pcap",
    "grpc-keepalive.pcap",
    "websocket-1006.pcap",
    "redis.pcap",
    "fragments.pcap",
    "idle-start-dead.pcap",
    "grpc-tls-keepalive.pcap",
    "grpc-too-many-pings.pcap",
];

/// Every row is its connection's JSON record, typed; nothing is left over
/// for `extra` (a new field in the record needs its column).
#[test]
fn each_row_is_its_connections_record() {
    let dir = TempDir::new().unwrap();
    for name in FIXTURES {
        let out = dir.path().join(format!("{name}.parquet"));
        let records = write(&fixture(name), &out, &[]);
        let sql = format!(
            "select flow, client_ip || ':' || client_port, verdict, probes, keepalive_idle, \
             community_id, epoch_us(first_ts), http_requests, app_protocol, extra \
             from '{}' order by flow",
            out.display()
        );
        let Some(rows) = duckdb(&sql) else {
            eprintln!("skipped: no duckdb");
            return;
        };
        assert_eq!(rows.len(), records.len(), "{name}");
        for (row, r) in rows.iter().zip(&records) {
            assert_eq!(row[0], r["flow"], "{name}");
            assert_eq!(
                row[1].as_str(),
                r["client"]
                    .as_str()
                    .map(|c| c.trim_start_matches('['))
                    .map(|c| c.replace("]:", ":"))
                    .as_deref()
            );
            assert_eq!(row[2], r["verdict"], "{name}");
            assert_eq!(row[3], r["probes"], "{name}");
            assert_eq!(row[4], r["keepalive"]["idle"], "{name}");
            assert_eq!(row[5], r["community_id"], "{name}");
            let us = (r["first_ts"].as_f64().unwrap() * 1e6).round() as i64;
            assert_eq!(row[6].as_i64(), Some(us), "{name}");
            assert_eq!(row[7], r["http"]["requests"], "{name}");
            assert_eq!(row[8], r["app_keepalive"]["protocol"], "{name}");
            assert_eq!(row[9], Value::Null, "{name}: a field without a column");
        }
    }
}

/// The fleet question over 100 outputs with one query: dead peers per
/// server, as the JSON records count them.
#[test]
fn one_query_over_a_hundred_outputs() {
    let dir = TempDir::new().unwrap();
    let mut expected = std::collections::BTreeMap::<String, i64>::new();
    for i in 0..100 {
        let name = FIXTURES[i % FIXTURES.len()];
        let out = dir.path().join(format!("{i:03}.parquet"));
        let threads = if i % 2 == 0 { "1" } else { "2" };
        for r in write(&fixture(name), &out, &["--threads", threads]) {
            if r["verdict"] == "dead-peer" {
                *expected
                    .entry(r["server"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    let sql = format!(
        "select server_ip || ':' || server_port as server, count(*) as dead \
         from read_parquet('{}/*.parquet') where verdict = 'dead-peer' \
         group by all order by server",
        dir.path().display()
    );
    let started = std::time::Instant::now();
    let Some(rows) = duckdb(&sql) else {
        eprintln!("skipped: no duckdb");
        return;
    };
    eprintln!(
        "duckdb over 100 outputs: {:?} (with python's start)",
        started.elapsed()
    );
    let got: std::collections::BTreeMap<String, i64> = rows
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_i64().unwrap()))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}

#[test]
fn a_bad_parquet_target_is_one_line_and_touches_nothing() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in.pcap");
    std::fs::copy(fixture("healthy.pcap"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    for (args, says) in [
        (
            vec!["--parquet", input.to_str().unwrap()],
            "is the file being read",
        ),
        (
            vec!["--parquet", dir.path().to_str().unwrap()],
            "is a directory",
        ),
        (
            vec!["--parquet", "/nonexistent-dir/x.parquet"],
            "no directory",
        ),
    ] {
        let out = kacap().arg("-r").arg(&input).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let two = kacap()
        .arg("-r")
        .arg(&input)
        .arg("-r")
        .arg(&input)
        .args(["--parquet", "/tmp/x.parquet"])
        .output()
        .unwrap();
    assert_eq!(two.status.code(), Some(2));
    assert_eq!(std::fs::read(&input).unwrap(), before);
}
