//! The IP reassembler (`core::frag`) on fragments the fuzzer shapes: any
//! order, copies, overlaps, huge offsets, both families, time passing.
//! It must never panic, hold more than its bound, or give out a datagram
//! whose length disagrees with its fragments.
//!
//! Input: records of 6 bytes and data — the datagram (bits 0–1: which of
//! four sources; bit 2: IPv6), its ID, the offset in 8-byte units (13 bits),
//! the length, then bit 0 more fragments and bits 1–7 seconds to wait
//! first; the data bytes follow (zeros when the input ends).
#![no_main]

use kacap::core::frag::{Fate, MAX_BYTES, Reassembler, piece};
use kacap::core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fn packet(rec: &[u8], data: &[u8]) -> Vec<u8> {
    let (which, id, units, len, more) = (
        rec[0],
        rec[1],
        u16::from_le_bytes([rec[2], rec[3]]) & 0x1fff,
        usize::from(rec[4]),
        rec[5] & 1 != 0,
    );
    let mut body = data.to_vec();
    body.resize(len, 0);
    if which & 4 == 0 {
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + len) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, id]);
        ip.extend_from_slice(&(units | if more { 0x2000 } else { 0 }).to_be_bytes());
        ip.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, which & 3, 10, 0, 0, 9]);
        ip.extend(body);
        ip
    } else {
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&((8 + len) as u16).to_be_bytes());
        ip.extend_from_slice(&[44, 64]);
        ip.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, which & 3]);
        ip.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        ip.extend_from_slice(&[6, 0]);
        ip.extend_from_slice(&(units << 3 | u16::from(more)).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, id]);
        ip.extend(body);
        ip
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::default();
    let (mut at, mut t, mut offered) = (0, Timestamp::new(1_700_000_000, 0), 0u64);
    while at + 6 <= data.len() {
        let rec = &data[at..at + 6];
        let len = usize::from(rec[4]);
        let body = &data[(at + 6).min(data.len())..(at + 6 + len).min(data.len())];
        at += 6 + body.len();
        t = t.plus(f64::from(rec[5] >> 1));
        let ip = packet(rec, body);
        let Some(p) = piece(&ip, 0) else { continue };
        offered += 1;
        if let Fate::Complete { count } = r.offer(&p, t) {
            let d = r.datagram();
            let hl = if ip[0] >> 4 == 6 { 40 } else { 20 };
            let total = if hl == 40 {
                40 + usize::from(u16::from_be_bytes([d[4], d[5]]))
            } else {
                usize::from(u16::from_be_bytes([d[2], d[3]]))
            };
            assert_eq!(total, d.len(), "a datagram whose length disagrees");
            assert!(count >= 1 && u64::from(count) <= offered);
        }
        assert!(r.held_bytes() <= MAX_BYTES + 70_000, "{} held", r.held_bytes());
    }
    r.finish();
    assert_eq!(r.held_bytes(), 0);
    assert!(r.counts.reassembled + r.counts.dropped() <= offered * 2);
});
