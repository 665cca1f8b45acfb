//! Classify: one kind per TCP segment.
//!
//! The rules, checked in this order (the first that matches wins). "Sender"
//! is the side that sent the segment, "peer" the other side; `next` is the
//! sender's next expected sequence number (see `flows::DirState::next`,
//! learned from the peer's ACK numbers when the capture starts mid-connection).
//!
//! ```text
//! 0.  `duplicate`             the same segment as the sender's previous one
//!                             (same seq, ack, flags, window, length, TCP
//!                             checksum, IPv4 ID and TS val, one of the last
//!                             two present: see `tcp::Sent`), at most 50 ms
//!                             later (`DUPLICATE_WITHIN`), nothing from the
//!                             peer in between: the capture saw one segment
//!                             twice (a mirror port, `-i any`, two taps
//!                             merged). A copy changes no state and is
//!                             counted nowhere else.
//! 1.  `rst`                   RST set. A RST from the peer of a side with an
//!                             outstanding keepalive probe answers that probe.
//! 2.  `syn`, `syn-ack`        SYN set (with ACK: `syn-ack`).
//! 3.  `retransmission`        FIN already seen from the sender (orphaned
//!                             sockets retransmit their FIN).
//! 4.  `fin`                   FIN set.
//! 5.  `zero-window-probe`     the peer's last window was 0, and the segment is
//!                             1 byte at exactly `next` (RFC 1122), or at most
//!                             1 byte at `next − 1` (Linux probes a zero window
//!                             with an old sequence number, like a keepalive).
//!                             Checked before keepalive: same shape, other cause.
//! 6.  `keepalive`             0 or 1 byte (Windows and RFC 1122 stacks send one
//!                             garbage byte), seq == `next − 1`; a 1-byte one
//!                             only when the peer already acknowledged `next`
//!                             (otherwise it is a retransmission of the last
//!                             byte). Checked before retransmission: a 1-byte
//!                             probe sits below `next`. And no sooner than
//!                             1 s (`MIN_KEEPALIVE_TIMER`) after the last
//!                             segment the sender accepted from its peer, or
//!                             after its own previous probe: Linux's smallest
//!                             idle and interval. Sooner, such a segment is an
//!                             `ack` (a reordered or duplicate ACK). Rules 5
//!                             and 6 apply only while the connection lives
//!                             (no RST, no FIN exchange yet).
//! 7.  `keepalive-ack`         no payload, from the peer of a side with an
//!                             outstanding keepalive probe, acknowledging that
//!                             side's `next` (the probe's seq + 1). The window
//!                             may have changed (scaling): it is not compared.
//! 8.  `zero-window-probe-ack` no payload, answering an outstanding zero-window probe.
//! 9.  `zero-window`           no payload, window 0: the sender's receive
//!                             buffer is full, its application is not reading
//!                             (tshark: ZeroWindow). After 7 and 8: an answer
//!                             to a probe stays an answer.
//! 10. `window-update`         no payload, a window above 0 after the sender
//!                             advertised 0: the stall is over.
//! 11. `handshake-ack`         no payload, the client's first ACK after the
//!                             SYN-ACK, acknowledging the server's ISN + 1.
//! 12. `retransmission`        payload starting before `next`.
//! 13. `data`                  payload.
//! 14. `ack`                   anything else (pure ACKs, other window changes).
//! ```

use crate::core::decode::{Segment, flags};
use crate::core::flows::Flow;
use crate::core::tcp::{Kind, MIN_KEEPALIVE_TIMER, Side};
use crate::core::time::{Timestamp, When};

/// Classifies `seg`, sent by `from` at `ts`, against the flow's state before it.
pub fn classify(flow: &Flow, from: Side, seg: &Segment, ts: Timestamp) -> Kind {
    let me = &flow.dir[from.idx()];
    let peer = &flow.dir[from.other().idx()];
    let bare = !seg.has(flags::SYN | flags::FIN | flags::RST);

    // 0: a copy of the sender's previous segment.
    if me.last.copied_by(seg, ts.since(flow.last_ts)) {
        return Kind::Duplicate;
    }

    // 1-4: control flags.
    if seg.has(flags::RST) {
        return Kind::Rst;
    }
    if seg.has(flags::SYN) {
        return if seg.has(flags::ACK) {
            Kind::SynAck
        } else {
            Kind::Syn
        };
    }
    if seg.has(flags::FIN) {
        let already = me.fin.is_some_and(|f| seg.seq + seg.len <= f);
        return if already {
            Kind::Retransmission
        } else {
            Kind::Fin
        };
    }

    // 5-6: probes (never after a RST or a FIN exchange: the connection is gone).
    if let Some(next) = me.next
        && bare
        && !flow.finished
    {
        let below = seg.seq == next - 1 && seg.len <= 1;
        if peer.win == Some(0) && ((seg.len == 1 && seg.seq == next) || below) {
            return Kind::ZeroWindowProbe;
        }
        let nothing_in_flight = seg.len == 0 || peer.acked.is_none_or(|a| a >= next);
        let timer = |since: When| since.until(ts).is_none_or(|t| t >= MIN_KEEPALIVE_TIMER);
        if below && nothing_in_flight && timer(me.heard) && timer(me.probed) {
            return Kind::Keepalive;
        }
    }

    // 7-11: replies without payload.
    if seg.len == 0 && bare {
        if let Some(p) = peer.probe
            && seg.has(flags::ACK)
            && p.answered_by(seg.ack)
        {
            return if p.zero_window {
                Kind::ZeroWindowProbeAck
            } else {
                Kind::KeepaliveAck
            };
        }
        if seg.win == 0 {
            return Kind::ZeroWindow;
        }
        if me.win == Some(0) {
            return Kind::WindowUpdate;
        }
        if from == Side::Client
            && flow.syn_ack
            && !flow.established
            && peer.base.is_some_and(|isn| seg.ack == isn + 1)
        {
            return Kind::HandshakeAck;
        }
        return Kind::Ack;
    }

    // 12-14: payload.
    if seg.len > 0 {
        if me.next.is_some_and(|next| seg.seq < next) {
            return Kind::Retransmission;
        }
        return Kind::Data;
    }
    Kind::Ack
}

/// One test per rule and per rule-order conflict, smoltcp-style.
#[cfg(test)]
mod tests;
