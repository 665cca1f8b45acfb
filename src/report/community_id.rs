//! Community ID v1 (corelight/community-id-spec): a flow hash other tools
//! (Zeek, Suricata, Arkime, Elastic) compute the same way, so a kacap
//! record joins their logs by flow.
//!
//! For TCP: SHA-1 over the seed (16 bits), the two addresses, the protocol
//! (6), a zero byte, and the two ports, all big-endian, the endpoints
//! ordered so that the smaller (address, port) comes first; base64 with
//! padding, prefixed `1:`. Seed 0, as the spec's default.

use std::net::{IpAddr, SocketAddr};

const TCP: u8 = 6;

/// An address's bytes, in a fixed array (IPv4 in the first 4) with its
/// length: compared and hashed without an allocation.
fn octets(ip: IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// The Community ID of the TCP connection between `a` and `b` (either
/// order), with `seed`.
pub fn tcp(a: SocketAddr, b: SocketAddr, seed: u16) -> String {
    let mut out = Vec::with_capacity(30);
    tcp_into(&mut out, a, b, seed);
    String::from_utf8(out).unwrap_or_default()
}

/// `tcp`, appended to `out` (the JSON records: no allocation).
pub fn tcp_into(out: &mut Vec<u8>, a: SocketAddr, b: SocketAddr, seed: u16) {
    let (ka, kb) = (octets(a.ip()), octets(b.ip()));
    // The spec orders (address bytes, port) as byte strings and numbers.
    fn key(k: &([u8; 16], usize), port: u16) -> (&[u8], u16) {
        (&k.0[..k.1], port)
    }
    let ((first, fp), (second, sp)) = if key(&ka, a.port()) <= key(&kb, b.port()) {
        ((ka, a.port()), (kb, b.port()))
    } else {
        ((kb, b.port()), (ka, a.port()))
    };
    // One message: seed, both addresses, protocol and a zero byte, ports.
    let mut m = [0u8; 2 + 16 + 16 + 2 + 4];
    let mut at = 0;
    for part in [
        &seed.to_be_bytes()[..],
        &first.0[..first.1],
        &second.0[..second.1],
        &[TCP, 0],
        &fp.to_be_bytes(),
        &sp.to_be_bytes(),
    ] {
        m[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let mut h = sha1_smol::Sha1::new();
    h.update(&m[..at]);
    out.extend_from_slice(b"1:");
    base64(out, &h.digest().bytes());
}

/// Standard base64 (RFC 4648) with padding.
fn base64(out: &mut Vec<u8>, data: &[u8]) {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every TCP vector of the spec's baseline (baseline_deflt.json, seed
    /// 0; baseline_seed1.json, seed 1), both directions.
    #[test]
    fn the_specs_tcp_test_vectors() {
        let v6 = (
            "[2001:470:e5bf:dead:4957:2174:e82c:4887]:63943",
            "[2607:f8b0:400c:c03::1a]:25",
        );
        let v4 = ("128.232.110.120:34855", "66.35.250.204:80");
        for (seed, (a, b), want) in [
            (0, v6, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
            (0, v4, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
            (1, v6, "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
            (1, v4, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        ] {
            let (a, b) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(tcp(a, b, seed), want);
            assert_eq!(tcp(b, a, seed), want, "the other direction");
        }
    }

    #[test]
    fn base64_pads() {
        for (data, want) in [(&b"f"[..], "Zg=="), (b"fo", "Zm8="), (b"foo", "Zm9v")] {
            let mut out = b"x".to_vec();
            base64(&mut out, data);
            assert_eq!(out, format!("x{want}").into_bytes());
        }
    }
}
