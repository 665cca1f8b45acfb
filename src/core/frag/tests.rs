//! The reassembler's rules, one test each.

use super::piece::be16;
use super::*;

/// IPv4 fragment of datagram `id` at byte `offset` with `data`.
fn v4(id: u16, offset: u32, more: bool, data: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    let off = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    h.extend_from_slice(&off.to_be_bytes());
    h.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    h.extend_from_slice(data);
    h
}

fn offer(r: &mut Reassembler, ip: &[u8], sec: i64) -> Fate {
    let p = piece(ip, 0).expect("a fragment");
    r.offer(&p, Timestamp::new(sec, 0))
}

#[test]
fn in_any_order_the_datagram_is_whole() {
    let payload: Vec<u8> = (0..40u8).collect();
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let mut r = Reassembler::default();
        let parts = [
            v4(7, 0, true, &payload[..16]),
            v4(7, 16, true, &payload[16..32]),
            v4(7, 32, false, &payload[32..]),
        ];
        let fates: Vec<Fate> = order.iter().map(|&i| offer(&mut r, &parts[i], 1)).collect();
        assert_eq!(fates[2], Fate::Complete { count: 3 });
        let d = r.datagram();
        assert_eq!(&d[20..], &payload[..]);
        assert_eq!(be16(d, 2), 60);
        assert_eq!(be16(d, 6) & 0x3fff, 0);
        assert_eq!(r.held_bytes(), 0);
        assert_eq!(r.counts.tiny, 1);
    }
}

#[test]
fn a_copy_is_dropped_an_overlap_drops_the_datagram() {
    let mut r = Reassembler::default();
    assert_eq!(
        offer(&mut r, &v4(1, 0, true, &[0; 16]), 1),
        Fate::Held { count: 1 }
    );
    let copy = offer(&mut r, &v4(1, 0, true, &[0; 16]), 1);
    assert_eq!(copy, Fate::Dropped(Dropped::Duplicate));
    // Teardrop: the second fragment starts inside the first.
    let over = offer(&mut r, &v4(1, 8, false, &[1; 16]), 1);
    assert_eq!(over, Fate::Dropped(Dropped::Overlap));
    // The rest of that datagram is dropped too.
    let late = offer(&mut r, &v4(1, 16, false, &[1; 8]), 1);
    assert_eq!(late, Fate::Dropped(Dropped::Overlap));
    assert_eq!(r.counts.dropped[Dropped::Overlap as usize], 3);
    assert_eq!(r.counts.dropped[Dropped::Duplicate as usize], 1);
    // Only the tombstone's overhead, until it times out.
    assert_eq!(r.held_bytes(), DATAGRAM_COST);
    r.expire(Timestamp::new(100, 0));
    assert_eq!(r.held_bytes(), 0);
}

#[test]
fn datagrams_time_out_and_the_end_counts_the_rest() {
    let mut r = Reassembler::default();
    offer(&mut r, &v4(1, 0, true, &[0; 24]), 1);
    offer(&mut r, &v4(2, 0, true, &[0; 24]), 20);
    // 40 s: the first is 39 s old, the second 20 s.
    offer(&mut r, &v4(3, 0, true, &[0; 24]), 40);
    assert_eq!(r.counts.dropped[Dropped::Timeout as usize], 1);
    r.finish();
    assert_eq!(r.counts.dropped[Dropped::Incomplete as usize], 2);
    assert_eq!((r.held_bytes(), r.datagrams()), (0, 0));
}

#[test]
fn bad_shapes_are_malformed() {
    let mut r = Reassembler::default();
    // Not a multiple of 8 before the end.
    let f = offer(&mut r, &v4(1, 0, true, &[0; 20]), 1);
    assert_eq!(f, Fate::Dropped(Dropped::Malformed));
    // Past 65,535 bytes.
    let f = offer(&mut r, &v4(2, 65_528, false, &[0; 16]), 1);
    assert_eq!(f, Fate::Dropped(Dropped::Malformed));
    // Two ends that disagree.
    offer(&mut r, &v4(3, 8, false, &[0; 8]), 1);
    let f = offer(&mut r, &v4(3, 16, false, &[0; 8]), 1);
    assert_eq!(f, Fate::Dropped(Dropped::Malformed));
}

#[test]
fn memory_stays_bounded_the_oldest_go_first() {
    let mut r = Reassembler::default();
    for i in 0..200_000u32 {
        let mut ip = v4(i as u16, 0, true, &[0; 64]);
        ip[12] = (i >> 16) as u8; // another source: another datagram
        offer(&mut r, &ip, 1);
        assert!(r.held_bytes() <= MAX_BYTES + 2048);
    }
    assert!(r.counts.dropped[Dropped::Memory as usize] > 150_000);
    assert!(r.order.len() <= 2 * r.datagrams() + 64 + 1);
    // Malformed ones, each its own datagram: their tombstones too.
    let mut r = Reassembler::default();
    for i in 0..100_000u32 {
        let mut ip = v4(i as u16, 0, true, &[0; 20]);
        ip[12] = (i >> 16) as u8;
        offer(&mut r, &ip, 1);
        assert!(r.held_bytes() <= MAX_BYTES + 2048);
    }
    assert!(r.datagrams() <= MAX_BYTES / DATAGRAM_COST + 1);
}

#[test]
fn ipv6_fragments_are_read() {
    let mut ip = vec![0x60, 0, 0, 0, 0, 16, 44, 64];
    ip.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ip.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    ip.extend_from_slice(&[6, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
    ip.extend_from_slice(&[9; 8]);
    let p = piece(&ip, 0).expect("a fragment");
    assert_eq!(
        (p.offset, p.len, p.more, p.key.id),
        (0, 8, true, 0xdead_beef)
    );
    // An atomic fragment is not one.
    ip[43] = 0;
    assert!(piece(&ip, 0).is_none());
}

#[test]
fn a_copy_with_other_bytes_is_an_overlap() {
    let mut r = Reassembler::default();
    offer(&mut r, &v4(1, 0, true, &[0; 16]), 1);
    let f = offer(&mut r, &v4(1, 0, true, &[1; 16]), 1);
    assert_eq!(f, Fate::Dropped(Dropped::Overlap));
}
