//! The analyses: what kacap reads from a connection beyond its core TCP
//! state — keepalive, middlebox idle timeouts, HTTP keep-alive,
//! retransmissions, application keepalives — and what it says about them.
//!
//! The contract. Each analysis is a folder (`keepalive/`, `middlebox/`, …)
//! with one type that implements [`Analysis`] (its state machine: per-flow
//! state, a note per segment, a summary per connection) and [`Describe`]
//! (its words in every output: `describe`). It sees every segment of its
//! connection as an immutable [`Ctx`] and nothing of the other analyses:
//! what more than one needs of a segment is a fact in `Ctx`, computed once
//! by the pipeline; what more than one needs of a connection is in
//! `event::Shared`, filled by the analysis that knows it. Its findings are
//! read by its own folder and by the one verdict rule (`registry::verdict`),
//! never by an output: outputs run over the loops `registry.rs` generates.
//!
//! Also here, because every analysis's words use them: the records they
//! describe (`event`: a segment, a connection, a kept step) and the
//! verdicts as data (`verdict`). This layer imports only the core and the
//! host's types (a connection's joined sockets).
//!
//! Adding one: see CONTRIBUTING.md ("Adding an analysis").

pub mod app;
pub mod describe;
pub mod event;
pub mod http;
pub mod keepalive;
pub mod macros;
pub mod middlebox;
pub mod registry;
pub mod retransmit;
pub mod verdict;

use crate::core::decode::Segment;
use crate::core::flows::Flow;
use crate::core::tcp::{Kind, Side};
use crate::core::time::Timestamp;

/// What an analysis sees of one segment: the segment, what `classify` made
/// of it, and facts about it computed once from the core state before the
/// segment updated it.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// Frame number in the input.
    pub n: u64,
    pub ts: Timestamp,
    pub seg: &'a Segment<'a>,
    pub from: Side,
    pub kind: Kind,
    /// Seconds since the connection's previous segment (either direction);
    /// `None` for its first segment in the capture.
    pub silence: Option<f64>,
    /// Seconds since the sender last accepted a segment from its peer (its
    /// keepalive idle, as Linux measures it: a peer's probe does not end
    /// it); `None` when the capture shows none. Set for keepalive probes
    /// only (the only segments whose idle anyone reads).
    pub heard: Option<f64>,
    /// A RST whose TTL differs from its sender's earlier segments: a
    /// middlebox forged it (see `middlebox`).
    pub injected: bool,
    /// The segment (not a RST) acknowledges the other side's outstanding
    /// keepalive probe.
    pub answers_probe: bool,
    /// The connection had already ended (RST) before this segment.
    pub late: bool,
}

/// Earlier segments of a connection an analysis now reads differently:
/// their frame numbers and what it says about each now. `from`: the side
/// the reading is about (the pinger).
#[derive(Clone, Copy, Debug)]
pub struct Relabel<N> {
    pub from: Side,
    pub items: [(u64, N); 4],
}

/// One analysis: per-flow state, a note per segment, a summary per flow.
pub trait Analysis: Default + Clone {
    /// What it says about one segment (`PacketEvent::notes`).
    type Note: Copy + Default + std::fmt::Debug;
    /// What it says about the whole connection (`FlowSummary::findings`).
    type Summary: Clone + std::fmt::Debug;

    /// One segment of this connection, in capture order.
    fn segment(&mut self, cx: &Ctx) -> Self::Note;

    /// An earlier segment, shown with a provisional kind, turned out to be
    /// of kind `cx.kind` (live captures and pipes: a keepalive probe first
    /// taken for an ACK). Only segments of the same side, with nothing else
    /// of the flow after them, are revised, in order. An analysis that
    /// cares updates its state and says what it says now.
    fn revise(&mut self, _cx: &Ctx) -> Self::Note {
        Self::Note::default()
    }

    /// After a segment whose note is `note`: earlier segments this
    /// analysis now reads differently (the encrypted rhythm, once it is
    /// established, names its first exchanges' ping and pong). Rare; the
    /// default says none.
    #[inline(always)]
    fn relabel(&mut self, _note: &Self::Note) -> Option<Relabel<Self::Note>> {
        None
    }

    /// The connection is reported (ended, expired, or the input ended);
    /// `flow` is its final core state, `now` the capture time it is
    /// reported at (the last frame's at the end of the input).
    fn finish(&mut self, flow: &Flow, now: Timestamp) -> Self::Summary;
}
