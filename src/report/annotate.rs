//! What a segment is and means, in words, for the text timeline: an
//! analysis's words for what it is when one has them (a keepalive probe,
//! its answer), else the core's (its kind); then every analysis's words
//! on what it carries (HTTP, application pings); then, with `--sockets`,
//! its ends on this host.

use crate::analyses::registry::Notes;
use crate::core::decode::flags;
use crate::core::emit::Emit;
use crate::core::tcp::Kind;
use crate::pipeline::event::PacketEvent;
use std::io::{self, Write};

/// Writes the annotation for one event.
#[inline]
pub fn write(out: &mut Vec<u8>, ev: &PacketEvent) -> io::Result<()> {
    if !Notes::lead(ev, out)? {
        core_words(out, ev)?;
    }
    Notes::words(ev, out)?;
    if ev.reassembled > 0 {
        write!(out, " (reassembled from {} IP fragments)", ev.reassembled)?;
    }
    if let Some(j) = ev.socket {
        for (end, s) in [("client", &j.client), ("server", &j.server)] {
            if let Some(s) = s {
                write!(
                    out,
                    "; {end} end on this host: {}",
                    crate::host::sockets::join::describe(s)
                )?;
            }
        }
    }
    Ok(())
}

/// The words' colour on a terminal: an analysis's, else by kind.
pub fn color(ev: &PacketEvent) -> &'static str {
    if let Some(c) = Notes::color(ev) {
        return c;
    }
    match ev.kind {
        Kind::Rst => "31",
        Kind::Keepalive => "1;33",
        Kind::ZeroWindowProbe
        | Kind::ZeroWindowProbeAck
        | Kind::ZeroWindow
        | Kind::WindowUpdate => "33",
        Kind::Retransmission => "35",
        _ => "2",
    }
}

/// What the segment is, in the core's words (its kind, who sent it).
fn core_words(out: &mut Vec<u8>, ev: &PacketEvent) -> io::Result<()> {
    let who = ev.from.name();
    let peer = ev.from.other().name();
    let seg = ev.seg;
    match ev.kind {
        Kind::Syn => write!(out, "handshake 1/3: {who} opens the connection (SYN)"),
        Kind::SynAck => write!(out, "handshake 2/3: {who} accepts (SYN-ACK)"),
        Kind::HandshakeAck => out.write_all(b"handshake 3/3: connection established"),
        Kind::Data => {
            out.s("data ")
                .s(who)
                .s(" → ")
                .s(peer)
                .s(", ")
                .n(seg.len)
                .s(" bytes");
            Ok(())
        }
        Kind::Ack => {
            out.s("ACK from ").s(who);
            Ok(())
        }
        Kind::Duplicate => {
            out.s("copy of the ")
                .s(who)
                .s("'s previous segment: the capture saw it twice (a mirror port, -i any), it was sent once");
            Ok(())
        }
        Kind::Keepalive => write!(out, "keepalive probe from {who}"),
        Kind::KeepaliveAck => write!(out, "keepalive ACK from {who}"),
        Kind::ZeroWindowProbe => write!(
            out,
            "zero-window probe from {who}: {peer} advertises window 0, {who} asks whether it opened"
        ),
        Kind::ZeroWindow => write!(
            out,
            "zero window from {who}: its receive buffer is full (its application is not reading); the {peer} must wait"
        ),
        Kind::WindowUpdate => write!(
            out,
            "window update from {who}: window {}, the {peer} may send again",
            seg.win
        ),
        Kind::ZeroWindowProbeAck => {
            write!(out, "zero-window probe ACK from {who}, window {}", seg.win)
        }
        Kind::Retransmission if seg.has(flags::FIN) => {
            if ev.late {
                write!(
                    out,
                    "FIN retransmitted by {who} after the connection ended (orphaned socket)"
                )
            } else {
                write!(out, "FIN retransmitted by {who}")
            }
        }
        Kind::Retransmission => write!(out, "retransmission from {who}, {} bytes", seg.len),
        Kind::Fin => {
            if ev.late {
                write!(
                    out,
                    "FIN from {who} after the connection ended: {who}'s socket lingers (orphaned), {peer} will answer RST"
                )
            } else if ev.first_close {
                write!(out, "FIN: {who} closes first (it will hold TIME_WAIT)")
            } else {
                write!(out, "FIN: {who} closes too")
            }
        }
        Kind::Rst if let Some(ttl) = ev.injected => write!(
            out,
            "RST injected by a middlebox, not sent by the {who}: TTL {}, while the {who}'s own segments arrive with TTL {ttl}",
            seg.ttl,
        ),
        Kind::Rst => {
            if ev.late {
                write!(
                    out,
                    "RST from {who}: answers a segment of a connection it no longer has"
                )
            } else if ev.first_close {
                write!(out, "RST: {who} aborts the connection")
            } else {
                write!(out, "RST from {who}")
            }
        }
    }
}

/// What an IP fragment that completed nothing is: `IP fragment id 160,
/// bytes 16–31 of its datagram: held for reassembly (2 so far)`.
pub fn fragment(out: &mut Vec<u8>, fe: &crate::pipeline::event::FragmentEvent) {
    use crate::core::frag::Fate;
    let v = fe.view;
    out.s("IP fragment id ").n(v.id);
    if v.len > 0 {
        out.s(", bytes ")
            .n(v.offset)
            .s("–")
            .n(v.offset + v.len - 1)
            .s(" of its datagram");
    }
    if !v.more {
        out.s(" (the last)");
    }
    match fe.fate {
        Fate::Held { count } => {
            out.s(": held for reassembly (").n(count).s(" so far)");
        }
        Fate::Dropped(why) => {
            out.s(": ").s(why.words());
        }
        Fate::Complete { count } => {
            out.s(": completes its datagram (")
                .n(count)
                .s(" fragments), which is no TCP segment kacap can read");
        }
    }
}
