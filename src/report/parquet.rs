//! `--parquet FILE`: one row per connection, typed columns, for an engine
//! that reads many files at once (DuckDB, ClickHouse, Spark, Trino; see
//! docs/fleet.md). Written with the Apache Arrow project's `parquet` crate
//! (its column writers, without Arrow), Snappy-compressed, a row group per
//! 16,384 connections: memory holds one row group at most, on a thread of
//! its own.
//!
//! The columns are the JSON flow record's (docs/json.md), each analysis's
//! object flattened (`keepalive.idle` → `keepalive_idle`): the record is
//! what every analysis says of its connection, so the columns are too. A
//! field the schema below does not name yet goes, as JSON, into `extra`
//! (the tests keep it empty on every fixture: a new field gets a column).

use super::json::{JsonOptions, JsonSink};
use crate::pipeline::event::{Sink, Stats};
use crate::pipeline::summary::FlowSummary;
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::{Map, Value};
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

/// A column's type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Text,
    Bool,
    /// Seconds since the epoch in the record, microseconds (UTC) here.
    Time,
}

/// The columns: name, the record's field (`a.b`: field `b` of object `a`),
/// type. Their order is the file's.
const COLUMNS: &[(&str, &str, Kind)] = &[
    ("flow", "flow", Kind::Int),
    ("client_ip", "client.ip", Kind::Text),
    ("client_port", "client.port", Kind::Int),
    ("server_ip", "server.ip", Kind::Text),
    ("server_port", "server.port", Kind::Int),
    ("community_id", "community_id", Kind::Text),
    ("first_ts", "first_ts", Kind::Time),
    ("last_ts", "last_ts", Kind::Time),
    ("packets", "packets", Kind::Int),
    ("handshake", "handshake", Kind::Text),
    ("prober", "prober", Kind::Text),
    ("probes", "probes", Kind::Int),
    ("probes_answered", "probes_answered", Kind::Int),
    ("probes_unanswered", "probes_unanswered", Kind::Int),
    ("probes_rst", "probes_rst", Kind::Int),
    ("keepalive_idle", "keepalive.idle", Kind::Float),
    ("keepalive_interval", "keepalive.interval", Kind::Float),
    ("keepalive_count", "keepalive.count", Kind::Int),
    (
        "keepalive_count_at_least",
        "keepalive.count_at_least",
        Kind::Bool,
    ),
    ("close", "close", Kind::Text),
    ("closed_by", "closed_by", Kind::Text),
    ("verdict", "verdict", Kind::Text),
    ("idle_survived", "idle_timeout.survived", Kind::Float),
    (
        "idle_killed_after",
        "idle_timeout.killed_after",
        Kind::Float,
    ),
    ("idle_cause", "idle_timeout.cause", Kind::Text),
    ("retransmit_count", "retransmit.count", Kind::Int),
    (
        "retransmit_gave_up_after",
        "retransmit.gave_up_after",
        Kind::Float,
    ),
    ("http_requests", "http.requests", Kind::Int),
    ("http_responses", "http.responses", Kind::Int),
    ("http_keep_alive", "http.keep_alive", Kind::Bool),
    ("http_version", "http.version", Kind::Text),
    (
        "http_server_idle_close",
        "http.server_idle_close",
        Kind::Float,
    ),
    (
        "http_client_idle_close",
        "http.client_idle_close",
        Kind::Float,
    ),
    (
        "http_advertised_timeout",
        "http.advertised_timeout",
        Kind::Float,
    ),
    ("http_stale_request", "http.stale_request", Kind::Bool),
    ("app_protocol", "app_keepalive.protocol", Kind::Text),
    ("app_pings", "app_keepalive.pings", Kind::Int),
    ("app_pongs", "app_keepalive.pongs", Kind::Int),
    ("app_interval", "app_keepalive.interval", Kind::Float),
    ("app_unanswered", "app_keepalive.unanswered", Kind::Int),
    ("app_pinger", "app_keepalive.pinger", Kind::Text),
    ("app_rtt", "app_keepalive.rtt", Kind::Float),
    ("app_close_code", "app_keepalive.close_code", Kind::Int),
    ("app_abrupt", "app_keepalive.abrupt", Kind::Bool),
    (
        "app_exchange_request",
        "app_keepalive.exchange.0",
        Kind::Int,
    ),
    (
        "app_exchange_response",
        "app_keepalive.exchange.1",
        Kind::Int,
    ),
    ("goaway_error", "goaway.error", Kind::Text),
    ("goaway_debug", "goaway.debug", Kind::Text),
    ("goaway_from", "goaway.from", Kind::Text),
    ("goaway_last_stream", "goaway.last_stream", Kind::Int),
    ("extra", "", Kind::Text),
];

/// Connections per row group.
const ROW_GROUP: usize = 16_384;

/// The file's schema, in Parquet's message syntax.
fn schema() -> String {
    let mut s = String::from("message kacap_flow {\n");
    for (name, _, kind) in COLUMNS {
        let t = match kind {
            Kind::Int => "int64",
            Kind::Float => "double",
            Kind::Text => "binary",
            Kind::Bool => "boolean",
            Kind::Time => "int64",
        };
        let note = match kind {
            Kind::Text => " (STRING)",
            Kind::Time => " (TIMESTAMP(MICROS,true))",
            _ => "",
        };
        s.push_str(&format!("  optional {t} {name}{note};\n"));
    }
    s.push('}');
    s
}

/// A column's values of the row group being gathered (nulls as
/// definition level 0).
#[derive(Default)]
struct Column {
    defs: Vec<i16>,
    ints: Vec<i64>,
    floats: Vec<f64>,
    texts: Vec<ByteArray>,
    bools: Vec<bool>,
}

/// The rows being gathered and the file they go to (on the writer's
/// thread): a row group written every [`ROW_GROUP`] rows, the rest and the
/// footer at the end.
struct Table {
    writer: SerializedFileWriter<File>,
    columns: Vec<Column>,
    rows: usize,
}

fn err(e: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(e.to_string())
}

impl Table {
    fn add(&mut self, record: &Map<String, Value>) {
        let paths = paths();
        for (((_, _, kind), col), path) in COLUMNS.iter().zip(&mut self.columns).zip(paths) {
            let value = lookup(record, path);
            let value = match (kind, value) {
                (_, None | Some(Value::Null)) => None,
                (Kind::Int, Some(v)) => v.as_i64().map(|i| col.ints.push(i)),
                (Kind::Float, Some(v)) => v.as_f64().map(|f| col.floats.push(f)),
                (Kind::Time, Some(v)) => {
                    v.as_f64().map(|s| col.ints.push((s * 1e6).round() as i64))
                }
                (Kind::Text, Some(v)) => v
                    .as_str()
                    .map(|s| col.texts.push(ByteArray::from(s.as_bytes().to_vec()))),
                (Kind::Bool, Some(v)) => v.as_bool().map(|b| col.bools.push(b)),
            };
            col.defs.push(i16::from(value.is_some()));
        }
        // What no column took.
        let extra = leftover(record);
        let last = self.columns.last_mut().expect("extra");
        *last.defs.last_mut().expect("just pushed") = i16::from(!extra.is_empty());
        if !extra.is_empty() {
            let text = Value::Object(extra).to_string();
            last.texts.push(ByteArray::from(text.into_bytes()));
        }
        self.rows += 1;
    }

    /// Writes the rows gathered as one row group.
    fn flush(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(err)?;
        for ((_, _, kind), col) in COLUMNS.iter().zip(&mut self.columns) {
            let mut w = group.next_column().map_err(err)?.expect("a column");
            let defs = Some(&col.defs[..]);
            match kind {
                Kind::Int | Kind::Time => w.typed::<Int64Type>().write_batch(&col.ints, defs, None),
                Kind::Float => w.typed::<DoubleType>().write_batch(&col.floats, defs, None),
                Kind::Text => w
                    .typed::<ByteArrayType>()
                    .write_batch(&col.texts, defs, None),
                Kind::Bool => w.typed::<BoolType>().write_batch(&col.bools, defs, None),
            }
            .map_err(err)?;
            w.close().map_err(err)?;
            *col = Column::default();
        }
        group.close().map_err(err)?;
        self.rows = 0;
        Ok(())
    }

    /// One connection's JSON record.
    fn record(&mut self, line: &[u8]) -> io::Result<()> {
        let mut record: Map<String, Value> = match serde_json::from_slice(line) {
            Ok(Value::Object(m)) => m,
            _ => return Err(io::Error::other("a flow record that is not JSON")),
        };
        for side in ["client", "server"] {
            if let Some((ip, port)) = record.get(side).and_then(|v| v.as_str()).and_then(endpoint) {
                record.insert(side.into(), serde_json::json!({ "ip": ip, "port": port }));
            }
        }
        self.add(&record);
        if self.rows >= ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }
}

/// The sink: formats each connection's JSON record here and hands it to a
/// thread of its own, which makes the rows and writes the file (the
/// reader and the analyzers are not held up by it).
pub struct ParquetSink {
    json: JsonSink<Vec<u8>>,
    to: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    path: String,
}

impl ParquetSink {
    /// A sink writing to `file` (created by the caller; `path` names it in
    /// errors).
    pub fn new(file: File, path: String) -> io::Result<ParquetSink> {
        let schema = Arc::new(parse_message_type(&schema()).map_err(err)?);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("kacap {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(file, schema, Arc::new(props)).map_err(err)?;
        let mut table = Table {
            writer,
            columns: COLUMNS.iter().map(|_| Column::default()).collect(),
            rows: 0,
        };
        let (to, from) = sync_channel::<Vec<u8>>(1024);
        let writer = std::thread::Builder::new()
            .name("kacap-parquet".into())
            .spawn(move || {
                for line in from {
                    table.record(&line)?;
                }
                table.flush()?;
                table.writer.close().map_err(err)?;
                Ok(())
            })?;
        Ok(ParquetSink {
            json: JsonSink::new(Vec::new(), JsonOptions::default()),
            to: Some(to),
            writer: Some(writer),
            path,
        })
    }

    /// The writer's thread ended: its error, named by the file.
    fn ended(&mut self) -> io::Result<()> {
        self.to = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => Err(io::Error::other(format!("{}: {e}", self.path))),
            Some(Err(_)) => Err(io::Error::other(format!(
                "{}: its writer failed",
                self.path
            ))),
            _ => Ok(()),
        }
    }
}

/// A step of a column's path in the record: a field, or an element.
enum Step {
    Field(&'static str),
    Element(usize),
}

/// Each column's path, in steps (`a.b.0`: element 0 of field `b` of
/// object `a`; none for `extra`), made once.
fn paths() -> &'static [Vec<Step>] {
    static PATHS: std::sync::OnceLock<Vec<Vec<Step>>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        COLUMNS
            .iter()
            .map(|(_, p, _)| {
                p.split('.')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().map_or(Step::Field(s), Step::Element))
                    .collect()
            })
            .collect()
    })
}

/// The record's value at `path`.
fn lookup<'a>(record: &'a Map<String, Value>, path: &[Step]) -> Option<&'a Value> {
    let (Step::Field(top), rest) = path.split_first()? else {
        return None;
    };
    let mut v = record.get(*top)?;
    for step in rest {
        v = match step {
            Step::Field(k) => v.get(k)?,
            Step::Element(i) => v.get(i)?,
        };
    }
    Some(v)
}

/// The record's fields no column names (`type` aside), as a record.
fn leftover(record: &Map<String, Value>) -> Map<String, Value> {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<(&str, &str)>> =
        std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        COLUMNS
            .iter()
            .filter(|(_, p, _)| !p.is_empty())
            .map(|(_, p, _)| {
                let mut parts = p.split('.');
                (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
            })
            .collect()
    });
    let mut extra = Map::new();
    for (k, v) in record {
        match v {
            _ if k == "type" || known.contains(&(k.as_str(), "")) => {}
            Value::Object(o) => {
                let rest: Map<String, Value> = o
                    .iter()
                    .filter(|(ik, _)| !known.contains(&(k.as_str(), ik.as_str())))
                    .map(|(ik, iv)| (ik.clone(), iv.clone()))
                    .collect();
                if !rest.is_empty() {
                    extra.insert(k.clone(), Value::Object(rest));
                }
            }
            _ => {
                extra.insert(k.clone(), v.clone());
            }
        }
    }
    extra
}

/// An `ip:port` or `[ip]:port` endpoint's address and port.
fn endpoint(s: &str) -> Option<(String, i64)> {
    let addr: std::net::SocketAddr = s.parse().ok()?;
    Some((addr.ip().to_string(), i64::from(addr.port())))
}

impl Sink for ParquetSink {
    fn packet(&mut self, _ev: &crate::pipeline::event::PacketEvent) -> io::Result<()> {
        Ok(())
    }

    fn flow(&mut self, flow: &FlowSummary) -> io::Result<()> {
        self.json.flow(flow)?;
        let line = std::mem::take(self.json.get_mut());
        let sent = self.to.as_ref().map(|to| to.send(line));
        if let Some(Err(_)) = sent {
            // The writer stopped: say why.
            self.ended()?;
        }
        Ok(())
    }

    fn finish(&mut self, _stats: &Stats) -> io::Result<()> {
        self.ended()
    }
}
