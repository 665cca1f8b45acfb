//! IP fragments of TCP datagrams as tcpdump prints them (print-ip.c,
//! print-frag6.c, print-tcp.c): a first fragment's TCP header as a
//! segment of its own length, others as `ip-proto-6` or `frag (off|len)`.

use super::{Tcpdump, ip_length_notes, verbose, write_flags};
use crate::core::decode::{self, FragTcp, FragView, Segment};
use crate::core::emit::Emit;
use crate::pipeline::event::PacketEvent;

impl Tcpdump {
    /// `src.port > dst.port`; an IPv6 first fragment's `src > dst: frag
    /// (0|len) port > port` (print-frag6.c, print-tcp.c).
    pub(super) fn write_ends(&mut self, out: &mut Vec<u8>, seg: &Segment, at: (u32, usize)) {
        if let Some(v) = self.frag.filter(|v| v.v6) {
            out.ip(seg.src).s(" > ").ip(seg.dst).s(": ");
            self.write_frag6(out, v);
            out.s(" ").n(seg.sport).s(" > ").n(seg.dport);
            return;
        }
        let key = (seg.src, seg.sport, seg.dst, seg.dport);
        self.ends.put(out, at, key, |out| {
            out.ip(seg.src)
                .s(".")
                .n(seg.sport)
                .s(" > ")
                .ip(seg.dst)
                .s(".")
                .n(seg.dport);
        });
    }

    /// `frag (offset|len)`, with `-v` `frag (0xid:offset|len)`.
    fn write_frag6(&self, out: &mut Vec<u8>, v: FragView) {
        out.s("frag (");
        if self.style.verbose > 0 {
            out.extend_from_slice(format!("0x{:08x}:", v.id).as_bytes());
        }
        out.n(v.offset).s("|").n(v.len).s(")");
    }

    /// The whole line for an IP fragment, as [`Self::write_line`] for a
    /// segment (no stamp before an invalid record header).
    pub fn write_fragment_line(&mut self, out: &mut Vec<u8>, ev: &PacketEvent, view: FragView) {
        if !super::invalid(ev) {
            self.write_stamp(out, ev.ts);
        }
        self.write_fragment_rest(out, ev, view);
    }

    /// The line tcpdump prints for an IP fragment of a TCP datagram,
    /// after its stamp: a first fragment's TCP header as a segment (its
    /// length the fragment's, no checksum), any other fragment's addresses
    /// and `ip-proto-6` (IPv4) or `frag (offset|len)` (IPv6).
    pub fn write_fragment_rest(&mut self, out: &mut Vec<u8>, ev: &PacketEvent, view: FragView) {
        if view.tcp == FragTcp::Whole {
            self.frag = Some(view);
            self.write_rest(out, ev);
            self.frag = None;
            return;
        }
        self.truncated = false;
        self.ended = true;
        if !self.write_head(out, ev) {
            return;
        }
        let seg = ev.seg;
        let ip = decode::network(seg.link.kind, ev.frame).map_or(&[][..], |(ip, _)| ip);
        if !ip_length_notes(out, ip, ev) {
            return;
        }
        if self.style.verbose > 0 {
            verbose::write_ip(out, ip, seg);
        }
        let addresses = |out: &mut Vec<u8>| {
            out.ip(seg.src).s(" > ").ip(seg.dst).s(":");
        };
        if view.v6 {
            // print-ip6.c: the addresses, then the Fragment header.
            addresses(out);
            out.s(" ");
            self.write_frag6(out, view);
            if view.tcp == FragTcp::None {
                return;
            }
            out.s(" ");
        }
        match view.tcp {
            FragTcp::None => {
                addresses(out);
                out.s(" ip-proto-6");
            }
            FragTcp::Cut => {
                addresses(out);
                out.s(" [|tcp]");
            }
            FragTcp::Ports | FragTcp::BadLength => {
                if view.v6 {
                    // print-tcp.c: after a Fragment header, ports only.
                    out.n(seg.sport).s(" > ").n(seg.dport);
                } else {
                    self.write_ends(out, seg, (ev.flow_id, ev.from.idx()));
                }
                out.s(": ");
                if view.tcp == FragTcp::Ports {
                    out.s(" [|tcp]");
                } else if seg.header_len < 20 {
                    out.s(" tcp ")
                        .n(view.len.wrapping_sub(u32::from(seg.header_len)))
                        .s(" [bad hdr length ")
                        .n(seg.header_len)
                        .s(" - too short, < 20]");
                } else {
                    out.s("Flags [");
                    write_flags(out, seg.flags);
                    out.s("] [bad hdr length ")
                        .n(seg.header_len)
                        .s(" - too long, > ")
                        .n(view.len)
                        .s("]");
                }
            }
            FragTcp::Whole => {}
        }
    }
}
