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

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The Community ID of the TCP connection between `a` and `b` (either
/// order), with `seed`.
pub fn tcp(a: SocketAddr, b: SocketAddr, seed: u16) -> String {
    let key = |s: SocketAddr| (octets(s.ip()), s.port());
    let (first, second) = if key(a) <= key(b) { (a, b) } else { (b, a) };
    let mut h = sha1_smol::Sha1::new();
    h.update(&seed.to_be_bytes());
    h.update(&octets(first.ip()));
    h.update(&octets(second.ip()));
    h.update(&[TCP, 0]);
    h.update(&first.port().to_be_bytes());
    h.update(&second.port().to_be_bytes());
    format!("1:{}", base64(&h.digest().bytes()))
}

/// Standard base64 (RFC 4648) with padding.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
