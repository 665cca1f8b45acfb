//! Flows: the connection table and per-direction sequence state.
//!
//! A flow is one TCP connection, keyed by its 4-tuple in either direction
//! and its VLAN tags (the same connection routed between two VLANs is seen
//! twice, once on each: two flows, not one with every segment doubled).
//! The client is the side that sent the SYN. Without a SYN (the capture
//! started mid-connection): the sender of a SYN-ACK is the server; otherwise
//! the endpoint with the lower port is the server (services listen on low or
//! well-known ports, clients get ephemeral ports from 32768 up; port 0,
//! which nothing listens on, never makes a side the server); equal ports:
//! the lower address is the server.
//!
//! A flow that ended (RST, or FIN from both sides) stays in the table for
//! [`FlowTable::linger`] of capture time, so late segments of that connection
//! (retransmitted FINs from an orphaned socket, the RSTs they draw) are
//! attributed to it instead of starting new flows; while a FIN is still
//! unacknowledged, at least [`ORPHAN_LINGER`]. A new SYN on the same 4-tuple
//! starts a new flow — unless it is the connection's own SYN again after a
//! RST ended it in SYN-SENT (see [`Flow::refused_then_retried`]).

pub use super::flowkey::FlowKey;
use super::flowkey::end;
use super::linger::Lingering;
use super::slab::Slab;
use crate::core::decode::{Segment, flags};
use crate::core::seq::SeqNumber;
use crate::core::tcp::{CloseKind, DirState, Kind, Outstanding, Sent, Side};
use crate::core::time::{FAR, Timestamp, When};
use std::net::SocketAddr;

/// One TCP connection: core TCP state only. What an analysis learns about
/// a connection lives in that analysis (see `analysis`); tcpdump's
/// relative-sequence bases live in its printer.
#[derive(Clone, Debug)]
pub struct Flow {
    /// 1-based, in order of first packet.
    pub id: u32,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub packets: u64,
    pub dir: [DirState; 2],
    pub syn: bool,
    pub syn_ack: bool,
    pub established: bool,
    /// The first FIN or RST that began the end of the connection.
    pub close: Option<(CloseKind, Side)>,
    /// RST seen, or both FINs seen: the connection is over.
    pub finished: bool,
    /// The hold-back (see `analyzer`) already waited to learn this side's
    /// next sequence number: it never holds the same side twice. Written and
    /// read by the hold-back only.
    pub held: [bool; 2],
    /// The client is the lower end of the flow's key (`FlowKey`): how
    /// `FlowTable::lookup` tells a segment's side from the key it made.
    client_lo: bool,
}

/// How the handshake was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    Complete,
    Partial,
    Missing,
}

impl Handshake {
    pub fn as_str(self) -> &'static str {
        match self {
            Handshake::Complete => "complete",
            Handshake::Partial => "partial",
            Handshake::Missing => "missing",
        }
    }
}

impl Flow {
    /// A connection first seen at `ts` (public for tests: a `Flow` in any
    /// state can be built directly).
    pub fn new(id: u32, client: SocketAddr, server: SocketAddr, ts: Timestamp) -> Flow {
        Flow {
            id,
            client,
            server,
            first_ts: ts,
            last_ts: ts,
            packets: 0,
            dir: [DirState::default(); 2],
            syn: false,
            syn_ack: false,
            established: false,
            close: None,
            finished: false,
            held: [false; 2],
            client_lo: end(client.ip(), client.port()) <= end(server.ip(), server.port()),
        }
    }

    pub fn side_of(&self, seg: &Segment) -> Side {
        if SocketAddr::new(seg.src, seg.sport) == self.client {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// Sequence number relative to the sender's base (JSON `seq`).
    pub fn rel_seq(&self, from: Side, seq: SeqNumber) -> u32 {
        self.dir[from.idx()]
            .base
            .map_or(seq.0, |b| seq.0.wrapping_sub(b.0))
    }

    /// Records the segment's effect on the sequence state, after it was
    /// classified as `kind`.
    pub fn update(&mut self, from: Side, seg: &Segment, kind: Kind, ts: Timestamp) {
        self.packets += 1;
        if kind == Kind::Duplicate {
            // A copy of a segment already counted: it changes nothing.
            return;
        }
        self.last_ts = ts;
        let is_syn = seg.has(flags::SYN);
        let (me, peer) = self.pair_mut(from);
        let now = When::at(ts);
        me.last = Sent::of(seg);
        // The peer's next segment answers this one: not a copy of its last.
        peer.last = Sent::default();
        if is_syn {
            me.base = Some(seg.seq);
        }
        if seg.has(flags::ACK) {
            me.acked = Some(me.acked.map_or(seg.ack, |a| a.max(seg.ack)));
            // The peer's next sequence is at least what we acknowledge.
            peer.next = Some(peer.next.map_or(seg.ack, |n| n.max(seg.ack)));
            if peer.base.is_none() {
                peer.base = Some(seg.ack - 1);
            }
            if let Some(p) = peer.probe
                && !seg.has(flags::RST)
                && p.answered_by(seg.ack)
            {
                peer.probe = None;
            }
        }
        if !seg.has(flags::RST) {
            me.win = Some(seg.win);
            if me.ttl == 0 {
                me.ttl = seg.ttl;
            }
        }
        if !matches!(kind, Kind::Keepalive | Kind::ZeroWindowProbe) {
            peer.heard = now;
        }
        match kind {
            Kind::Keepalive | Kind::ZeroWindowProbe => {
                if kind == Kind::Keepalive {
                    me.probed = now;
                }
                me.probe = Some(Outstanding {
                    seq: seg.seq,
                    zero_window: kind == Kind::ZeroWindowProbe,
                });
            }
            Kind::Rst => {
                me.probe = None;
                peer.probe = None;
            }
            _ => {
                // New data ends a probe's wait; a FIN does not: the answer
                // to a probe may cross it (acknowledging the probe, not the
                // FIN yet).
                if seg.len > 0 {
                    me.probe = None;
                }
            }
        }
        if me.base.is_none() && !seg.has(flags::RST) {
            me.base = Some(seg.seq - 1);
        }
        if !seg.has(flags::RST) && kind != Kind::ZeroWindowProbe && kind != Kind::Keepalive {
            let end = seg.seq + seg.seq_len();
            me.next = Some(me.next.map_or(end, |n| n.max(end)));
        }
        if seg.has(flags::FIN) && me.fin.is_none() {
            me.fin = Some(seg.seq + seg.len);
        }
        match kind {
            Kind::Syn => self.syn = true,
            Kind::SynAck => self.syn_ack = true,
            Kind::HandshakeAck => self.established = true,
            _ => {}
        }
        if seg.has(flags::RST) {
            self.close.get_or_insert((CloseKind::Rst, from));
            self.finished = true;
        } else if seg.has(flags::FIN) {
            self.close.get_or_insert((CloseKind::Fin, from));
            if self.dir[0].fin.is_some() && self.dir[1].fin.is_some() {
                self.finished = true;
            }
        }
    }

    fn pair_mut(&mut self, from: Side) -> (&mut DirState, &mut DirState) {
        let [c, s] = &mut self.dir;
        match from {
            Side::Client => (c, s),
            Side::Server => (s, c),
        }
    }

    /// How the handshake was seen.
    pub fn handshake(&self) -> Handshake {
        if self.syn && self.syn_ack && self.established {
            Handshake::Complete
        } else if self.syn || self.syn_ack {
            Handshake::Partial
        } else {
            Handshake::Missing
        }
    }

    /// A later segment revealed `side`'s next sequence number (the hold-back
    /// learned it while the capture started mid-connection).
    pub fn learn_next(&mut self, side: Side, next: SeqNumber) {
        let dir = &mut self.dir[side.idx()];
        dir.next = Some(next);
        dir.base.get_or_insert(next - 1);
    }

    /// A SYN with the ISN of this connection's own SYN, after a RST ended
    /// it before the handshake completed: the client did not take the RST
    /// (its ACK number was not acceptable, or it never reached the client)
    /// and its kernel is still connecting. One connection, not two.
    pub fn refused_then_retried(&self, syn: &Segment) -> bool {
        self.finished
            && !self.established
            && !self.syn_ack
            && matches!(self.close, Some((CloseKind::Rst, _)))
            && self.dir[Side::Client.idx()].base == Some(syn.seq)
            && SocketAddr::new(syn.src, syn.sport) == self.client
    }

    /// A connection that closed with FINs, one of them not acknowledged:
    /// its sender (an orphaned socket) will send it again, backing off up
    /// to TCP_RTO_MAX between copies. (After a RST, late FINs draw RSTs and
    /// keep the connection lingering by themselves.)
    pub fn fin_unacknowledged(&self) -> bool {
        matches!(self.close, Some((CloseKind::Fin, _)))
            && [Side::Client, Side::Server].into_iter().any(|s| {
                self.dir[s.idx()]
                    .fin
                    .is_some_and(|f| self.dir[s.other().idx()].acked.is_none_or(|a| a <= f))
            })
    }

    /// Whether a RST from `from` is not the peer's own: its TTL differs from
    /// the TTL `from`'s earlier segments arrived with (see `middlebox`).
    /// Never between two ends on the same host: no middlebox sits there.
    pub fn injected(&self, from: Side, seg: &Segment) -> bool {
        let ttl = self.dir[from.idx()].ttl;
        seg.has(flags::RST) && ttl != 0 && seg.ttl != ttl && !self.same_host()
    }

    /// Both ends are on one host: the same address, or loopback
    /// (127.0.0.0/8, ::1). No middlebox can sit between them.
    pub fn same_host(&self) -> bool {
        crate::core::tcp::same_host(self.client.ip(), self.server.ip())
    }
}

/// How long a finished connection whose FIN is still unacknowledged
/// lingers at least: Linux's TCP_RTO_MAX (120 s), the longest an orphaned
/// socket waits between two copies of its FIN, and a margin. Its late FINs
/// continue its sequence space: they belong to it, not to a new flow.
pub const ORPHAN_LINGER: f64 = 130.0;

/// How long the table keeps connections.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Seconds a finished flow keeps absorbing late segments.
    pub linger: f64,
    /// Seconds of silence after which an open flow is reported and freed.
    pub idle_timeout: f64,
    /// Most connections in the table at once ([`MAX_OPEN`]).
    pub max_open: usize,
}

impl Options {
    /// `--linger`'s default.
    pub const LINGER: f64 = 60.0;
    /// `--idle-timeout`'s default: longer than Linux's default keepalive
    /// time (7200 s) plus its probes, so a default-configured idle
    /// connection stays one flow.
    pub const IDLE_TIMEOUT: f64 = 3.0 * 3600.0;
}

impl Default for Options {
    fn default() -> Self {
        Options {
            linger: Options::LINGER,
            idle_timeout: Options::IDLE_TIMEOUT,
            max_open: MAX_OPEN,
        }
    }
}

/// A flow with the per-flow state of the stages above (the analyzer's
/// analyses): the table keeps them together and frees them together.
#[derive(Clone, Debug)]
pub struct Entry<A> {
    pub flow: Flow,
    pub state: A,
}

/// Most connections in the table at once. Time expires them (`linger`,
/// `idle_timeout`); when time cannot (all frames stamped alike, a flood of
/// connections within seconds), the least recently active eighth is
/// reported and freed, so memory stays bounded (about 700 bytes each).
pub const MAX_OPEN: usize = 262_144;

/// The connection table. `A` is the per-flow state of the stages above
/// flows (created with `A::default()` when a flow starts).
pub struct FlowTable<A> {
    flows: Slab<FlowKey, Entry<A>>,
    /// Flows that finished, to expire after `linger` without segments.
    finished: Lingering<FlowKey>,
    next_id: u32,
    /// How long a finished flow stays to absorb late segments (capture time).
    pub linger: f64,
    /// How long an open flow may stay silent before it is reported and freed.
    pub idle_timeout: f64,
    /// Most flows at once (see [`MAX_OPEN`]).
    pub max_open: usize,
    last_sweep: Option<Timestamp>,
    last_look: Option<i64>,
}

impl<A: Default> FlowTable<A> {
    pub fn new(options: Options) -> FlowTable<A> {
        FlowTable {
            flows: Slab::default(),
            finished: Lingering::default(),
            next_id: 1,
            linger: options.linger,
            idle_timeout: options.idle_timeout,
            max_open: options.max_open.max(1),
            last_sweep: None,
            last_look: None,
        }
    }

    /// The flow a segment belongs to, if it exists.
    pub fn get_mut(&mut self, seg: &Segment) -> Option<&mut Flow> {
        self.flows.get_mut(&FlowKey::of(seg)).map(|e| &mut e.flow)
    }

    /// Finds the segment's flow or starts one, and the side that sent it
    /// (`Flow::side_of`, read off the key). A SYN (without ACK) for a
    /// finished flow starts a new one; the old flow is handed to `ended`.
    pub fn lookup(
        &mut self,
        seg: &Segment,
        ts: Timestamp,
        mut ended: impl FnMut(Entry<A>),
    ) -> (&mut Entry<A>, Side) {
        let (key, src_lo) = FlowKey::oriented(seg);
        let fresh_syn = seg.has(flags::SYN) && !seg.has(flags::ACK);
        if fresh_syn
            && let Some(Entry { flow: old, .. }) = self.flows.get_mut(&key)
            && old.refused_then_retried(seg)
        {
            // The RST did not end it: the client never took it (see there).
            old.finished = false;
            old.close = None;
        }
        if fresh_syn
            && let Some(Entry { flow: old, .. }) = self.flows.get(&key)
            && (old.finished || old.syn_ack || old.established)
            && old.dir[Side::Client.idx()].base != Some(seg.seq)
        {
            let old = self.flows.remove(&key).expect("present");
            ended(old);
        }
        if self.flows.len() >= self.max_open && self.flows.get(&key).is_none() {
            self.evict_oldest((self.max_open / 8).max(1), &mut ended);
        }
        let next_id = &mut self.next_id;
        let entry = self.flows.get_or_insert_with(key, || {
            let a = SocketAddr::new(seg.src, seg.sport);
            let b = SocketAddr::new(seg.dst, seg.dport);
            let (client, server) = if seg.has(flags::SYN) {
                if seg.has(flags::ACK) { (b, a) } else { (a, b) }
            } else if (listening(a.port()), a.ip()) < (listening(b.port()), b.ip()) {
                (b, a)
            } else {
                (a, b)
            };
            let id = *next_id;
            *next_id += 1;
            Entry {
                flow: Flow::new(id, client, server, ts),
                state: A::default(),
            }
        });
        let from = if src_lo == entry.flow.client_lo {
            Side::Client
        } else {
            Side::Server
        };
        (entry, from)
    }

    /// Reports and frees the `n` connections silent longest (finished ones
    /// first), in flow order.
    #[cold]
    fn evict_oldest(&mut self, n: usize, ended: &mut impl FnMut(Entry<A>)) {
        let mut ages: Vec<(bool, Timestamp, u32, FlowKey)> = self
            .flows
            .iter()
            .map(|(k, e)| (!e.flow.finished, e.flow.last_ts, e.flow.id, *k))
            .collect();
        let n = n.min(ages.len());
        if n == 0 {
            return;
        }
        ages.select_nth_unstable_by_key(n - 1, |&(open, ts, id, _)| (open, ts, id));
        let mut out: Vec<Entry<A>> = ages[..n]
            .iter()
            .filter_map(|(_, _, _, k)| self.flows.remove(k))
            .collect();
        out.sort_by_key(|e| e.flow.id);
        out.into_iter().for_each(ended);
    }

    /// Queues a flow that just finished, for expiry after `linger` from
    /// `now`, the capture clock (not the segment's own stamp, which may be
    /// an outlier the clock did not follow).
    pub fn mark_finished(&mut self, seg: &Segment, id: u32, now: Timestamp) {
        self.finished.push(FlowKey::of(seg), id, now);
    }

    /// Whether [`Self::expire`] would look at `now` (once per second of
    /// capture time): the per-packet check, for callers to inline.
    #[inline(always)]
    pub fn due(&self, now: Timestamp) -> bool {
        self.last_look != Some(now.sec)
    }

    /// Hands to `ended`, in flow order, the flows that finished and stayed
    /// silent for `linger`, and (swept every `idle_timeout / 8` of capture
    /// time) open flows silent for `idle_timeout`.
    #[inline]
    pub fn expire(&mut self, now: Timestamp, ended: impl FnMut(Entry<A>)) {
        // At most one look per second of capture time: this runs per packet.
        if self.last_look != Some(now.sec) {
            self.look(now, ended);
        }
    }

    /// `expire`, once per second of capture time.
    fn look(&mut self, now: Timestamp, mut ended: impl FnMut(Entry<A>)) {
        self.last_look = Some(now.sec);
        // The clock stepped back (see `clock`): start the sweeps over.
        if self.last_sweep.is_some_and(|last| now < last) {
            self.last_sweep = Some(now);
        }
        // Stamped far from now (a wrong stamp, a step of the clock): as good
        // as expired, rather than never.
        let over = |waited: f64, limit: f64| waited > limit || waited < -FAR;
        // (flow id, key): sorted and removed at the end, so flows (hundreds
        // of bytes each) are not moved to be put in order.
        let mut out: Vec<(u32, FlowKey)> = Vec::new();
        while let Some(at) = self.finished.first() {
            if !over(now.since(at), self.linger) {
                break;
            }
            let Some((key, id)) = self.finished.pop() else {
                break;
            };
            match self.flows.get(&key) {
                // Reopened (see `refused_then_retried`): queued again when
                // it finishes again.
                Some(e) if e.flow.id == id && !e.flow.finished => {}
                Some(e) if e.flow.id == id => {
                    let linger = if e.flow.fin_unacknowledged() {
                        self.linger.max(ORPHAN_LINGER)
                    } else {
                        self.linger
                    };
                    if over(now.since(e.flow.last_ts), linger) {
                        out.push((id, key));
                    } else {
                        // Late segments kept it alive, or it lingers longer
                        // (an unacknowledged FIN): look again when its own
                        // linger is over (queued so the check above waits
                        // exactly that long, not once more now).
                        let again = e.flow.last_ts.plus(linger - self.linger);
                        self.finished.push(key, id, again);
                    }
                }
                // Replaced by a new connection on the same 4-tuple, or gone.
                _ => {}
            }
        }
        let sweep_every = (self.idle_timeout / 8.0).max(1.0);
        if self
            .last_sweep
            .is_none_or(|last| now.since(last) >= sweep_every)
        {
            self.last_sweep = Some(now);
            let idle = self.idle_timeout;
            out.extend(self.flows.pick(|k, e| {
                (!e.flow.finished && over(now.since(e.flow.last_ts), idle))
                    .then_some((e.flow.id, *k))
            }));
        }
        if out.is_empty() {
            return;
        }
        out.sort_unstable_by_key(|&(id, _)| id);
        // A key queued twice comes out once: the second finds it gone.
        for (_, key) in out {
            if let Some(e) = self.flows.remove(&key) {
                ended(e);
            }
        }
    }

    /// The flows in the table (open or lingering), in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<A>> {
        self.flows.iter().map(|(_, e)| e)
    }

    /// Empties the table at the end of input, in flow order.
    pub fn drain(&mut self, ended: impl FnMut(Entry<A>)) {
        self.flows.drain_by(|e| e.flow.id, ended);
    }
}

/// How likely a port is to be the one a server listens on, lower first:
/// the port itself, except 0 (no socket listens there; scans and broken
/// stacks send from it), which comes last.
fn listening(port: u16) -> u32 {
    if port == 0 { u32::MAX } else { u32::from(port) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::decode::{LinkType, decode};
    use crate::craft::{ACK, tcp_packet};

    #[test]
    fn without_a_syn_the_lower_port_serves_but_port_0_never_does() {
        let mut t: FlowTable<()> = FlowTable::new(Options::default());
        let ts = Timestamp::new(1_700_000_000, 0);
        for (src, dst, server) in [
            ("10.0.0.2:40000", "10.0.0.1:443", "10.0.0.1:443"),
            ("10.0.0.3:0", "10.0.0.4:5432", "10.0.0.4:5432"),
            ("10.0.0.5:5432", "10.0.0.6:0", "10.0.0.5:5432"),
        ] {
            let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
            let data = tcp_packet(src, dst, ACK, 1, 1, 512, b"x");
            let seg = decode(LinkType::Raw, &data).unwrap();
            let (e, from) = t.lookup(&seg, ts, |_| {});
            assert_eq!(from, e.flow.side_of(&seg));
            assert_eq!(e.flow.server, server.parse().unwrap(), "{src} → {dst}");
        }
    }

    #[test]
    fn per_flow_state_stays_small() {
        // What a connection costs while it is open or lingering.
        assert!(std::mem::size_of::<super::FlowKey>() <= 40);
        assert!(
            std::mem::size_of::<super::Flow>() <= 336,
            "{}",
            std::mem::size_of::<super::Flow>()
        );
    }
}
