//! An IP fragment through the analyzer: reassembled (`core::frag`), or as
//! the reader reassembled it (`shard`); the datagram it completes is
//! analyzed as a segment at its time, any other gets its line.

use super::Analyzer;
use crate::core::decode::{self, LinkInfo, LinkType, Skip, decode};
use crate::core::frag::Fate;
use crate::core::tcp::{Kind, Side};
use crate::pipeline::event::{FragmentEvent, Frame, PacketEvent, Sink};
use std::io;

impl<S: Sink> Analyzer<S> {
    /// An IP fragment: held or dropped (its line), or the last of its
    /// datagram: then its number of fragments and link facts, the datagram
    /// in `self.datagram`, for the caller to analyze at this frame's time.
    #[cold]
    #[inline(never)]
    pub(super) fn fragment(&mut self, frame: &Frame) -> io::Result<Option<(u16, LinkInfo)>> {
        let Some((first, view, piece)) = decode::fragment(self.link, frame.data) else {
            // Not one we reassemble (its headers contradict themselves).
            self.skip(Skip::Fragment);
            return Ok(None);
        };
        self.stats.fragments += 1;
        let fate = match self.told.take() {
            Some(fate) => fate,
            None => {
                let fate = self.frag.offer(&piece, frame.ts);
                if matches!(fate, Fate::Complete { .. }) {
                    self.datagram.clear();
                    self.datagram.extend_from_slice(self.frag.datagram());
                }
                fate
            }
        };
        if !matches!(fate, Fate::Complete { .. }) {
            self.stats.skipped += 1;
        }
        if let Fate::Complete { count } = fate {
            if decode(LinkType::Raw, &self.datagram).is_ok() {
                // The caller analyzes it (`process`: one place where a
                // segment is analyzed, so that it stays inlined there).
                return Ok(Some((count, first.link)));
            }
            // Whole, it is no TCP segment (garbage, a cut header): the
            // fragment's line says so.
            self.stats.skipped += 1;
            self.stats.malformed += 1;
        }
        // Its line: a first fragment's TCP header as a segment of its
        // connection, when the connection is known.
        let (flow_id, from) = match view.tcp {
            decode::FragTcp::None | decode::FragTcp::Cut => (0, Side::Client),
            _ => match self.flows.get_mut(&first) {
                Some(f) => (f.id, f.side_of(&first)),
                None => (0, Side::Client),
            },
        };
        let ev = FragmentEvent {
            ev: PacketEvent {
                n: frame.n,
                ts: frame.ts,
                seg: &first,
                frame: frame.data,
                wire_len: frame.len,
                flow_id,
                from,
                kind: Kind::Data,
                rel_seq: 0,
                rel_ack: None,
                late: false,
                first_close: false,
                injected: None,
                notes: Default::default(),
                socket: None,
                reassembled: 0,
            },
            view,
            fate,
        };
        self.sink.fragment(&ev)?;
        Ok(None)
    }
}
