//! What an analysis says: [`Describe`], the one trait every output asks.
//!
//! An analysis owns its words as it owns its state: the annotation of a
//! segment, its JSON members, its table cells, its Zeek fields, its
//! `--explain` paragraphs, its diagram labels, its metrics. The registry
//! generates the loops the outputs run over (`Notes::words`,
//! `Findings::json`, …), in the registry's order; an output never reads an
//! analysis's findings itself. Every method has a default that says
//! nothing, so an analysis implements only what it has to say.
//!
//! An analysis's words reach its own part of the registry's records through
//! [`NoteOf`], [`FindingsOf`] and [`MarkOf`] (generic bounds: the words
//! cannot name another analysis's part). What more than one analysis's
//! words need is in [`Shared`], which each fills from its own findings
//! ([`Describe::share`]).

use super::Analysis;
use super::event::{Event, Shared, Step, Summary};
use crate::core::time::Timestamp;
use crate::host::sysctls::Sysctls;
use std::io;

/// The registry's notes of a segment hold `A`'s.
pub trait NoteOf<A: Analysis> {
    fn note(&self) -> &A::Note;
}

/// The registry's findings of a connection hold `A`'s.
pub trait FindingsOf<A: Analysis> {
    fn found(&self) -> &A::Summary;
}

/// The registry's marks of a step hold `A`'s.
pub trait MarkOf<A: Describe> {
    fn mark(&self) -> &A::Mark;
}

/// A column of the summary table.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub header: &'static str,
    /// Numbers: aligned right.
    pub right: bool,
    /// The HTML report's sort key for it.
    pub key: &'static str,
}

/// A value of a Zeek log field.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Unset,
    Str(String),
    Count(u64),
    Secs(f64),
}

/// What an analysis says, in every output. See the module's account.
pub trait Describe: Analysis + Sized {
    /// What a kept step (`--explain`, `--diagram`, `--html`) holds of this
    /// analysis's note: small, a connection keeps hundreds.
    type Mark: Copy + Default + std::fmt::Debug;
    /// What `--metrics` keeps of its findings over the whole run.
    type Tally: Default + std::fmt::Debug + Send;
    /// What `--metrics` keeps per server.
    type ServerTally: Default + Copy + std::fmt::Debug + Send;
    /// What the text report gathers from every connection reported, for
    /// its advice after the table.
    type Evidence: Default + std::fmt::Debug + Send;

    /// Its table columns, JSON members and Zeek fields stand among the
    /// core's, before how the connection ended (keepalive: what kacap is
    /// about, on every connection); the others' come after, and a table
    /// column only when a connection has something in it.
    const CORE: bool = false;
    /// Its columns in the full table.
    const COLUMNS: &'static [Column] = &[];
    /// Its cell's header in the compact table (`""`: none).
    const COMPACT: &'static str = "";
    /// Its Zeek log fields: name and Zeek type.
    const ZEEK: &'static [(&'static str, &'static str)] = &[];

    /// What a step keeps of `note`.
    fn mark(note: &Self::Note) -> Self::Mark;

    // ---- one segment

    /// The timeline: words that say what the segment is in place of the
    /// core's (`keepalive probe #2 …`); `false` when it has none.
    fn lead<N: NoteOf<Self>>(_ev: &Event<N>, _out: &mut Vec<u8>) -> io::Result<bool> {
        Ok(false)
    }
    /// The timeline: words after what the segment is (`; HTTP GET / …`).
    fn words<N: NoteOf<Self>>(_ev: &Event<N>, _out: &mut Vec<u8>) -> io::Result<()> {
        Ok(())
    }
    /// The timeline: the words' colour (an ANSI SGR code) when it has one.
    fn color<N: NoteOf<Self>>(_ev: &Event<N>) -> Option<&'static str> {
        None
    }
    /// Live: what to expect next (`; next probe expected in ~…`).
    fn expect<N: NoteOf<Self>>(_ev: &Event<N>, _out: &mut Vec<u8>) -> io::Result<()> {
        Ok(())
    }
    /// The segment means something beyond its kind (`--html` keeps its line).
    fn telling(_note: &Self::Note) -> bool {
        false
    }
    /// Members of the JSON packet record (`,"probe":1,…`).
    fn json_packet<N: NoteOf<Self>>(_ev: &Event<N>, _out: &mut Vec<u8>) {}
    /// Members of a JSON revise record.
    fn json_revise(_note: &Self::Note, _out: &mut Vec<u8>) {}
    /// What a revised segment is now, in a word (`#2`), for the timeline's
    /// revision line.
    fn revised(_note: &Self::Note) -> Option<String> {
        None
    }

    // ---- one kept step

    /// A diagram arrow's label.
    fn label<M: MarkOf<Self>>(_s: &Step<M>) -> Option<String> {
        None
    }
    /// What a diagram's right margin says about the step, looking at the
    /// connection's kept steps `all`.
    fn remark<M: MarkOf<Self>>(_s: &Step<M>, _all: &[Step<M>]) -> Option<String> {
        None
    }
    /// Nothing arrived: the diagram's arrow stops short.
    fn lost<M: MarkOf<Self>>(_s: &Step<M>, _all: &[Step<M>]) -> bool {
        false
    }
    /// The HTML report's mark shape for the step, when it has its own.
    fn shape<M: MarkOf<Self>>(_s: &Step<M>, _all: &[Step<M>]) -> Option<&'static str> {
        None
    }

    // ---- one connection

    /// What it tells the other analyses' words.
    fn share(_own: &Self::Summary, _shared: &mut Shared) {}
    /// It has something to say about the connection (a table column
    /// appears when one connection has).
    fn shown<F: FindingsOf<Self>>(_f: &Summary<F>) -> bool {
        Self::CORE
    }
    /// Members of the JSON flow record.
    fn json_flow<F: FindingsOf<Self>>(_f: &Summary<F>, _out: &mut Vec<u8>) {}
    /// The HTML report's members for the connection (a JS object's).
    fn html<F: FindingsOf<Self>>(_f: &Summary<F>, _out: &mut String) {}
    /// Its full-table cells, one per column.
    fn cells<F: FindingsOf<Self>>(_f: &Summary<F>) -> Vec<String> {
        Vec::new()
    }
    /// Its compact-table cell.
    fn compact_cell<F: FindingsOf<Self>>(_f: &Summary<F>) -> String {
        String::new()
    }
    /// Its Zeek log values, one per field.
    fn zeek<F: FindingsOf<Self>>(_f: &Summary<F>, _out: &mut Vec<Field>) {}
    /// `flow N ended: VERDICT…`: what its own verdict means here, with the
    /// words' joint (`: 4 of 4 probes answered`, ` after 2 unanswered
    /// probes`).
    fn ended<F: FindingsOf<Self>>(_f: &Summary<F>) -> Option<String> {
        None
    }
    /// What it inferred of the connection's configuration, in a phrase
    /// (`--annotate` writes it beside the verdict on the last frame).
    fn inferred<F: FindingsOf<Self>>(_f: &Summary<F>) -> Option<String> {
        None
    }
    /// `--explain`: what it saw, before the account of the end.
    fn context<F: FindingsOf<Self>, M: MarkOf<Self>>(
        _f: &Summary<F>,
        _steps: &[Step<M>],
        _o: &mut String,
    ) {
    }
    /// `--explain`: the account of how the connection fared, when this
    /// analysis gives it (the verdict's owner first, then in order); `true`
    /// when it did.
    fn account<F: FindingsOf<Self>, M: MarkOf<Self>>(
        _f: &Summary<F>,
        _steps: &[Step<M>],
        _o: &mut String,
    ) -> bool {
        false
    }
    /// `--sockets`: what it saw, checked against the joined sockets'
    /// configuration.
    fn checks<F: FindingsOf<Self>>(_f: &Summary<F>) -> Vec<String> {
        Vec::new()
    }
    /// Live, after the table: what it expects of the connections still open
    /// and how they compare with this host's `sysctls`.
    fn live_notes<F: FindingsOf<Self>>(
        _flows: &[Summary<F>],
        _sysctls: Option<Sysctls>,
        _now: Timestamp,
        _o: &mut Vec<String>,
    ) {
    }

    // ---- across connections

    /// Gathers what the advice after the table needs from a reported
    /// connection (every one, shown in the table or not).
    fn gather<F: FindingsOf<Self>>(_e: &mut Self::Evidence, _f: &Summary<F>) {}
    /// The advice after the table (paragraphs, each line ending in `\n`).
    fn advice(_e: &Self::Evidence) -> String {
        String::new()
    }
    /// `--explain`, after the connections: what they show together, a
    /// paragraph each.
    fn afterword<F: FindingsOf<Self>>(_flows: &[&Summary<F>], _o: &mut Vec<String>) {}
    /// `--explain`, last: a footnote on what the connections are not.
    fn footnote<F: FindingsOf<Self>>(_flows: &[&Summary<F>]) -> Option<String> {
        None
    }

    /// `--html`: the notes across the connections the report shows (per
    /// server bounds, settings seen); `steps` are each connection's kept
    /// steps, `sysctls` those of the namespace captured live.
    fn overview<F: FindingsOf<Self>, M: MarkOf<Self>>(
        _flows: &[(&Summary<F>, &[Step<M>])],
        _sysctls: Option<Sysctls>,
        _o: &mut Vec<String>,
    ) {
    }
    /// `--html`: a value per connection drawn on its lane (a middlebox's
    /// timeout band), from the connections shown.
    fn band<F: FindingsOf<Self>>(_flows: &[&Summary<F>], _f: &Summary<F>) -> Option<(f64, f64)> {
        None
    }

    // ---- --metrics

    /// Counts a reported connection.
    fn tally<F: FindingsOf<Self>>(
        _t: &mut Self::Tally,
        _server: &mut Self::ServerTally,
        _f: &Summary<F>,
    ) {
    }
    /// Its metric families over the run.
    fn render(_t: &Self::Tally, _o: &mut String) {}
    /// Its metric families per server (`server` label, its tally).
    fn render_servers(_servers: &[(&str, &Self::ServerTally)], _o: &mut String) {}
}

/// A metric family's `# HELP` and `# TYPE` lines (Prometheus text format).
pub fn metric_head(o: &mut String, name: &str, kind: &str, help: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
