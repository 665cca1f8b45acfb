//! Analyses: what kacap reads from a connection beyond its core TCP state
//! (keepalive, middlebox idle timeouts, HTTP keep-alive, …).
//!
//! Each analysis is one module with one type that implements [`Analysis`]:
//! it owns its per-flow state (one value per connection, created with
//! `Default` when the connection is first seen — keep it small, boxing what
//! only some connections need), sees every segment of its connection as an
//! immutable [`Ctx`], contributes a [`Analysis::Note`] to that segment's
//! packet event and, when the connection is reported, a
//! [`Analysis::Summary`] to its flow summary. Analyses do not see each
//! other: what more than one needs (was a RST injected? does this segment
//! answer a probe?) is a fact about the segment, computed once in `Ctx`.
//!
//! They are listed in `registry.rs` — adding one is a module and a line
//! there. The verdict that combines their summaries is `summary::verdict`.

pub mod app;
pub mod http;
pub mod keepalive;
pub mod middlebox;
pub mod registry;
pub mod retransmit;

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
    /// A RST whose TTL differs from its sender's earlier segments: a
    /// middlebox forged it (see `middlebox`).
    pub injected: bool,
    /// The segment (not a RST) acknowledges the other side's outstanding
    /// keepalive probe.
    pub answers_probe: bool,
    /// The connection had already ended (RST) before this segment.
    pub late: bool,
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

    /// The connection is reported (ended, expired, or the input ended);
    /// `flow` is its final core state, `now` the capture time it is
    /// reported at (the last frame's at the end of the input).
    fn finish(&mut self, flow: &Flow, now: Timestamp) -> Self::Summary;
}

/// Declares the analyses kacap runs, in order: per-flow state
/// ([`PerFlow`](crate::analyses::registry::PerFlow)), the notes of one segment
/// (`Notes`) and the findings of one connection (`Findings`), each with one
/// field per analysis. Used once, in `registry.rs`.
macro_rules! analyses {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)+) => {
        /// Every analysis's state for one connection.
        #[derive(Clone, Debug, Default)]
        pub struct PerFlow {
            $($(#[$doc])* pub $name: $ty,)+
        }

        /// Every analysis's note on one segment.
        #[derive(Clone, Copy, Debug, Default)]
        pub struct Notes {
            $($(#[$doc])* pub $name: <$ty as $crate::analyses::Analysis>::Note,)+
        }

        /// Every analysis's summary of one connection.
        #[derive(Clone, Debug)]
        pub struct Findings {
            $($(#[$doc])* pub $name: <$ty as $crate::analyses::Analysis>::Summary,)+
        }

        impl PerFlow {
            /// Runs every analysis on one segment, in the order listed.
            #[inline]
            pub fn segment(&mut self, cx: &$crate::analyses::Ctx) -> Notes {
                use $crate::analyses::Analysis as _;
                Notes { $($name: self.$name.segment(cx),)+ }
            }

            /// Every analysis's account of a revised segment.
            pub fn revise(&mut self, cx: &$crate::analyses::Ctx) -> Notes {
                use $crate::analyses::Analysis as _;
                Notes { $($name: self.$name.revise(cx),)+ }
            }

            /// Every analysis's summary of the connection that ended.
            pub fn finish(
                &mut self,
                flow: &$crate::core::flows::Flow,
                now: $crate::core::time::Timestamp,
            ) -> Findings {
                use $crate::analyses::Analysis as _;
                Findings { $($name: self.$name.finish(flow, now),)+ }
            }
        }
    };
}
pub(crate) use analyses;
