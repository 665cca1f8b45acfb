//! IP fragments of TCP datagrams: what a fragment is ([`piece`]) and their
//! reassembly ([`Reassembler`]), bounded in memory and time.
//!
//! Rules (Linux's `net/ipv4/ip_fragment.c` and `net/ipv6/reassembly.c`,
//! RFC 5722 and RFC 8200 §4.5), each counted when it drops something:
//! - a datagram is the fragments with the same addresses, IP ID (IPv4's 16
//!   bits, IPv6's 32) and VLAN;
//! - an exact copy of a fragment held (the same place, the same bytes) is
//!   dropped, the datagram kept (`duplicate`: RFC 8200 allows it; Linux
//!   does it without looking at the bytes: a copy with other bytes is an
//!   overlap here, since which of the two the receiver kept cannot be told);
//! - any other overlap drops the whole datagram, and the fragments of it
//!   that come later (`overlap`: RFC 5722 for IPv6; Linux does the same for
//!   IPv4 since 4.19, which makes teardrop-style and RFC 1858 offset-1
//!   rewrites harmless);
//! - a datagram is given [`TIMEOUT`] seconds from its first fragment
//!   (Linux's `ipfrag_time`, 30 s; `timeout`), and those still incomplete
//!   at the end of the input are counted `incomplete`;
//! - a fragment that ends past what an IP packet holds (65,535 bytes with
//!   the IPv4 header: the ping of death), a fragment other than the last
//!   whose length is not a multiple of 8, an empty one, or a second end
//!   that disagrees drop the datagram (`malformed`); more than
//!   [`MAX_PIECES`] fragments drop it too (`too_many`);
//! - the bytes held (with an overhead per fragment and datagram) stay
//!   under [`MAX_BYTES`] (Linux's `ipfrag_high_thresh`, 4 MiB): the oldest
//!   datagrams go first (`memory`).
//!
//! A first fragment too short to hold a whole TCP header (RFC 1858's tiny
//! fragment) is counted (`tiny`) but reassembled, as Linux does.
//!
//! A reassembled datagram is rebuilt as one unfragmented IP packet (the
//! first fragment's IPv4 header, or a plain IPv6 header: the extension
//! headers before the Fragment header are not kept) for the decoder. When
//! the capture cut a fragment short (snaplen), the rebuilt packet's bytes
//! stop there; its header still says the whole length, as a cut frame's
//! does.

use crate::core::keyed::KeyedState;
use crate::core::time::Timestamp;
use std::collections::{HashMap, VecDeque};

mod piece;
pub use piece::{DatagramKey, Piece, piece};

/// Seconds a datagram waits for its fragments (Linux's `ipfrag_time`).
pub const TIMEOUT: f64 = 30.0;
/// Bytes held at most (Linux's `ipfrag_high_thresh`).
pub const MAX_BYTES: usize = 4 << 20;
/// Fragments one datagram may have: every 8 bytes of the largest. (The
/// fragments held in all are bounded by [`MAX_BYTES`]: each costs at least
/// 64 bytes.)
pub const MAX_PIECES: usize = 65_536 / 8;
/// What a fragment costs beyond its bytes, and a datagram beyond its
/// fragments (so that a flood of tiny fragments is bounded too).
const PIECE_COST: usize = 64;
const DATAGRAM_COST: usize = 256;

/// Why fragments were dropped (see the module's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    Duplicate,
    Overlap,
    Malformed,
    TooMany,
    Timeout,
    Memory,
    Incomplete,
}

impl Dropped {
    pub const ALL: [Dropped; 7] = [
        Dropped::Duplicate,
        Dropped::Overlap,
        Dropped::Malformed,
        Dropped::TooMany,
        Dropped::Timeout,
        Dropped::Memory,
        Dropped::Incomplete,
    ];

    /// The reason's name (JSON keys, the summary).
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::Duplicate => "duplicate",
            Dropped::Overlap => "overlap",
            Dropped::Malformed => "malformed",
            Dropped::TooMany => "too_many",
            Dropped::Timeout => "timeout",
            Dropped::Memory => "memory",
            Dropped::Incomplete => "incomplete",
        }
    }

    /// What a fragment's line says about it.
    pub fn words(self) -> &'static str {
        match self {
            Dropped::Duplicate => "a copy of a fragment held, dropped",
            Dropped::Overlap => "overlaps another fragment: the datagram is dropped",
            Dropped::Malformed => {
                "malformed (its offset and length do not fit): the datagram is dropped"
            }
            Dropped::TooMany => "one fragment too many: the datagram is dropped",
            Dropped::Timeout | Dropped::Memory | Dropped::Incomplete => "dropped",
        }
    }
}

/// The fragment counters of a run (summary, JSON `fragments`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragCounts {
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Datagrams whose first fragment was too short for a TCP header.
    pub tiny: u64,
    /// Fragments dropped, by [`Dropped`] (in `Dropped::ALL`'s order).
    pub dropped: [u64; 7],
}

impl FragCounts {
    pub fn add(&mut self, o: &FragCounts) {
        self.reassembled += o.reassembled;
        self.tiny += o.tiny;
        for (a, b) in self.dropped.iter_mut().zip(o.dropped) {
            *a += b;
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.iter().sum()
    }

    fn drop(&mut self, why: Dropped, fragments: u64) {
        self.dropped[why as usize] += fragments;
    }
}

/// What became of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Held: its datagram is not complete; `count` fragments held.
    Held { count: u16 },
    /// It completed its datagram, of `count` fragments: the rebuilt packet
    /// is [`Reassembler::datagram`].
    Complete { count: u16 },
    /// Dropped, and why.
    Dropped(Dropped),
}

struct Stored {
    start: u32,
    end: u32,
    bytes: Vec<u8>,
}

struct Datagram {
    first: Timestamp,
    pieces: Vec<Stored>,
    /// Bytes the held fragments cover (they never overlap).
    have: u64,
    /// The payload's length, once the last fragment came.
    total: Option<u32>,
    header: Vec<u8>,
    v6: bool,
    /// Dropped, and why: its later fragments are dropped too (counted
    /// the same), until it times out.
    dead: Option<Dropped>,
    cost: usize,
}

/// Datagrams being reassembled, bounded (see the module's rules).
pub struct Reassembler {
    table: HashMap<DatagramKey, Datagram, KeyedState>,
    /// Datagrams by first fragment, oldest first (entries of datagrams
    /// gone since are skipped, and compacted away).
    order: VecDeque<(Timestamp, DatagramKey)>,
    held: usize,
    /// The last datagram completed, rebuilt.
    done: Vec<u8>,
    pub counts: FragCounts,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler {
            table: HashMap::with_hasher(KeyedState::default()),
            order: VecDeque::new(),
            held: 0,
            done: Vec::new(),
            counts: FragCounts::default(),
        }
    }
}

impl Reassembler {
    /// Bytes held now (with the overheads counted against [`MAX_BYTES`]).
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Datagrams held now.
    pub fn datagrams(&self) -> usize {
        self.table.len()
    }

    /// The datagram the last [`Fate::Complete`] rebuilt: one IP packet.
    pub fn datagram(&self) -> &[u8] {
        &self.done
    }

    /// Takes one fragment, captured at `ts`.
    pub fn offer(&mut self, p: &Piece, ts: Timestamp) -> Fate {
        self.expire(ts);
        let (start, end) = (p.offset, p.offset + p.len);
        // The whole must fit in an IP packet (IPv4: with its header — the
        // ping of death does not).
        let room = 65_535 - if p.v6 { 0 } else { p.header.len() as u32 };
        let malformed =
            p.len == 0 || end > room || (p.more && !p.len.is_multiple_of(8)) || p.header.len() > 60;
        let (order, held) = (&mut self.order, &mut self.held);
        let d = self.table.entry(p.key).or_insert_with(|| {
            order.push_back((ts, p.key));
            *held += DATAGRAM_COST;
            Datagram {
                first: ts,
                pieces: Vec::new(),
                have: 0,
                total: None,
                header: Vec::new(),
                v6: p.v6,
                dead: None,
                cost: DATAGRAM_COST,
            }
        });
        if let Some(why) = d.dead {
            self.counts.drop(why, 1);
            return Fate::Dropped(why);
        }
        // Where it goes among the held fragments, ordered by offset.
        let at = d.pieces.partition_point(|s| s.start < start);
        let why = if malformed
            || d.v6 != p.v6
            || (!p.more && d.total.is_some_and(|t| t != end))
            || d.total.is_some_and(|t| end > t || (!p.more && t != end))
            || (!p.more && d.pieces.iter().any(|s| s.end > end))
        {
            Some(Dropped::Malformed)
        } else if at < d.pieces.len()
            && d.pieces[at].start == start
            && d.pieces[at].end == end
            && d.pieces[at].bytes == p.data
        {
            self.counts.drop(Dropped::Duplicate, 1);
            return Fate::Dropped(Dropped::Duplicate);
        } else if (at > 0 && d.pieces[at - 1].end > start)
            || (at < d.pieces.len() && d.pieces[at].start < end)
        {
            // (Held fragments never overlap: the neighbours tell.)
            Some(Dropped::Overlap)
        } else if d.pieces.len() >= MAX_PIECES {
            Some(Dropped::TooMany)
        } else {
            None
        };
        if let Some(why) = why {
            // The datagram goes, with its fragments held and this one.
            // (A dead datagram still costs its overhead: a flood of them
            // is bounded too.)
            let n = d.pieces.len() as u64 + 1;
            self.held -= d.cost - DATAGRAM_COST;
            d.pieces = Vec::new();
            d.have = 0;
            d.cost = DATAGRAM_COST;
            d.dead = Some(why);
            self.counts.drop(why, n);
            if self.held > MAX_BYTES {
                self.evict(&p.key);
            }
            return Fate::Dropped(why);
        }
        if start == 0 {
            d.header = p.header.to_vec();
            if p.len < 20 {
                self.counts.tiny += 1;
            }
        }
        if !p.more {
            d.total = Some(end);
        }
        let cost = PIECE_COST + p.data.len();
        d.cost += cost;
        self.held += cost;
        d.have += u64::from(p.len);
        d.pieces.insert(
            at,
            Stored {
                start,
                end,
                bytes: p.data.to_vec(),
            },
        );
        let count = d.pieces.len() as u16;
        if d.total.is_some_and(|t| u64::from(t) == d.have) {
            let d = self.table.remove(&p.key).expect("just used");
            self.held -= d.cost;
            rebuild(&mut self.done, &d);
            self.counts.reassembled += 1;
            return Fate::Complete { count };
        }
        if self.held > MAX_BYTES {
            self.evict(&p.key);
        }
        if self.table.contains_key(&p.key) {
            Fate::Held { count }
        } else {
            Fate::Dropped(Dropped::Memory)
        }
    }

    /// Drops the datagrams older than [`TIMEOUT`] at `now`.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&(first, key)) = self.order.front() {
            if now.since(first) <= TIMEOUT {
                break;
            }
            self.order.pop_front();
            self.forget(&key, first, Dropped::Timeout);
        }
        if self.order.len() > 2 * self.table.len() + 64 {
            let table = &self.table;
            self.order
                .retain(|(first, key)| table.get(key).is_some_and(|d| d.first == *first));
        }
    }

    /// The end of the input: what is still held was never completed.
    pub fn finish(&mut self) {
        while let Some((first, key)) = self.order.pop_front() {
            self.forget(&key, first, Dropped::Incomplete);
        }
    }

    /// Oldest first, until the bytes held are under three quarters of the
    /// bound (Linux's low threshold), sparing `keep` while others are left.
    fn evict(&mut self, keep: &DatagramKey) {
        let mut spared = None;
        while self.held > MAX_BYTES / 4 * 3 {
            let Some((first, key)) = self.order.pop_front() else {
                break;
            };
            if key == *keep && spared.is_none() && self.table.len() > 1 {
                spared = Some((first, key));
                continue;
            }
            self.forget(&key, first, Dropped::Memory);
        }
        if let Some(s) = spared {
            self.order.push_front(s);
        }
    }

    fn forget(&mut self, key: &DatagramKey, first: Timestamp, why: Dropped) {
        if self.table.get(key).is_some_and(|d| d.first == first) {
            let d = self.table.remove(key).expect("just seen");
            self.held -= d.cost;
            if d.dead.is_none() {
                self.counts.drop(why, d.pieces.len() as u64);
            }
        }
    }
}

/// One unfragmented IP packet from a complete datagram into `out`.
fn rebuild(out: &mut Vec<u8>, d: &Datagram) {
    out.clear();
    let total = d.total.unwrap_or(0) as usize;
    if d.v6 {
        out.extend_from_slice(&d.header[..40]);
        out[4..6].copy_from_slice(&(total.min(65_535) as u16).to_be_bytes());
        out[6] = 6;
    } else {
        out.extend_from_slice(&d.header);
        let len = (total + d.header.len()).min(65_535) as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        // Flags and offset: not a fragment any more (DF kept).
        out[6] &= 0x40;
        out[7] = 0;
    }
    for s in &d.pieces {
        out.extend_from_slice(&s.bytes);
        if s.bytes.len() < (s.end - s.start) as usize {
            // Cut by the snaplen: the bytes stop here.
            break;
        }
    }
}

#[cfg(test)]
mod tests;
