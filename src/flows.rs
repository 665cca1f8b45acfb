//! Flows: the connection table and per-direction sequence state.
//!
//! A flow is one TCP connection, keyed by its 4-tuple in either direction.
//! The client is the side that sent the SYN. Without a SYN (the capture
//! started mid-connection): the sender of a SYN-ACK is the server; otherwise
//! the endpoint with the lower port is the server (services listen on low or
//! well-known ports, clients get ephemeral ports from 32768 up); equal ports:
//! the lower address is the server.
//!
//! A flow that ended (RST, or FIN from both sides) stays in the table for
//! [`FlowTable::linger`] of capture time, so late segments of that connection
//! (retransmitted FINs from an orphaned socket, the RSTs they draw) are
//! attributed to it instead of starting new flows. A new SYN on the same
//! 4-tuple always starts a new flow.

use crate::decode::{Segment, flags};
use crate::keepalive::Tracker;
use crate::seq::SeqNumber;
use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Which end of the connection sent a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client = 0,
    Server = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub fn idx(self) -> usize {
        self as usize
    }
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// A keepalive or zero-window probe waiting for its answer.
#[derive(Clone, Copy, Debug)]
pub struct Outstanding {
    pub seq: SeqNumber,
    pub zero_window: bool,
}

impl Outstanding {
    /// Whether an ACK number from the other side answers this probe. A
    /// keepalive sits one below the next sequence number, so its answer
    /// acknowledges past it; a zero-window probe at the next sequence number
    /// is usually refused, so its answer acknowledges up to it.
    pub fn answered_by(&self, ack: SeqNumber) -> bool {
        if self.zero_window {
            ack >= self.seq
        } else {
            ack > self.seq
        }
    }
}

/// What one side has sent so far, as far as the capture shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirState {
    /// Base for relative sequence numbers in JSON: the ISN, or one below the
    /// first sequence number learned when the SYN was not captured.
    pub base: Option<SeqNumber>,
    /// Next sequence number expected from this side (its snd_nxt): the
    /// highest seq + length seen from it, or the highest ACK number the
    /// other side sent, whichever is later.
    pub next: Option<SeqNumber>,
    /// Highest ACK number this side sent (how far it has the peer's data).
    pub acked: Option<SeqNumber>,
    /// Last window this side advertised (raw, unscaled).
    pub win: Option<u16>,
    /// Sequence number of this side's FIN, once seen.
    pub fin: Option<SeqNumber>,
    /// This side's probe that the other side has not answered yet.
    pub probe: Option<Outstanding>,
    /// A segment of this side was already held back to learn `next`
    /// (see `analyzer`): never hold again.
    pub held: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    Fin,
    Rst,
}

/// One TCP connection.
#[derive(Debug)]
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
    /// tcpdump's relative-sequence bases, indexed by side (see report::tcpdump).
    pub td_base: Option<[u32; 2]>,
    /// Keepalive state, from the first probe on (most connections never probe).
    pub keepalive: Option<Box<Tracker>>,
    /// HTTP/1.x state, when the client's first bytes were a request line.
    pub http: Option<Box<crate::http::Http>>,
    /// Whether the client's first payload was looked at for HTTP yet.
    pub http_decided: bool,
    /// IP TTL / hop limit each side's segments arrive with (0: none yet).
    pub ttl: [u8; 2],
    /// When the last data segment was seen.
    pub last_data: Option<Timestamp>,
    /// Idle gaps and what followed them, from the first long silence on.
    pub idle: Option<Box<crate::middlebox::IdleWatch>>,
}

impl Flow {
    fn new(id: u32, client: SocketAddr, server: SocketAddr, ts: Timestamp) -> Flow {
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
            td_base: None,
            keepalive: None,
            http: None,
            http_decided: false,
            ttl: [0; 2],
            last_data: None,
            idle: None,
        }
    }

    /// The keepalive tracker, created on first use.
    pub fn tracker(&mut self) -> &mut Tracker {
        self.keepalive.get_or_insert_with(Box::default)
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
    pub fn update(&mut self, from: Side, seg: &Segment, kind: crate::classify::Kind) {
        use crate::classify::Kind;
        self.packets += 1;
        let is_syn = seg.has(flags::SYN);
        let (me, peer) = self.pair_mut(from);
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
        }
        match kind {
            Kind::Keepalive | Kind::ZeroWindowProbe => {
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
                if seg.seq_len() > 0 {
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
    pub fn handshake(&self) -> &'static str {
        if self.syn && self.syn_ack && self.established {
            "complete"
        } else if self.syn || self.syn_ack {
            "partial"
        } else {
            "missing"
        }
    }
}

/// Canonical 4-tuple: the lower endpoint first.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct FlowKey {
    lo: ([u8; 16], u16),
    hi: ([u8; 16], u16),
}

/// An address as 16 bytes (IPv4 mapped into IPv6): cheap to hash and
/// compare, and only 2-byte aligned, so a key takes 36 bytes.
fn addr_bytes(ip: std::net::IpAddr) -> [u8; 16] {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

impl FlowKey {
    fn of(seg: &Segment) -> FlowKey {
        let a = (addr_bytes(seg.src), seg.sport);
        let b = (addr_bytes(seg.dst), seg.dport);
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }
}

/// Flows in a slab, found through a small index: hash probes touch 40-byte
/// entries instead of whole flows, and growing the index moves no flows.
#[derive(Default)]
struct Slab {
    index: FxHashMap<FlowKey, u32>,
    slots: Vec<Option<Flow>>,
    free: Vec<u32>,
}

impl Slab {
    fn get(&self, k: &FlowKey) -> Option<&Flow> {
        let i = *self.index.get(k)?;
        self.slots[i as usize].as_ref()
    }

    fn get_mut(&mut self, k: &FlowKey) -> Option<&mut Flow> {
        let i = *self.index.get(k)?;
        self.slots[i as usize].as_mut()
    }

    fn remove(&mut self, k: &FlowKey) -> Option<Flow> {
        let i = self.index.remove(k)?;
        self.free.push(i);
        self.slots[i as usize].take()
    }

    fn get_or_insert_with(&mut self, k: FlowKey, make: impl FnOnce() -> Flow) -> &mut Flow {
        let (slots, free) = (&mut self.slots, &mut self.free);
        let i = *self.index.entry(k).or_insert_with(|| {
            let flow = Some(make());
            match free.pop() {
                Some(i) => {
                    slots[i as usize] = flow;
                    i
                }
                None => {
                    slots.push(flow);
                    (slots.len() - 1) as u32
                }
            }
        });
        self.slots[i as usize]
            .as_mut()
            .expect("every indexed slot holds a flow")
    }

    fn keys_where(&self, keep: impl Fn(&Flow) -> bool) -> Vec<FlowKey> {
        self.index
            .iter()
            .filter(|(_, i)| self.slots[**i as usize].as_ref().is_some_and(&keep))
            .map(|(k, _)| *k)
            .collect()
    }

    fn drain(&mut self) -> Vec<Flow> {
        self.index.clear();
        self.free.clear();
        self.slots.drain(..).flatten().collect()
    }
}

/// The connection table.
pub struct FlowTable {
    flows: Slab,
    /// Flows that finished (key, id, when queued), oldest first, to expire
    /// after `linger` without segments.
    finished: VecDeque<(FlowKey, u32, Timestamp)>,
    next_id: u32,
    /// How long a finished flow stays to absorb late segments (capture time).
    pub linger: f64,
    /// How long an open flow may stay silent before it is reported and freed.
    pub idle_timeout: f64,
    last_sweep: Option<Timestamp>,
    last_look: Option<i64>,
}

impl FlowTable {
    pub fn new(linger: f64, idle_timeout: f64) -> FlowTable {
        FlowTable {
            flows: Slab::default(),
            finished: VecDeque::new(),
            next_id: 1,
            linger,
            idle_timeout,
            last_sweep: None,
            last_look: None,
        }
    }

    /// The flow a segment belongs to, if it exists.
    pub fn get_mut(&mut self, seg: &Segment) -> Option<&mut Flow> {
        self.flows.get_mut(&FlowKey::of(seg))
    }

    /// Finds the segment's flow or starts one. A SYN (without ACK) for a
    /// finished flow starts a new one; the old flow is handed to `ended`.
    pub fn lookup(
        &mut self,
        seg: &Segment,
        ts: Timestamp,
        mut ended: impl FnMut(Flow),
    ) -> &mut Flow {
        let key = FlowKey::of(seg);
        let fresh_syn = seg.has(flags::SYN) && !seg.has(flags::ACK);
        if fresh_syn
            && let Some(old) = self.flows.get(&key)
            && (old.finished || old.syn_ack || old.established)
            && old.dir[Side::Client.idx()].base != Some(seg.seq)
        {
            let old = self.flows.remove(&key).expect("present");
            ended(old);
        }
        let next_id = &mut self.next_id;
        self.flows.get_or_insert_with(key, || {
            let a = SocketAddr::new(seg.src, seg.sport);
            let b = SocketAddr::new(seg.dst, seg.dport);
            let (client, server) = if seg.has(flags::SYN) {
                if seg.has(flags::ACK) { (b, a) } else { (a, b) }
            } else if (a.port(), a.ip()) < (b.port(), b.ip()) {
                (b, a)
            } else {
                (a, b)
            };
            let id = *next_id;
            *next_id += 1;
            Flow::new(id, client, server, ts)
        })
    }

    /// Queues a flow that just finished, for expiry after `linger`.
    pub fn mark_finished(&mut self, seg: &Segment, id: u32, ts: Timestamp) {
        self.finished.push_back((FlowKey::of(seg), id, ts));
    }

    /// Hands to `ended`, in flow order, the flows that finished and stayed
    /// silent for `linger`, and (swept every `idle_timeout / 8` of capture
    /// time) open flows silent for `idle_timeout`.
    pub fn expire(&mut self, now: Timestamp, mut ended: impl FnMut(Flow)) {
        // At most one look per second of capture time: this runs per packet.
        if self.last_look == Some(now.sec) {
            return;
        }
        self.last_look = Some(now.sec);
        let mut out = Vec::new();
        while let Some(&(key, id, queued)) = self.finished.front() {
            if now.since(queued) <= self.linger {
                break;
            }
            self.finished.pop_front();
            match self.flows.get(&key) {
                Some(f) if f.id == id => {
                    if now.since(f.last_ts) > self.linger {
                        out.extend(self.flows.remove(&key));
                    } else {
                        // Late segments kept it alive: look again later.
                        self.finished.push_back((key, id, f.last_ts));
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
            let gone = self
                .flows
                .keys_where(|f| !f.finished && now.since(f.last_ts) > idle);
            out.extend(gone.iter().filter_map(|k| self.flows.remove(k)));
        }
        if out.is_empty() {
            return;
        }
        out.sort_by_key(|f| f.id);
        out.into_iter().for_each(&mut ended);
    }

    /// Empties the table at the end of input, in flow order.
    pub fn drain(&mut self, ended: impl FnMut(Flow)) {
        let mut all = self.flows.drain();
        all.sort_by_key(|f| f.id);
        all.into_iter().for_each(ended);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn per_flow_state_stays_small() {
        // What a connection costs while it is open or lingering.
        assert!(std::mem::size_of::<super::FlowKey>() <= 36);
        assert!(
            std::mem::size_of::<super::Flow>() <= 336,
            "{}",
            std::mem::size_of::<super::Flow>()
        );
    }
}
